// DPoP (RFC 9449) and private_key_jwt (RFC 7523) against a real authorization server (panva's
// oidc-provider: DPoP with nonces required, refresh tokens rotated) and a resource server that
// verifies every proof with jose. Node-only: oidc-provider is a Node server.
import ky from 'ky'
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { randomBytes, randomUUID } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { clientCredentialsGrant, createTokenAuth, memoryStorage, refreshTokenGrant, type TokenAuth, type TokenStorage } from '../../src/index.ts'
import { dpop, generateDPoPKey, privateKeyJwt, type DPoP } from '../../src/dpop/index.ts'
import { MODES, rejection, wire, type Mode } from '../helpers.ts'
import { authorize, REDIRECT_URI, signIn, startAuthorizationServer, startResourceServer, type AuthorizationServer, type ResourceServer } from './servers.ts'

const open: { close(): Promise<void> }[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((server) => server.close()))
})

interface World {
  as: AuthorizationServer
  rs: ResourceServer
  /** The private_key_jwt client's private JWK (its public half is registered at the AS). */
  serviceKey: JWK
}

async function world(accessTokenTTL = 300): Promise<World> {
  let issuer = ''
  const rs = await startResourceServer(() => issuer)
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const serviceKey = { ...(await exportJWK(privateKey)), kid: 'service-1', alg: 'ES256' }
  const { d: _d, ...servicePublic } = serviceKey
  const as = await startAuthorizationServer({ resource: `${rs.origin}/`, accessTokenTTL, serviceKeys: [servicePublic] })
  issuer = as.issuer
  open.push(rs, as)
  return { as, rs, serviceKey }
}

/** A DPoP client of the public client "spa", signed in through the real authorization-code flow. */
// `now` reads Date.now at each call, so a test can move the whole world's clock.
const now = () => Date.now()

async function client(w: World, mode: Mode = 'hooks', sender: DPoP = dpop({ key: generateDPoPKey(), now }), storage: TokenStorage = memoryStorage()) {
  const auth = createTokenAuth({ grant: refreshTokenGrant({ url: w.as.tokenUrl, clientId: 'spa' }), origins: [w.rs.origin], sender, storage, now })
  const events = { refresh: [] as { rotated: boolean }[], error: [] as unknown[] }
  auth.on('refresh', (event) => events.refresh.push(event))
  auth.on('error', (event) => events.error.push(event.error))
  const api = wire(auth, mode, { prefix: w.rs.origin, retry: 0 })
  return { auth, api, sender, events, storage }
}

async function signedIn(w: World, mode: Mode = 'hooks') {
  const c = await client(w, mode)
  const tokens = await signIn(w.as.issuer, c.sender.fetch)
  await c.auth.setTokens(tokens as never)
  return { ...c, tokens }
}

const fire = (api: ReturnType<typeof ky.create>, count: number, from = 0) =>
  Promise.allSettled(Array.from({ length: count }, (_, i) => api.get(`api/items?n=${from + i}`).json<{ ok: boolean }>()))
const outcomes = (results: PromiseSettledResult<unknown>[]) => results.map((result) => (result.status === 'fulfilled' ? 'ok' : ((result.reason as { code?: string }).code ?? String(result.reason))))
const maxAttempts = (rs: ResourceServer, from: number, count: number) => Math.max(...Array.from({ length: count }, (_, i) => rs.attempts.get(String(from + i)) ?? 0))

for (const mode of MODES) {
  describe(`DPoP against oidc-provider and a jose-verifying resource server (auth.${mode})`, () => {
    it('valid requests: DPoP-bound tokens, a fresh proof per request, the nonce learned once', async () => {
      const w = await world()
      const { api, sender, tokens } = await signedIn(w, mode)
      expect(tokens.token_type).toBe('DPoP')
      for (let i = 0; i < 5; i++) expect(await api.get(`api/items?n=${i}`).json()).toMatchObject({ ok: true, sub: 'alice' })
      expect(await api.post('api/items?n=5', { json: { a: 1 } }).json()).toMatchObject({ ok: true })
      // The first request had no nonce for this origin yet: one challenge, one retry. Then none.
      expect([...w.rs.attempts.values()]).toEqual([2, 1, 1, 1, 1, 1])
      expect(w.rs.counts).toMatchObject({ ok: 6, nonceChallenges: 1, rejected: {} })
      expect(w.rs.lastJkt).toBe((await sender.info()).jkt)
      // The AS asked for its nonce once (the code exchange), and saw no other error.
      expect(w.as.counts).toMatchObject({ token: 2, issued: 1, nonceChallenges: 1, errors: [] })
    })

    it('RS nonce rotation under 20 concurrent requests: all succeed, one retry each, no refresh', async () => {
      const w = await world()
      const { api } = await signedIn(w, mode)
      await api.get('api/warm').json()
      const tokenCalls = w.as.counts.token
      w.rs.rotateNonce()
      const results = await fire(api, 20)
      expect(outcomes(results)).toEqual(Array(20).fill('ok'))
      expect(maxAttempts(w.rs, 0, 20)).toBe(2) // each: the stale nonce, then the new one
      expect(w.rs.counts.nonceChallenges).toBe(1 + 20)
      expect(w.as.counts.token).toBe(tokenCalls) // a nonce challenge is not a reason to refresh
    })

    it('refresh with rotation: the RS revokes the token, 20 concurrent 401s → 1 refresh (rotated), each request replayed once; twice', async () => {
      const w = await world()
      const { api, auth, events, storage } = await signedIn(w, mode)
      await api.get('api/warm').json()
      for (let generation = 1; generation <= 2; generation++) {
        const before = { ...w.as.counts }
        const spent = (await storage.get('default'))!.refreshToken
        w.rs.revokeSeenTokens()
        const results = await fire(api, 20, generation * 100)
        expect(outcomes(results)).toEqual(Array(20).fill('ok'))
        expect(maxAttempts(w.rs, generation * 100, 20)).toBe(2)
        expect(w.as.counts.issued - before.issued).toBe(1)
        expect(w.as.counts.reuse).toBe(0)
        expect(events.refresh).toHaveLength(generation)
        expect(events.refresh.at(-1)!.rotated).toBe(true)
        expect((await storage.get('default'))!.refreshToken).not.toBe(spent)
      }
      expect(w.as.counts.errors).toEqual([])
      void auth
    })
  })
}

describe('DPoP nonces at the authorization server', () => {
  it('AS nonce rotation during a refresh under 20 concurrent requests: 1 refresh, its token call retried once, all succeed', async () => {
    const w = await world()
    const { api, events, storage } = await signedIn(w)
    await api.get('api/warm').json()
    const before = { ...w.as.counts }
    const spent = (await storage.get('default'))!.refreshToken
    // Ten minutes later: oidc-provider's nonces (60 s steps, ±2 accepted) have rotated, and the
    // 5-minute access token is due for a proactive refresh.
    const realNow = Date.now
    Date.now = () => realNow() + 600_000
    try {
      const results = await fire(api, 20)
      expect(outcomes(results)).toEqual(Array(20).fill('ok'))
      expect(w.as.counts.token - before.token).toBe(2) // the stale nonce, then the new one
      expect(w.as.counts.nonceChallenges - before.nonceChallenges).toBe(1)
      expect(w.as.counts.issued - before.issued).toBe(1)
      expect(events.refresh).toHaveLength(1)
      expect(maxAttempts(w.rs, 0, 20)).toBe(1) // refreshed before sending: no 401 at all
      expect((await storage.get('default'))!.refreshToken).not.toBe(spent)
    } finally {
      Date.now = realNow
    }
  })
})

describe('a proof from another key', () => {
  it('is rejected by the RS (cnf.jkt), and the AS refuses the bound refresh token: ERR_SESSION_ENDED for that client only', async () => {
    const w = await world()
    const owner = await signedIn(w)
    await owner.api.get('api/warm').json()
    // Another client (another key) holding the same tokens, e.g. copied out of storage.
    const thief = await client(w)
    await thief.auth.setTokens({ ...owner.tokens, refresh_token: owner.tokens.refresh_token } as never)
    const error = await rejection(thief.api.get('api/items'))
    expect(error.code).toBe('ERR_SESSION_ENDED')
    expect(w.rs.counts.rejected['cnf.jkt mismatch']).toBe(1)
    expect(w.as.counts.errors).toEqual([expect.stringContaining('jkt')])
    // A hand-made request with the real token and a proof from the other key: 401 as well.
    const forged = await fetch(w.rs.url('/api/items'), { headers: { authorization: `DPoP ${owner.tokens.access_token}`, dpop: await thief.sender.proof('GET', w.rs.url('/api/items'), owner.tokens.access_token as string) } })
    expect(forged.status).toBe(401)
    // The owner is unaffected.
    expect(await owner.api.get('api/items').json()).toMatchObject({ ok: true })
  })
})

describe('private_key_jwt (RFC 7523) against oidc-provider', () => {
  it('client credentials with a signed client assertion, plain and DPoP-bound', async () => {
    const w = await world()
    const grant = clientCredentialsGrant({ url: w.as.tokenUrl, clientId: 'service', clientAssertion: privateKeyJwt({ key: w.serviceKey }), extra: { resource: `${w.rs.origin}/` } })
    const plain = createTokenAuth({ grant, origins: [w.rs.origin] })
    expect(await plain.getAccessToken()).toMatch(/^ey/)
    // A second call signs a new assertion (oidc-provider refuses a replayed jti).
    expect(await plain.getAccessToken({ forceRefresh: true })).toMatch(/^ey/)
    const bound = createTokenAuth({ grant, origins: [w.rs.origin], sender: dpop({ key: generateDPoPKey() }) })
    const api = ky.create({ prefix: w.rs.origin, hooks: bound.hooks })
    expect(await api.get('api/items').json()).toMatchObject({ ok: true, sub: 'service' })
    expect(w.as.counts.errors).toEqual([])
  })

  it('refresh with a signed client assertion (aud = issuer), rotated, repeatedly', async () => {
    const w = await world()
    const assertion = privateKeyJwt({ key: w.serviceKey, audience: w.as.issuer })
    // Sign-in of the confidential client: the code exchange authenticates with an assertion too.
    const verifier = randomBytes(32).toString('base64url')
    const code = await authorize(w.as.issuer, 'service', verifier)
    const exchange = await fetch(w.as.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: 'service', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertion.sign({ clientId: 'service', endpoint: w.as.tokenUrl }) }),
    })
    const tokens = await exchange.json()
    expect(exchange.status).toBe(200)
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: w.as.tokenUrl, clientId: 'service', clientAssertion: assertion }), origins: [w.rs.origin] })
    let rotated = 0
    auth.on('refresh', (event) => void (rotated += event.rotated ? 1 : 0))
    await auth.setTokens(tokens)
    for (let i = 0; i < 3; i++) await auth.getAccessToken({ forceRefresh: true })
    expect(rotated).toBe(3)
    expect(w.as.counts).toMatchObject({ reuse: 0, errors: [] })
  })

  it('a key the server does not know: ERR_INVALID_CLIENT, and the message holds no assertion', async () => {
    const w = await world()
    const { privateKey } = await generateKeyPair('ES256', { extractable: true })
    const grant = clientCredentialsGrant({ url: w.as.tokenUrl, clientId: 'service', clientAssertion: privateKeyJwt({ key: { ...(await exportJWK(privateKey)), kid: 'service-1' } }), attempts: 1 })
    const error = await rejection(createTokenAuth({ grant }).getAccessToken())
    expect(error.code).toBe('ERR_INVALID_CLIENT')
    expect(JSON.stringify(error) + String(error)).not.toMatch(/eyJ/)
  })
})

describe('keys', () => {
  it('a configured private JWK and the same key as PEM give one thumbprint; the proof header holds no private member', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true })
    const jwk = await exportJWK(privateKey)
    const { exportPKCS8 } = await import('jose')
    const pem = await exportPKCS8(privateKey)
    const [a, b] = [dpop({ key: jwk }), dpop({ key: pem })]
    expect((await a.info()).jkt).toBe((await b.info()).jkt)
    const proof = await a.proof('GET', 'https://api.example/x?q=1#f', 'token')
    const header = JSON.parse(Buffer.from(proof.split('.')[0]!, 'base64url').toString())
    expect(header).toMatchObject({ typ: 'dpop+jwt', alg: 'ES256' })
    expect(Object.keys(header.jwk).sort()).toEqual(['crv', 'kty', 'x', 'y'])
    const payload = JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString())
    expect(payload.htu).toBe('https://api.example/x')
    void SignJWT
    void randomUUID
  })

  it('a key that cannot be loaded fails locally with a TypeError that says what to fix (not "unreachable")', async () => {
    const w = await world()
    const sender = dpop({ key: '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----' })
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: w.as.tokenUrl, clientId: 'spa' }), sender })
    await auth.setTokens({ accessToken: 'abc', refreshToken: 'rt', receivedAt: Date.now(), expiresAt: Date.now() - 1 })
    const error = await rejection(auth.getAccessToken())
    expect(error).toBeInstanceOf(TypeError)
    expect(error.message).toMatch(/DPoP key could not be loaded.*"key" option/)
    expect(w.as.counts.token).toBe(0)
  })
})

export type { TokenAuth }
