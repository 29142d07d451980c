/**
 * Turning a token-endpoint `Response` into a validated {@link TokenSet}, or into a typed error.
 * Every malformed field has one defined outcome; nothing yields `NaN` or infinite validity, and
 * only header-safe token values get through (a CR/LF in an access token would split a header).
 * Server text quoted in an error is untrusted: every form of every value we sent is scrubbed out
 * of it first, then it is cut to size, because apps log these errors.
 *
 * @module
 */
import { TokenError, type TokenErrorCode } from '../errors.js'
import type { TokenResponseBody, TokenSet } from '../types.js'
import { isAccessToken, isRefreshToken } from '../utils/token-syntax.js'

/** Longest lifetime we believe (one year, in seconds); a larger `expires_in` is capped to it. */
const MAX_LIFETIME = 31_536_000
/** How much of a token-endpoint body we read (bytes); a larger body is refused. */
const BODY_LIMIT = 65_536

/** Options for {@link readTokenResponse}. */
export interface ReadTokenResponseOptions {
  /** The clock (epoch ms) that stamps `receivedAt`. Default `Date.now`. */
  now?: () => number
  /**
   * What a 401/403 from this endpoint means: `session` (the refresh token is dead: delete it) or
   * `client` (the client credentials or password were rejected). Default `session`.
   */
  rejected?: 'session' | 'client'
  /** Values to scrub (in every encoding, see {@link scrub}) from any server text quoted in an error. */
  secrets?: readonly string[]
  /** The URL that was requested, named in messages when the response does not carry one (a browser's opaque redirect). */
  url?: string
  /**
   * The `token_type` the response must carry (case-insensitive). Default `Bearer` (which also
   * accepts an absent `token_type`), or the sender constraint's type (`DPoP`) when the response
   * came through the transport of an auth instance configured with one (`createTokenAuth({ sender })`).
   */
  tokenType?: string
}

// Responses that came through a sender-constrained transport, with the token type they must carry.
const expectedTypes = new WeakMap<Response, string>()

/**
 * @internal Wrap a token-endpoint transport so every response it returns must carry `tokenType`
 * (read by {@link readTokenResponse}, so custom grants get the check too).
 */
export function expectTokenType(fetcher: typeof fetch, tokenType: string): typeof fetch {
  return (input, init) =>
    fetcher(input, init).then((response) => {
      expectedTypes.set(response, tokenType)
      return response
    })
}

// A refresh token the server rotated in a response we otherwise rejected: the engine saves it,
// because the old one is already spent and losing the new one would end the session.
const rescued = new WeakMap<TokenError, string>()

/** The rotated refresh token carried by a rejected token response, if any (engine use). */
export function rescuedRefreshToken(error: unknown): string | undefined {
  return error instanceof TokenError ? rescued.get(error) : undefined
}

/**
 * Read and validate a token-endpoint response (RFC 6749 §5.1 / §5.2 and the vendor shapes of
 * stemp, Starship Rewards and DokStamp). Resolves the token set; rejects with a `TokenError`
 * whose code says what went wrong. Use it in custom grants.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5
 */
export async function readTokenResponse(response: Response, options: ReadTokenResponseOptions = {}): Promise<TokenSet> {
  const receivedAt = (options.now ?? Date.now)()
  const where = describeURL(response.url || options.url || '')
  const secrets = options.secrets ?? []
  const redirect = redirectError(response, 'token', where, 'Stored tokens were kept.', secrets)
  if (redirect) throw redirect
  const text = await readCapped(response)
  let body: unknown
  try {
    body = text === undefined ? undefined : JSON.parse(text)
  } catch {}
  const record = isRecord(body) ? body : undefined
  const errorCode = record && errorCodeOf(record)
  if (!response.ok || (errorCode && !record?.access_token)) {
    throw endpointError(response, record, errorCode, where, options)
  }
  if (!record) {
    const type = quote(response.headers.get('content-type')?.split(';')[0] || 'no content type', secrets, 64)
    throw new TokenError(
      'ERR_TOKEN_RESPONSE_INVALID',
      text === undefined
        ? `The token endpoint ${where} sent a body over ${BODY_LIMIT} bytes; refused. Check the token URL.`
        : `The token endpoint ${where} answered ${response.status} with a body that is not a JSON object (${type}). Check the token URL and that no proxy or login page answers in its place.`,
      { status: response.status, response },
    )
  }
  return toTokenSet(record, receivedAt, where, secrets, options.tokenType ?? expectedTypes.get(response))
}

/**
 * Validate a parsed token response body and compute its expiry. Throws `ERR_TOKEN_RESPONSE_INVALID`
 * naming the bad field (never quoting a token). `receivedAt` is when the body arrived (epoch ms);
 * `where` names the source in messages; `secrets` are scrubbed from any server text quoted.
 *
 * The access token must be an RFC 6750 `b64token` (letters, digits, `-._~+/`, then `=` padding),
 * the only syntax that is safe in `Authorization: Bearer …`; a refresh token must be visible ASCII
 * or spaces (RFC 6749 `VSCHAR`). No API this library targets issues anything else.
 */
export function toTokenSet(body: Partial<TokenResponseBody>, receivedAt: number, where = 'the token response', secrets: readonly string[] = [], tokenType = 'Bearer'): TokenSet {
  const { access_token, token_type, expires_in, refresh_token, scope } = body
  const invalid = (field: string, why: string): never => {
    const error = new TokenError(
      'ERR_TOKEN_RESPONSE_INVALID',
      `${where} has an unusable "${field}": ${why}. Stored tokens were kept; check the server or the grant's settings.`,
    )
    if (isRefreshToken(refresh_token)) rescued.set(error, refresh_token)
    return error as never
  }
  if (typeof access_token !== 'string' || !access_token) throw invalid('access_token', 'missing or empty')
  if (!isAccessToken(access_token)) {
    throw invalid('access_token', 'not a valid bearer token (RFC 6750: letters, digits, -._~+/ and trailing =), so it cannot be sent in a header')
  }
  const typeProblem = tokenTypeProblem(token_type, tokenType, secrets)
  if (typeProblem) throw invalid('token_type', typeProblem)
  if (refresh_token !== undefined && refresh_token !== null && !isRefreshToken(refresh_token)) {
    throw invalid('refresh_token', 'must be a non-empty string of visible ASCII (RFC 6749), null or absent')
  }
  const tokens: TokenSet = { accessToken: access_token, receivedAt }
  if (refresh_token) tokens.refreshToken = refresh_token
  if (typeof scope === 'string') tokens.scope = scope
  let lifetime: number | undefined
  if (expires_in !== undefined && expires_in !== null) {
    lifetime = typeof expires_in === 'number' || (typeof expires_in === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(expires_in))
      ? Number(expires_in)
      : Number.NaN
    if (!Number.isFinite(lifetime)) throw invalid('expires_in', 'not a number of seconds')
    if (lifetime <= 0) throw invalid('expires_in', 'must be a positive number of seconds')
  } else {
    lifetime = jwtLifetime(access_token, receivedAt)
  }
  if (lifetime !== undefined) tokens.expiresAt = receivedAt + Math.min(lifetime, MAX_LIFETIME) * 1000
  return tokens
}

/**
 * @internal Why `received` (a response's `token_type`) is not the `expected` type, or `undefined`
 * when it is. Bearer accepts an absent type (Starship omits it); a sender-constrained type must be
 * named. Each message says what to do.
 */
export function tokenTypeProblem(received: unknown, expected: string, secrets: readonly string[] = []): string | undefined {
  const want = expected.toLowerCase()
  const bearer = want === 'bearer'
  if (received === undefined || received === null) {
    return bearer ? undefined : `it is absent, but ${expected} was required: the server did not bind the token to the proof key. Check that this client may use ${expected} at the server (e.g. dpop_bound_access_tokens), or remove the "sender" option to use bearer tokens`
  }
  if (typeof received !== 'string') return `expected ${expected}, got a ${typeof received}`
  if (received.toLowerCase() === want) return undefined
  const shown = `"${quote(received, secrets, 20)}"`
  if (bearer && received.toLowerCase() === 'dpop') {
    return `the server issued a DPoP-bound token (${shown}), which is useless without a proof on every request. Configure DPoP: createTokenAuth({ sender: dpop({ key }) }) with dpop() from "ky-token-refresh/dpop"`
  }
  if (received.toLowerCase() === 'bearer') {
    return `the server issued a Bearer token although ${expected} was required: it ignored the proof. Check that this client may use ${expected} at the server (e.g. dpop_bound_access_tokens), or remove the "sender" option to use bearer tokens`
  }
  return `expected ${expected}, got ${shown}`
}

// Seconds until a JWT access token expires. With `iat`, `exp - iat` is a lifetime measured on the
// server's clock alone, so client/server skew cancels out; without it, `exp` is absolute.
function jwtLifetime(token: string, receivedAt: number): number | undefined {
  const { exp, iat } = jwtClaims(token) ?? {}
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return undefined
  const lifetime = typeof iat === 'number' && Number.isFinite(iat) && iat <= exp ? exp - iat : exp - receivedAt / 1000
  return Math.max(lifetime, 0.001)
}

// The payload of a JWS compact token (three base64url parts), unverified: we only read its times.
// jose stays the dependency for anything cryptographic; this is all the core needs of a JWT.
function jwtClaims(token: string): { exp?: unknown; iat?: unknown } | undefined {
  const parts = token.split('.')
  if (parts.length !== 3 || !parts[1]) return undefined // opaque token: rely on 401-driven refresh
  try {
    const binary = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'))
    const claims: unknown = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))))
    return typeof claims === 'object' && claims !== null && !Array.isArray(claims) ? claims : undefined
  } catch {
    return undefined
  }
}

function endpointError(
  response: Response,
  body: Record<string, unknown> | undefined,
  error: string | undefined,
  where: string,
  options: ReadTokenResponseOptions,
): TokenError {
  const { status } = response
  const rejected = options.rejected ?? 'session'
  const secrets = options.secrets ?? []
  // The server's code as shown (`.error`, message): scrubbed, printable ASCII, at most 64
  // characters. It is classified below as received.
  const shown = error && quote(error, secrets, 64, /[^\x20-\x7e]/g)
  const said = body ? describeBody(body, shown, secrets) : ''
  const retryAfter = parseRetryAfter(response.headers.get('retry-after'))
  const details = { status, response, ...(shown && { error: shown }), ...(retryAfter !== undefined && { retryAfter }) }
  let code: TokenErrorCode = 'ERR_TOKEN_ENDPOINT'
  let next = status >= 500 || status === 429 ? 'The server is failing or rate limiting; try again later.' : 'Check the grant settings (URL, body encoding, client authentication).'
  if (error === 'use_dpop_nonce') {
    // RFC 9449 §8: not a verdict on the credentials; the sender already retried once with the new nonce.
    next = 'The server asked again for a DPoP proof with a new nonce after one retry with the nonce it had sent; stored tokens were kept. Check the server\'s nonce policy and try again.'
  } else if (error === 'invalid_client' || (rejected === 'client' && (status === 401 || status === 403))) {
    code = 'ERR_INVALID_CLIENT'
    next = 'The client credentials (or login) were rejected: check them, or ask the provider whether they were rotated.'
  } else if (error === 'invalid_grant' || (rejected === 'session' && (status === 401 || status === 403))) {
    code = 'ERR_SESSION_ENDED'
    next = 'The refresh token was rejected, so the stored tokens were deleted. Sign the user in again and call setTokens().'
  }
  return new TokenError(code, `The token endpoint ${where} answered ${status}${said}. ${next}`, details)
}

/**
 * @internal The error for a 3xx (or a browser's `opaqueredirect`, status 0) from a token or
 * revocation endpoint, or `undefined` for any other response. Token requests are sent with
 * `redirect: 'manual'` and never follow: a 307/308 would re-send the refresh token, client secret
 * or password to wherever `Location` points. The message names the target's origin only (with
 * `secrets` scrubbed from it).
 */
export function redirectError(response: Response, endpoint: 'token' | 'revocation', where: string, after: string, secrets: readonly string[] = []): TokenError | undefined {
  const { status } = response
  if (response.type !== 'opaqueredirect' && (status < 300 || status > 399)) return undefined
  response.body?.cancel().catch(() => {})
  const location = response.headers.get('location')
  let target = ''
  if (location !== null) {
    try {
      target = ` to ${quote(new URL(location, response.url || where).origin, secrets, 200)}`
    } catch {
      target = ' to an unreadable location'
    }
  }
  return new TokenError(
    'ERR_TOKEN_ENDPOINT',
    `The ${endpoint} endpoint ${where} answered ${status ? `${status} (a redirect${target})` : 'with a redirect'}. Token requests never follow redirects, which would send the refresh token and client credentials elsewhere: configure the final ${endpoint} URL in the grant's options. ${after}`,
    { status, response },
  )
}

/** `origin + pathname` only: a query string may carry secrets. */
export function describeURL(url: string): string {
  try {
    const { origin, pathname } = new URL(url)
    return origin + pathname
  } catch {
    return '(unknown URL)'
  }
}

function errorCodeOf(body: Record<string, unknown>): string | undefined {
  const { error } = body
  if (typeof error === 'string') return error
  if (isRecord(error) && typeof error.code === 'string') return error.code // stemp: {error:{code,message}}
  return undefined
}

function describeBody(body: Record<string, unknown>, code: string | undefined, secrets: readonly string[]): string {
  const nested = isRecord(body.error) ? body.error.message : undefined
  const text = [body.error_description, body.message, nested].find((value) => typeof value === 'string') as string | undefined
  let out = code ? ` ${code}` : ''
  if (text) out += `: "${quote(text, secrets, 200)}"`
  return out
}

// Server text fit to quote: scrubbed first (a cap applied first could cut a secret in half and
// leave its prefix), then stripped of control characters (`unsafe`), then cut to `max`.
function quote(text: string, secrets: readonly string[], max: number, unsafe = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu): string {
  return scrub(text, secrets).replace(unsafe, '').slice(0, max)
}

/**
 * Replace every secret in `text`, in every form a server may echo it: raw, percent-encoded
 * (`encodeURIComponent` and form style, either hex case), JSON-escaped (also with `\/` and
 * `\uXXXX`, as PHP writes it), base64 and base64url (padded or not). Pass the `user:secret`
 * string of a Basic header as a secret to catch the header's base64. Secrets under 4 characters
 * are ignored. The library's defence against servers that echo what they received.
 */
export function scrub(text: string, secrets: readonly string[]): string {
  const forms = new Set<string>()
  for (const secret of secrets) if (secret && secret.length >= 4) for (const form of encodings(secret)) forms.add(form)
  // Longest first, so no shorter form can break a longer one before it is found.
  for (const form of [...forms].sort((a, b) => b.length - a.length)) text = text.split(form).join('[redacted]')
  return text
}

function encodings(value: string): string[] {
  const uri = encodeURIComponent(value)
  const form = new URLSearchParams({ v: value }).toString().slice(2)
  const json = JSON.stringify(value).slice(1, -1)
  const base64 = btoa(String.fromCharCode(...new TextEncoder().encode(value)))
  const base64url = base64.replace(/\+/g, '-').replace(/\//g, '_')
  const lower = (encoded: string) => encoded.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase())
  const php = json.replace(/\//g, '\\/').replace(/[^\x00-\x7f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return [value, uri, form, lower(uri), lower(form), json, php, base64, base64.replace(/=+$/, ''), base64url, base64url.replace(/=+$/, '')]
}

/** `Retry-After` as seconds (delta-seconds or HTTP date), or `undefined`. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000
  return Number.isFinite(seconds) ? Math.max(0, seconds) : undefined
}

// Reads at most `limit` bytes of a body as text; `undefined` when it is larger (the rest is cancelled).
async function readCapped(response: Response, limit = BODY_LIMIT): Promise<string | undefined> {
  if (!response.body) return ''
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      reader.cancel().catch(() => {})
      return undefined
    }
    chunks.push(value)
  }
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return new TextDecoder().decode(bytes)
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
