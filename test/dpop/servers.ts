// A real DPoP authorization server (panva's oidc-provider, nonces required, refresh tokens
// rotated, a private_key_jwt client) and a resource server that verifies every proof with jose
// (signature, typ, htm, htu, iat window, jti replay cache, ath, cnf.jkt binding, nonce), both on
// 127.0.0.1. Also a sign-in helper that runs the authorization-code flow (dev interactions) so
// the tokens come from the real server, bound to the client's key.
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { calculateJwkThumbprint, createLocalJWKSet, EmbeddedJWK, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose'
import Provider from 'oidc-provider'

export const REDIRECT_URI = 'http://127.0.0.1/cb'

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)))
}
function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
}

export interface AuthorizationServerOptions {
  /** The resource indicator (the RS's URL) access tokens are issued for. */
  resource: string
  /** Access-token lifetime (s). Default 300. */
  accessTokenTTL?: number
  /** Public JWKs of the private_key_jwt client "service". */
  serviceKeys?: JWK[]
}

export interface AuthorizationServer {
  issuer: string
  tokenUrl: string
  provider: InstanceType<typeof Provider>
  counts: { token: number; issued: number; nonceChallenges: number; reuse: number; errors: string[] }
  close(): Promise<void>
}

/** oidc-provider with DPoP (nonces required), rotation, client credentials and private_key_jwt. */
export async function startAuthorizationServer(options: AuthorizationServerOptions): Promise<AuthorizationServer> {
  const server = createServer()
  const issuer = await listen(server)
  const signing = await Promise.all([generateKeyPair('RS256', { extractable: true }), generateKeyPair('ES256', { extractable: true })])
  const keys = await Promise.all(signing.map(async ({ privateKey }, i) => ({ ...(await exportJWK(privateKey)), kid: `as-${i}`, use: 'sig', alg: i === 0 ? 'RS256' : 'ES256' })))
  const ttl = options.accessTokenTTL ?? 300
  const provider = new Provider(issuer, {
    clients: [
      // A public client (an SPA or native app): DPoP-bound access and refresh tokens.
      { client_id: 'spa', token_endpoint_auth_method: 'none', application_type: 'native', redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], dpop_bound_access_tokens: true },
      // A confidential client authenticating with private_key_jwt (RFC 7523).
      ...(options.serviceKeys
        ? [{ client_id: 'service', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: options.serviceKeys }, application_type: 'native' as const, redirect_uris: [REDIRECT_URI], grant_types: ['client_credentials', 'authorization_code', 'refresh_token'], response_types: ['code'] }]
        : []),
    ],
    jwks: { keys },
    features: {
      devInteractions: { enabled: true },
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => options.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'api:read', audience: options.resource, accessTokenFormat: 'jwt', accessTokenTTL: ttl, jwt: { sign: { alg: 'ES256' } } }),
      },
    },
    scopes: ['api:read'],
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id }) }),
    ttl: { AccessToken: ttl, ClientCredentials: ttl, AuthorizationCode: 60, Grant: 86_400, Interaction: 600, Session: 86_400, RefreshToken: 86_400, IdToken: 3600 },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    clientBasedCORS: () => true,
    pkce: { required: () => false },
  } as never)
  const counts: AuthorizationServer['counts'] = { token: 0, issued: 0, nonceChallenges: 0, reuse: 0, errors: [] }
  provider.on('grant.success', () => counts.issued++)
  provider.on('grant.error', (_ctx: unknown, error: { error?: string; error_description?: string; error_detail?: string; cause?: { message?: string } }) => {
    if (error.error === 'use_dpop_nonce') counts.nonceChallenges++
    else counts.errors.push(`${error.error}: ${error.error_description}${error.error_detail ? ` (${error.error_detail})` : ''}${error.cause?.message ? ` [${error.cause.message}]` : ''}`)
    if (error.error_description === 'refresh token already used') counts.reuse++
  })
  const callback = provider.callback()
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST' && req.url?.startsWith('/token')) counts.token++
    void callback(req, res)
  })
  return { issuer, tokenUrl: `${issuer}/token`, provider, counts, close: () => close(server) }
}

export interface ResourceServer {
  origin: string
  url: (path: string) => string
  counts: { requests: number; ok: number; nonceChallenges: number; rejected: Record<string, number> }
  /** Attempts per logical request, keyed by the `n` query parameter. */
  attempts: Map<string, number>
  /** Issue a new nonce: proofs with the old one get `use_dpop_nonce`. */
  rotateNonce(): void
  /** Refuse every access token seen so far (as after a server-side revocation): 401 invalid_token. */
  revokeSeenTokens(): void
  /** The `cnf.jkt` of the last token accepted. */
  lastJkt: string | undefined
  close(): Promise<void>
}

/**
 * The API: verifies access tokens (JWTs from the authorization server) and their DPoP proofs with
 * jose, and requires its own nonce. Answers 200 `{ ok, sub, jkt }`.
 */
export async function startResourceServer(issuer: () => string): Promise<ResourceServer> {
  let nonce = randomBytes(16).toString('base64url')
  const seenJti = new Map<string, number>() // proof jti → expiry (ms): the replay cache
  const seenTokens = new Set<string>()
  const revoked = new Set<string>()
  let jwks: ReturnType<typeof createLocalJWKSet> | undefined
  const counts: ResourceServer['counts'] = { requests: 0, ok: 0, nonceChallenges: 0, rejected: {} }
  const attempts = new Map<string, number>()
  const server = createServer()
  const origin = await listen(server)
  const state: Pick<ResourceServer, 'lastJkt'> = { lastJkt: undefined }

  server.on('request', async (req: IncomingMessage, res: ServerResponse) => {
    const cors = {
      'access-control-allow-origin': '*',
      'access-control-allow-headers': 'authorization, dpop, content-type',
      'access-control-allow-methods': 'GET, POST, PUT, DELETE',
      'access-control-expose-headers': 'dpop-nonce, www-authenticate',
    }
    if (req.method === 'OPTIONS') return void res.writeHead(204, cors).end()
    for await (const _ of req); // drain the body
    counts.requests++
    const url = new URL(req.url!, origin)
    const n = url.searchParams.get('n')
    if (n) attempts.set(n, (attempts.get(n) ?? 0) + 1)
    const reply = (status: number, body: unknown, extra: Record<string, string> = {}) =>
      void res.writeHead(status, { ...cors, 'content-type': 'application/json', 'dpop-nonce': nonce, ...extra }).end(JSON.stringify(body))
    const reject = (error: 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce', why: string) => {
      if (error === 'use_dpop_nonce') counts.nonceChallenges++
      else counts.rejected[why] = (counts.rejected[why] ?? 0) + 1
      return reply(401, { error, why }, { 'www-authenticate': `DPoP error="${error}", error_description="${why}", algs="ES256 EdDSA"` })
    }
    const authorization = req.headers.authorization ?? ''
    const [scheme, token] = authorization.split(' ')
    if (scheme !== 'DPoP' || !token) return reject('invalid_token', authorization ? `scheme ${scheme}` : 'no token')
    let claims: Record<string, any>
    try {
      jwks ??= createLocalJWKSet(await (await fetch(`${issuer()}/jwks`)).json())
      claims = (await jwtVerify(token, jwks, { issuer: issuer(), audience: `${origin}/`, currentDate: new Date(Date.now()) })).payload
    } catch (error) {
      return reject('invalid_token', `access token: ${(error as Error).message}`)
    }
    if (revoked.has(claims.jti)) return reject('invalid_token', 'revoked')
    seenTokens.add(claims.jti)
    const proofs = req.headersDistinct.dpop ?? []
    if (proofs.length !== 1) return reject('invalid_dpop_proof', `${proofs.length} DPoP headers`)
    let proof: { payload: Record<string, any>; protectedHeader: { jwk?: JWK } }
    try {
      proof = await jwtVerify(proofs[0]!, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256', 'EdDSA', 'Ed25519'] })
    } catch (error) {
      return reject('invalid_dpop_proof', `signature: ${(error as Error).message}`)
    }
    const { payload } = proof
    if ('d' in (proof.protectedHeader.jwk ?? {})) return reject('invalid_dpop_proof', 'private key in header')
    const jkt = await calculateJwkThumbprint(proof.protectedHeader.jwk!)
    if (claims.cnf?.jkt !== jkt) return reject('invalid_token', 'cnf.jkt mismatch')
    if (payload.htm !== req.method) return reject('invalid_dpop_proof', 'htm')
    if (payload.htu !== `${origin}${url.pathname}`) return reject('invalid_dpop_proof', 'htu')
    const ath = createHash('sha256').update(token).digest('base64url')
    if (payload.ath !== ath) return reject('invalid_dpop_proof', 'ath')
    if (typeof payload.jti !== 'string' || seenJti.has(payload.jti)) return reject('invalid_dpop_proof', 'jti replay')
    const now = Date.now()
    // As oidc-provider: a proof with our nonce is fresh by construction; without one, iat must be recent.
    if (payload.nonce !== nonce) return reject('use_dpop_nonce', typeof payload.iat !== 'number' || Math.abs(now / 1000 - payload.iat) > 60 ? 'iat outside the window' : 'nonce')
    seenJti.set(payload.jti, now + 120_000)
    for (const [jti, until] of seenJti) if (until < now) seenJti.delete(jti)
    counts.ok++
    state.lastJkt = jkt
    return reply(200, { ok: true, sub: claims.sub, jkt, path: url.pathname })
  })
  return Object.assign(state, {
    origin,
    url: (path: string) => `${origin}${path}`,
    counts,
    attempts,
    rotateNonce: () => void (nonce = randomBytes(16).toString('base64url')),
    revokeSeenTokens: () => {
      for (const jti of seenTokens) revoked.add(jti)
    },
    close: () => close(server),
  })
}

/** A tiny cookie jar for the interaction flow. */
function cookieJar() {
  const cookies = new Map<string, string>()
  return {
    header: () => [...cookies].map(([name, value]) => `${name}=${value}`).join('; '),
    take(response: Response) {
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(';')
        const eq = pair!.indexOf('=')
        cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim())
      }
    },
  }
}

/**
 * The authorization-code flow against oidc-provider's dev interactions (login, consent), as a
 * user's browser would run it; returns the authorization code. The code exchange is the
 * caller's, with its own (DPoP) transport.
 */
export async function authorize(issuer: string, clientId: string, verifier: string): Promise<string> {
  const jar = cookieJar()
  const challenge = createHash('sha256').update(verifier).digest('base64url')
  let url = `${issuer}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'api:read', redirect_uri: REDIRECT_URI, code_challenge: challenge, code_challenge_method: 'S256', state: randomUUID() })}`
  let method = 'GET'
  let body: string | undefined
  for (let step = 0; step < 20; step++) {
    const response = await fetch(url, { method, redirect: 'manual', headers: { cookie: jar.header(), ...(body && { 'content-type': 'application/x-www-form-urlencoded' }) }, ...(body && { body }) })
    jar.take(response)
    const location = response.headers.get('location')
    if (location) {
      const next = new URL(location, url)
      if (next.href.startsWith(REDIRECT_URI)) {
        const code = next.searchParams.get('code')
        if (!code) throw new Error(`authorization failed: ${next.search}`)
        return code
      }
      url = next.href
      method = 'GET'
      body = undefined
      continue
    }
    const html = await response.text()
    const action = /action="([^"]+)"/.exec(html)?.[1]
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1]
    if (!action || !prompt) throw new Error(`unexpected page at ${url} (${response.status}): ${html.slice(0, 300)}`)
    url = new URL(action, url).href
    method = 'POST'
    body = new URLSearchParams(prompt === 'login' ? { prompt, login: 'alice', password: 'x' } : { prompt }).toString()
  }
  throw new Error('too many steps in the authorization flow')
}

/** Sign in as the public client "spa": the code exchange goes through `transport` (a DPoP fetch). */
export async function signIn(issuer: string, transport: typeof fetch): Promise<Record<string, unknown>> {
  const verifier = randomBytes(32).toString('base64url')
  const code = await authorize(issuer, 'spa', verifier)
  const response = await transport(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: 'spa' }).toString(),
  })
  const tokens = (await response.json()) as Record<string, unknown>
  if (!response.ok) throw new Error(`code exchange failed: ${JSON.stringify(tokens)}`)
  return tokens
}
