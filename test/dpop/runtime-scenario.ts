// The DPoP scenario that runs inside another runtime (Deno on the built package, workerd on the
// bundled sources): the library is passed in, so the same steps run on both. The authorization
// server (oidc-provider, nonces required, refresh tokens rotated) and the jose-verifying resource
// server stay in the Node test process (test/dpop/servers.ts); the Node side checks their counts.
//
// Steps, each with a batch of requests named by `?n=<batch>-<i>` so the resource server's
// per-request attempt counts can be told apart:
//   exchange  the authorization code (obtained by the Node side) exchanged with this runtime's key
//   warm      one request: the RS nonce is learned (one challenge, one retry)
//   rot       20 concurrent requests; the RS rotates its nonce when the 10th arrives (Node side)
//   exp       the clock jumps past the access token's expiry: 20 concurrent → one proactive refresh
//   rev       the RS refuses every token it has seen when the first arrives (Node side): 20 × 401
//             → one refresh (rotated), each replayed once
//   thief     another key: a hand-made proof with the real token is refused, and an engine with
//             that key gets ERR_SESSION_ENDED (the refresh token is bound too); the owner still works
//   cc        client credentials (private_key_jwt) with a configured DPoP JWK: 20 concurrent → one
//             token issuance; past expiry, 20 more → one more
import ky from 'ky'
import type * as Core from '../../src/index.ts'
import type * as DPoPModule from '../../src/dpop/index.ts'

export interface ScenarioLibrary {
  createTokenAuth: typeof Core.createTokenAuth
  refreshTokenGrant: typeof Core.refreshTokenGrant
  clientCredentialsGrant: typeof Core.clientCredentialsGrant
  memoryStorage: typeof Core.memoryStorage
  isTokenError: typeof Core.isTokenError
  dpop: typeof DPoPModule.dpop
  generateDPoPKey: typeof DPoPModule.generateDPoPKey
  privateKeyJwt: typeof DPoPModule.privateKeyJwt
}

export interface ScenarioInput {
  issuer: string
  tokenUrl: string
  /** The resource server's origin. */
  rs: string
  /** An authorization code for the public client "spa", and its PKCE verifier. */
  code: string
  verifier: string
  redirectUri: string
  /** The JWS algorithm of the generated key (ES256 or EdDSA). */
  alg: 'ES256' | 'EdDSA'
  /** The private JWK of the private_key_jwt client "service". */
  serviceKey: Record<string, unknown>
  /** A configured DPoP private JWK (what a deployment keeps in its secret store). */
  configuredKey: Record<string, unknown>
  /** How many concurrent requests per batch. */
  count: number
}

type Outcome = string

export async function runScenario(lib: ScenarioLibrary, input: ScenarioInput) {
  const { rs, count } = input
  const code = (reason: unknown) => (lib.isTokenError(reason) ? reason.code : String((reason as Error)?.message ?? reason))
  const settle = async (promises: Promise<unknown>[]): Promise<Outcome[]> => (await Promise.allSettled(promises)).map((result) => (result.status === 'fulfilled' ? 'ok' : code(result.reason)))
  const batch = (api: ReturnType<typeof ky.create>, name: string) => settle(Array.from({ length: count }, (_, i) => api.get(`api/items?n=${name}-${i}`).json()))

  // ── The public client "spa": a key generated in this runtime, refresh tokens bound to it ──────
  let offset = 0
  const now = () => Date.now() + offset // the engine's clock; proofs keep the real one (iat)
  const key = await lib.generateDPoPKey(input.alg)
  const privateKey = key.privateKey as CryptoKey
  const sender = lib.dpop({ key })
  const info = await sender.info()
  const tokenCalls: string[] = []
  const countingFetch: typeof fetch = (request, init) => {
    tokenCalls.push(new URL(typeof request === 'string' ? request : request instanceof URL ? request.href : request.url).pathname)
    return fetch(request, init)
  }
  const storage = lib.memoryStorage()
  const auth = lib.createTokenAuth({ grant: lib.refreshTokenGrant({ url: input.tokenUrl, clientId: 'spa' }), origins: [rs], sender, storage, now, fetch: countingFetch })
  const refreshes: boolean[] = []
  auth.on('refresh', ({ rotated }) => refreshes.push(rotated))
  const attempts: string[] = [] // every API attempt this runtime sent (ky's fetch: retries included)
  const api = ky.create({
    prefix: rs,
    retry: 0,
    hooks: auth.hooks,
    fetch: (request, init) => {
      attempts.push(new URL(request instanceof Request ? request.url : String(request)).searchParams.get('n') ?? '')
      return fetch(request, init)
    },
  })
  const phases: Record<string, { outcomes: Outcome[]; tokenCalls: number; refreshes: number; attempts: number }> = {}
  const phase = async (name: string, run: () => Promise<Outcome[]>) => {
    const before = { tokenCalls: tokenCalls.length, refreshes: refreshes.length, attempts: attempts.length }
    const outcomes = await run()
    phases[name] = { outcomes, tokenCalls: tokenCalls.length - before.tokenCalls, refreshes: refreshes.length - before.refreshes, attempts: attempts.length - before.attempts }
  }

  // exchange: the code exchange through sender.fetch binds the tokens to this runtime's key.
  const exchange = await sender.fetch(input.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: input.code, redirect_uri: input.redirectUri, code_verifier: input.verifier, client_id: 'spa' }).toString(),
  })
  const text = await exchange.text()
  if (!exchange.ok) throw new Error(`code exchange failed: ${exchange.status} ${text}`)
  const tokens = JSON.parse(text) as Record<string, unknown>
  await auth.setTokens(tokens as never)
  const expiresIn = Number(tokens.expires_in)

  await phase('warm', async () => settle([api.get('api/items?n=warm-0').json()]))
  await phase('rot', () => batch(api, 'rot'))
  offset += (expiresIn + 60) * 1000
  await phase('exp', () => batch(api, 'exp'))
  const beforeRev = (await storage.get('default'))?.refreshToken
  await phase('rev', () => batch(api, 'rev'))
  const afterRev = (await storage.get('default'))?.refreshToken

  // thief: the owner's current tokens, presented with proofs from another key.
  const current = (await storage.get('default'))!
  const other = lib.dpop({ key: await lib.generateDPoPKey(input.alg) })
  const target = `${rs}/api/items`
  const forged = await fetch(`${target}?n=forged-0`, { headers: { authorization: `DPoP ${current.accessToken}`, dpop: await other.proof('GET', target, current.accessToken) } })
  const thief = lib.createTokenAuth({ grant: lib.refreshTokenGrant({ url: input.tokenUrl, clientId: 'spa' }), origins: [rs], sender: other })
  await thief.setTokens({ access_token: current.accessToken, refresh_token: current.refreshToken, token_type: 'DPoP', expires_in: 300 } as never)
  const thiefOutcome = await settle([ky.create({ prefix: rs, retry: 0, hooks: thief.hooks }).get('api/items?n=thief-0').json()])
  await phase('owner', async () => settle([api.get('api/items?n=owner-0').json()]))

  // cc: client credentials, private_key_jwt, a configured DPoP JWK.
  let ccOffset = 0
  const ccSender = lib.dpop({ key: input.configuredKey as never })
  const ccCalls: string[] = []
  const cc = lib.createTokenAuth({
    grant: lib.clientCredentialsGrant({ url: input.tokenUrl, clientId: 'service', clientAssertion: lib.privateKeyJwt({ key: input.serviceKey as never }), extra: { resource: `${rs}/` } }),
    origins: [rs],
    sender: ccSender,
    now: () => Date.now() + ccOffset,
    fetch: (request, init) => (ccCalls.push('token'), fetch(request, init)),
  })
  const ccApi = ky.create({ prefix: rs, retry: 0, hooks: cc.hooks })
  const ccFirst = await batch(ccApi, 'cc1')
  const ccCallsFirst = ccCalls.length
  ccOffset += 3_600_000
  const ccSecond = await batch(ccApi, 'cc2')

  return {
    runtime: typeof (globalThis as { Deno?: { version: { deno: string } } }).Deno !== 'undefined' ? `deno ${(globalThis as any).Deno.version.deno}` : typeof navigator !== 'undefined' ? navigator.userAgent : 'unknown',
    key: { alg: info.alg, jkt: info.jkt, type: privateKey.type, extractable: privateKey.extractable, algorithm: privateKey.algorithm.name },
    tokenType: tokens.token_type,
    exchangeTokenCalls: tokenCalls.length, // sender.fetch is not the engine's transport: 0
    phases,
    rotated: refreshes,
    refreshTokenChanged: typeof beforeRev === 'string' && typeof afterRev === 'string' && beforeRev !== afterRev,
    forged: { status: forged.status, wwwAuthenticate: forged.headers.get('www-authenticate') },
    thief: thiefOutcome,
    cc: { first: ccFirst, second: ccSecond, tokenCalls: [ccCallsFirst, ccCalls.length - ccCallsFirst], jkt: (await ccSender.info()).jkt },
  }
}
