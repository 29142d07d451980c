/**
 * The playground's DPoP API (RFC 9449), served by the Vite dev server under /mock/dpop/…: an
 * authorization server (POST /token) and a resource server (GET /api/v1/…) that only accept
 * DPoP-bound tokens, and check a proof on every call with jose.
 *
 * - Token endpoint: `grant_type=authorization_code` (the page's stand-in for the OAuth redirect:
 *   any code "playground" is accepted) and `grant_type=refresh_token` with rotation and reuse
 *   detection. Tokens come back with `token_type: "DPoP"`; the access token is a JWT signed by the
 *   mock whose `cnf.jkt` is the thumbprint of the proof's key; the refresh token is bound to the
 *   same key (a public client). A proof without the current nonce is answered 400
 *   `{ "error": "use_dpop_nonce" }` with a `DPoP-Nonce` header.
 * - API: `Authorization: DPoP <token>` plus a proof with `ath` = base64url(SHA-256(token)) and the
 *   key the token is bound to. A stale nonce is answered 401 with
 *   `WWW-Authenticate: DPoP error="use_dpop_nonce"` and `DPoP-Nonce`.
 * - Every proof: a compact JWS whose signature verifies with its embedded public `jwk`,
 *   `typ: dpop+jwt`, `htm` = the method, `htu` = the URL without query and fragment, `iat` within
 *   the window, a `jti` never seen before (replay cache), and the server's current nonce.
 *
 * Why one nonce for both ends: the mock's token endpoint and API share the page's origin, and a
 * client keeps one nonce per origin (RFC 9449 §8, §9), so one origin hands out one nonce. The
 * "rotate" control replaces it, which is what a server does every few minutes.
 *
 * What the server decided for each call is handed to the recorder ({@link proofVerdicts}), so the
 * inspector can say "verified: signature, typ, htm, htu, iat, jti, nonce, ath, cnf.jkt".
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, generateKeyPair, jwtVerify, SignJWT, type JWK } from 'jose'
import type { Fault } from '../test/fixtures/apis.ts'
import { proofVerdicts } from './recorder.ts'

export interface DPoPMockOptions {
  /** Access-token lifetime (s). */
  accessTtl?: number
  /** How far a proof's `iat` may lie in the past (s). Default 60. */
  proofMaxAge?: number
  /** How far a proof's `iat` may lie in the future (clock skew, s). Default 5. */
  proofMaxSkew?: number
}

export interface DPoPMock {
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>
  /** Refresh tokens issued in the most recent session (1 = the sign-in one, 2 = first rotation, …). */
  generation(): number
  counts: { token: number; api: number; nonceChallenges: number; invalidProofs: number; reuse: number }
  credentials: Record<string, string>
  apiTokens: Set<string>
  fault(route: 'token' | 'api', fault: Fault): void
  expireAccessTokens(): void
  revokeAll(): void
  forbidNext(times?: number): void
  resetCounts(): void
  /** Replace the server's nonce: every proof signed with the old one gets a nonce challenge. */
  rotateNonce(): { nonce: string; number: number }
  nonce(): { nonce: string; number: number }
}

interface AccessRecord { exp: number; family: string; jkt: string; revoked: boolean }
interface RefreshRecord { family: string; jkt: string; used: boolean; revoked: boolean }
type Proof = { jkt: string; claims: Record<string, unknown> }
type ProofFailure = { error: 'use_dpop_nonce' | 'invalid_dpop_proof'; description: string }

const CLIENT_ID = 'playground-spa'
const SCOPE = 'payments:read'
const ALGS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'PS256']
const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url')

export function createDPoPApi(options: DPoPMockOptions = {}): DPoPMock {
  const ttl = options.accessTtl ?? 20
  const maxAge = options.proofMaxAge ?? 60
  const maxSkew = options.proofMaxSkew ?? 5
  const access = new Map<string, AccessRecord>()
  const refresh = new Map<string, RefreshRecord>()
  const generations = new Map<string, number>()
  const revokedFamilies = new Set<string>()
  /** jti → when it may be forgotten (ms): a proof older than the window is refused anyway. */
  const seen = new Map<string, number>()
  const faults: Record<'token' | 'api', Fault[]> = { token: [], api: [] }
  const counts: DPoPMock['counts'] = { token: 0, api: 0, nonceChallenges: 0, invalidProofs: 0, reuse: 0 }
  let nonce = { nonce: randomBytes(16).toString('base64url'), number: 1 }
  let lastFamily = ''
  let forbidden = 0
  // The mock's own signing key for access tokens (ES256), made on first use.
  let signing: ReturnType<typeof generateKeyPair> | undefined
  const keys = () => (signing ??= generateKeyPair('ES256'))

  const nonceNumbers = new Map<string, number>([[nonce.nonce, 1]])
  const verdictOf = (req: IncomingMessage) => {
    let verdict = proofVerdicts.get(req)
    if (!verdict) proofVerdicts.set(req, (verdict = {}))
    return verdict
  }
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    verdictOf(res.req).responseNonce = `nonce #${nonce.number}: the client signs its next proofs for this origin with it`
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'dpop-nonce': nonce.nonce, ...headers })
    res.end(JSON.stringify(body))
  }
  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let text = ''
      req.on('data', (chunk) => (text += chunk))
      req.on('end', () => resolve(text))
    })
  const remember = (jti: string) => {
    const now = Date.now()
    if (seen.size > 5_000) for (const [key, until] of seen) if (until < now) seen.delete(key)
    seen.set(jti, now + (maxAge + maxSkew) * 1000)
  }

  /** The URL the client must have signed (`htu`): this request's, without query and fragment. */
  const urlOf = (req: IncomingMessage) => {
    const raw = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/'
    return new URL(raw, `http://${req.headers.host ?? '127.0.0.1'}`)
  }

  /** Check the DPoP proof of `req`; `token` is the access token it must be bound to (API calls). */
  async function verify(req: IncomingMessage, token?: string): Promise<Proof | ProofFailure> {
    const checks: string[] = []
    const verdict = verdictOf(req)
    const fail = (error: ProofFailure['error'], description: string): ProofFailure => {
      verdict.refused = `${error}: ${description}${checks.length ? ` (passed: ${checks.join(', ')})` : ''}`
      return { error, description }
    }
    const raw = req.headers.dpop
    if (raw === undefined) return fail('invalid_dpop_proof', 'no DPoP proof header')
    if (Array.isArray(raw) || raw.includes(',')) return fail('invalid_dpop_proof', 'more than one DPoP proof')
    let header: ReturnType<typeof decodeProtectedHeader>
    let claims: Record<string, unknown>
    try {
      header = decodeProtectedHeader(raw)
      // The signature, checked with the public key the proof carries (jose refuses a private one).
      ;({ payload: claims } = await jwtVerify(raw, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ALGS }))
    } catch (error) {
      return fail('invalid_dpop_proof', `the proof is not a valid dpop+jwt signed by its jwk (${(error as Error).message})`)
    }
    checks.push('signature', 'typ')
    if (claims.htm !== req.method) return fail('invalid_dpop_proof', `htm is ${JSON.stringify(claims.htm)}, the request is ${req.method}`)
    checks.push('htm')
    const url = urlOf(req)
    const expected = `${url.origin}${url.pathname}`
    let htu = ''
    try {
      const signed = new URL(String(claims.htu))
      htu = `${signed.origin}${signed.pathname}`
      if (signed.search || signed.hash) return fail('invalid_dpop_proof', 'htu carries a query or fragment')
    } catch {}
    if (htu !== expected) return fail('invalid_dpop_proof', `htu is ${JSON.stringify(claims.htu)}, the request went to ${expected}`)
    checks.push('htu')
    const now = Math.floor(Date.now() / 1000)
    if (typeof claims.iat !== 'number' || claims.iat < now - maxAge || claims.iat > now + maxSkew) return fail('invalid_dpop_proof', `iat is outside the ${maxAge} s window`)
    checks.push('iat')
    if (typeof claims.jti !== 'string' || claims.jti.length < 16) return fail('invalid_dpop_proof', 'jti is missing or too short')
    if (seen.has(claims.jti)) return fail('invalid_dpop_proof', 'jti was seen before: a replayed proof')
    remember(claims.jti)
    checks.push('jti')
    const sent = typeof claims.nonce === 'string' ? nonceNumbers.get(claims.nonce) : undefined
    verdict.nonce = claims.nonce === nonce.nonce ? `nonce #${nonce.number}: the server's current nonce` : sent ? `nonce #${sent}: stale, the server now wants #${nonce.number}` : 'not a nonce this server issued'
    if (claims.nonce !== nonce.nonce) {
      counts.nonceChallenges++
      return fail('use_dpop_nonce', claims.nonce === undefined ? 'no nonce: this server requires one' : 'the nonce is stale: the server rotated it')
    }
    checks.push('nonce')
    if (token !== undefined) {
      if (claims.ath !== sha256(token)) return fail('invalid_dpop_proof', 'ath is not the SHA-256 of the access token')
      checks.push('ath')
    } else if (claims.ath !== undefined) return fail('invalid_dpop_proof', 'ath on a token-endpoint proof')
    const jkt = await calculateJwkThumbprint(header.jwk as JWK)
    verdict.jkt = jkt
    verdict.verified = checks
    return { jkt, claims }
  }

  async function issue(family: string, jkt: string) {
    const { privateKey } = await keys()
    const accessToken = await new SignJWT({ scope: SCOPE, client_id: CLIENT_ID, cnf: { jkt } })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .setSubject(family)
      .setIssuedAt()
      .setExpirationTime(`${ttl}s`)
      .setJti(randomBytes(8).toString('hex'))
      .sign(privateKey)
    const refreshToken = `drt_${randomBytes(16).toString('hex')}`
    access.set(accessToken, { exp: Date.now() + ttl * 1000, family, jkt, revoked: false })
    refresh.set(refreshToken, { family, jkt, used: false, revoked: false })
    generations.set(family, (generations.get(family) ?? 0) + 1)
    return { access_token: accessToken, token_type: 'DPoP', expires_in: ttl, refresh_token: refreshToken, scope: SCOPE }
  }

  async function applyFault(route: 'token' | 'api', res: ServerResponse): Promise<boolean> {
    const fault = faults[route].shift()
    if (!fault) return false
    if (fault.kind === 'slow') {
      await new Promise((resolve) => setTimeout(resolve, fault.ms))
      return false
    }
    if (fault.kind === 'html') {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<!doctype html><title>Maintenance</title><p>Back soon.</p>')
      return true
    }
    if (fault.kind === 'status') {
      send(res, fault.status, { error: 'temporarily_unavailable' }, fault.retryAfter ? { 'retry-after': fault.retryAfter } : {})
      return true
    }
    return false
  }

  async function token(req: IncomingMessage, res: ServerResponse) {
    counts.token++
    const body = await readBody(req)
    if (await applyFault('token', res)) return
    const proof = await verify(req)
    if ('error' in proof) return send(res, 400, { error: proof.error, error_description: proof.description })
    const form = new URLSearchParams(body)
    if (form.get('client_id') !== CLIENT_ID) return send(res, 401, { error: 'invalid_client', error_description: 'unknown client_id' })
    const grant = form.get('grant_type')
    if (grant === 'authorization_code') {
      // Stand-in for the OAuth redirect: the page "receives" the code "playground".
      if (form.get('code') !== 'playground') return send(res, 400, { error: 'invalid_grant', error_description: 'unknown authorization code' })
      lastFamily = randomBytes(6).toString('hex')
      return send(res, 200, await issue(lastFamily, proof.jkt))
    }
    if (grant === 'refresh_token') {
      const presented = form.get('refresh_token') ?? ''
      const record = refresh.get(presented)
      if (!record || record.revoked || revokedFamilies.has(record.family)) return send(res, 400, { error: 'invalid_grant', error_description: 'refresh token revoked or unknown' })
      if (record.jkt !== proof.jkt) return send(res, 400, { error: 'invalid_grant', error_description: 'the refresh token is bound to another DPoP key' })
      if (record.used) {
        // Reuse detection: a spent refresh token again ends the whole session.
        counts.reuse++
        revokedFamilies.add(record.family)
        for (const entry of access.values()) if (entry.family === record.family) entry.revoked = true
        return send(res, 400, { error: 'invalid_grant', error_description: 'refresh token reuse detected: session revoked' })
      }
      record.used = true
      return send(res, 200, await issue(record.family, proof.jkt))
    }
    return send(res, 400, { error: 'unsupported_grant_type' })
  }

  const challenge = (error: string, description: string, extra = '') => `DPoP error="${error}", error_description="${description.replace(/["\\]/g, "'")}"${extra}, algs="${ALGS.join(' ')}"`

  async function api(req: IncomingMessage, res: ServerResponse, path: string) {
    counts.api++
    if (await applyFault('api', res)) return
    const authorization = req.headers.authorization ?? ''
    const [scheme = '', token = ''] = authorization.split(' ')
    if (scheme.toLowerCase() !== 'dpop' || !token) {
      return send(res, 401, { error: 'invalid_token' }, { 'www-authenticate': challenge('invalid_token', scheme ? `${scheme} tokens are not accepted: this API takes DPoP-bound tokens only` : 'no access token') })
    }
    const proof = await verify(req, token)
    if ('error' in proof) return send(res, 401, { error: proof.error }, { 'www-authenticate': challenge(proof.error, proof.description) })
    let bound: unknown
    try {
      const { publicKey } = await keys()
      const { payload } = await jwtVerify(token, publicKey, { typ: 'at+jwt', clockTolerance: 0 })
      bound = (payload.cnf as { jkt?: unknown } | undefined)?.jkt
    } catch {}
    const record = access.get(token)
    if (bound === undefined || !record || record.revoked || revokedFamilies.has(record.family) || record.exp <= Date.now()) {
      return send(res, 401, { error: 'invalid_token' }, { 'www-authenticate': challenge('invalid_token', record?.revoked ? 'the access token was revoked' : 'the access token expired') })
    }
    if (bound !== proof.jkt) return send(res, 401, { error: 'invalid_token' }, { 'www-authenticate': challenge('invalid_token', 'the proof was signed by another key than the token is bound to (cnf.jkt)') })
    verdictOf(req).verified?.push('cnf.jkt')
    if (forbidden > 0) {
      forbidden--
      return send(res, 403, { error: 'insufficient_scope' }, { 'www-authenticate': challenge('insufficient_scope', 'missing scope payments:refund', ', scope="payments:refund"') })
    }
    const resource = path.split('/').filter(Boolean).pop() ?? 'payments'
    return send(res, 200, { [resource]: [{ id: 'pay_1', amount: 1200, currency: 'EUR' }, { id: 'pay_2', amount: 450, currency: 'EUR' }] })
  }

  return {
    async handle(req, res, path) {
      if (req.method === 'POST' && path === '/token') return token(req, res)
      if (req.method === 'GET' && path.startsWith('/api/v1/')) return api(req, res, path)
      return send(res, 404, { error: 'not_found' })
    },
    generation: () => generations.get(lastFamily) ?? 0,
    counts,
    credentials: { client_id: CLIENT_ID },
    apiTokens: new Set(),
    fault: (route, fault) => void faults[route].push(fault),
    expireAccessTokens() {
      for (const entry of access.values()) entry.exp = Math.min(entry.exp, Date.now() - 1)
    },
    revokeAll() {
      for (const entry of access.values()) entry.revoked = true
      for (const entry of refresh.values()) entry.revoked = true
    },
    forbidNext: (times = 1) => void (forbidden += times),
    resetCounts() {
      for (const key of Object.keys(counts) as (keyof DPoPMock['counts'])[]) counts[key] = 0
    },
    rotateNonce() {
      nonce = { nonce: randomBytes(16).toString('base64url'), number: nonce.number + 1 }
      nonceNumbers.set(nonce.nonce, nonce.number)
      return nonce
    },
    nonce: () => nonce,
  }
}
