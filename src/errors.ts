/**
 * One error class with a stable `code` per failure. Switch on `error.code`; the message says what
 * happened and what to do next, and never contains a token, secret, password or header value.
 *
 * @module
 */

/**
 * Every stable error code thrown by this library.
 *
 * | code | what happened | stored tokens |
 * | --- | --- | --- |
 * | `ERR_TOKEN_MISSING` | nothing stored for this key: sign in, then call `auth.setTokens()` | none |
 * | `ERR_TOKEN_RESPONSE_INVALID` | the token endpoint answered 2xx with a body that is not a usable token response | kept (a rotated refresh token in it is saved) |
 * | `ERR_TOKEN_ENDPOINT` | the token endpoint answered an error we cannot classify (5xx, 429, odd 4xx) or a redirect (3xx, never followed) | kept |
 * | `ERR_TOKEN_ENDPOINT_UNREACHABLE` | network fault or timeout talking to the token endpoint | kept |
 * | `ERR_INVALID_CLIENT` | the client credentials were rejected (`invalid_client`, 401 at login) | kept |
 * | `ERR_SESSION_ENDED` | the server said the refresh token or session is dead (`invalid_grant`), also when the one replay after a lost rotation response is rejected | deleted |
 * | `ERR_LOGGED_OUT` | the session this call started in ended while it waited (`auth.logout()` or a new sign-in, here or elsewhere) | deleted or replaced |
 * | `ERR_STILL_UNAUTHORIZED` | 401 again after one refresh and one retry; not retried further | kept |
 * | `ERR_STATIC_TOKEN_REJECTED` | a static API token got a 401; it cannot be refreshed | not stored |
 * | `ERR_INSUFFICIENT_SCOPE` | 403: the token is valid but lacks a scope; never refreshed | kept |
 * | `ERR_BODY_NOT_REPLAYABLE` | 401 on a request with a streaming body, which cannot be sent twice | refreshed |
 * | `ERR_STORAGE` | the storage adapter failed, timed out (`storageTimeout`) or returned something that is not a token set; nothing was overwritten (a failed write after a rotation is an `error` event instead: the new tokens stay in memory) | unchanged |
 * | `ERR_LOCK_TIMEOUT` | the refresh lock was not acquired in time | unchanged |
 * | `ERR_DISPOSED` | `auth.dispose()` ran; this instance does no more work | unchanged |
 */
export type TokenErrorCode =
  | 'ERR_TOKEN_MISSING'
  | 'ERR_TOKEN_RESPONSE_INVALID'
  | 'ERR_TOKEN_ENDPOINT'
  | 'ERR_TOKEN_ENDPOINT_UNREACHABLE'
  | 'ERR_INVALID_CLIENT'
  | 'ERR_SESSION_ENDED'
  | 'ERR_LOGGED_OUT'
  | 'ERR_STILL_UNAUTHORIZED'
  | 'ERR_STATIC_TOKEN_REJECTED'
  | 'ERR_INSUFFICIENT_SCOPE'
  | 'ERR_BODY_NOT_REPLAYABLE'
  | 'ERR_STORAGE'
  | 'ERR_LOCK_TIMEOUT'
  | 'ERR_DISPOSED'

/** Optional details attached to a {@link TokenError}. */
export interface TokenErrorDetails {
  /** The underlying error (network failure, storage exception). */
  cause?: unknown
  /** HTTP status of the response that caused the error. */
  status?: number
  /** The OAuth `error` code or vendor error code from the response body, e.g. `invalid_grant`. */
  error?: string
  /** The scope a 403 said is missing, when the server named it. */
  scope?: string
  /** Seconds the server asked us to wait (`Retry-After`). */
  retryAfter?: number
  /**
   * The response, attached non-enumerably so it stays out of logs and `JSON.stringify`. The error
   * keeps a copy without the body (status, headers, url): a server may echo what it was sent.
   */
  response?: Response
}

/**
 * The one error class of this library. `code` is stable; `message` is for humans.
 *
 * @example
 * ```ts
 * try {
 *   await api.get('passes').json()
 * } catch (error) {
 *   if (isTokenError(error) && error.code === 'ERR_SESSION_ENDED') showSignIn()
 * }
 * ```
 */
export class TokenError extends Error {
  override name = 'TokenError'
  /** A stable, machine-readable code; see {@link TokenErrorCode}. */
  readonly code: TokenErrorCode
  /** HTTP status of the response behind this error, when there was one. */
  readonly status?: number
  /** The server's error code (`invalid_grant`, `unauthorized`, …), when it sent one. */
  readonly error?: string
  /** The missing scope named by a 403, when the server named it. */
  readonly scope?: string
  /** Seconds the server asked to wait before trying again (`Retry-After`). */
  readonly retryAfter?: number
  /** The response that caused the error, without its body (non-enumerable: absent from logs and JSON). */
  declare readonly response?: Response

  /** Build an error; messages must not contain secrets (the library's own messages never do). */
  constructor(code: TokenErrorCode, message: string, details: TokenErrorDetails = {}) {
    super(message, 'cause' in details ? { cause: details.cause } : undefined)
    this.code = code
    const { status, error, scope, retryAfter, response } = details
    if (status !== undefined) this.status = status
    if (error !== undefined) this.error = error
    if (scope !== undefined) this.scope = scope
    if (retryAfter !== undefined) this.retryAfter = retryAfter
    const copy = response && withoutBody(response)
    if (copy) Object.defineProperty(this, 'response', { value: copy, enumerable: false })
  }

  /** A log-safe plain object: name, code, message, status, error, scope, retryAfter. */
  toJSON(): Record<string, unknown> {
    const { name, code, message, status, error, scope, retryAfter } = this
    return { name, code, message, status, error, scope, retryAfter }
  }
}

/**
 * Is `value` a {@link TokenError} (optionally with this `code`)? Also true across realms
 * (iframes, workers, two copies of the package), where `instanceof` fails.
 */
export function isTokenError(value: unknown, code?: TokenErrorCode): value is TokenError {
  const candidate = value as TokenError | undefined
  return (
    (value instanceof TokenError || (candidate?.name === 'TokenError' && typeof candidate.code === 'string')) &&
    (code === undefined || candidate!.code === code)
  )
}

/**
 * @internal A body-less copy of `response`: what was sent back stays out of the error (a server
 * may echo a token, secret or password in it; some runtimes keep the bytes of a read body reachable).
 */
export function withoutBody(response: Response): Response | undefined {
  try {
    const copy = new Response(null, { status: response.status, statusText: response.statusText, headers: response.headers })
    Object.defineProperty(copy, 'url', { value: response.url })
    return copy
  } catch {
    return undefined // a status a Response cannot be built with (0: an opaque redirect)
  }
}
