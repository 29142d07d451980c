/**
 * The entry point: one object with the ky hooks and the session's controls. It also wires the
 * extension points that change how a token is presented (`scheme`, `header`, `headers`, a sender
 * constraint such as DPoP) and when a response means "token rejected" (`shouldRefresh`), so the
 * engine itself stays unaware of them.
 *
 * @module
 */
import type { Hooks, KyInstance } from 'ky'
import { TokenError } from './errors.js'
import type { SenderConstraint } from './grants/sender.js'
import { expectTokenType, tokenTypeProblem } from './grants/token-response.js'
import { createHooks, type ShouldRefresh, type WithheldEvent } from './ky/hooks.js'
import { createSession, type GetTokenOptions, type SessionEvents, type SessionOptions } from './session.js'
import type { TokenResponseBody, TokenSet, TokenStorage } from './types.js'
import { originMatcher, toOrigin } from './utils/origin.js'

// RFC 9110 token: a header name or an auth scheme.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Options for {@link createTokenAuth}. */
export interface TokenAuthOptions extends SessionOptions {
  /**
   * The origins that receive the token: exact `scheme://host:port` matches, or a predicate.
   * Default: the grant's token-endpoint origin. Any other origin gets no token, even through
   * the same ky instance.
   * > [!WARNING]
   * > Every listed origin can use the token. List only the API that issued it.
   */
  origins?: readonly string[] | ((url: URL) => boolean)
  /**
   * Headers sent along with the token, only to allowed origins, e.g. DokStamp's
   * `{ 'X-Tenant': 'acme' }`; or a function of the token-set key (`context.authKey`, else the
   * `key` option) returning them, e.g. a tenant header per key:
   * `headers: (key) => ({ 'X-Tenant': key })`. The function runs for every authenticated request
   * (keep it cheap); its headers get the same protection as the token (stripped when a redirect
   * leaves the allow-list, redacted in errors).
   */
  headers?: Record<string, string> | ((key: string) => Record<string, string> | undefined)
  /**
   * The authentication scheme written before the token. Default `Bearer` in `Authorization`, no
   * scheme in any other header (see {@link TokenAuthOptions.header}); `Token` gives
   * `Authorization: Token …`; `''` sends the bare token. Not allowed with `sender` (DPoP sets
   * its own scheme).
   */
  scheme?: string
  /**
   * The header that carries the token. Default `Authorization`; e.g. `X-Api-Key` for APIs that
   * take the bare token there. A request that already has this header (set by the caller) is
   * sent as it is and never refreshed. Not allowed with `sender`.
   */
  header?: string
  /**
   * When an error response means "the token was rejected: refresh once and replay". Called for
   * each non-2xx response from an allowed origin to a request that carried a token, with the
   * response (status, headers, and a readable body: `await response.json()`) and the request.
   * Default: `response.status === 401`. A 403 is never a reason to refresh unless this says so
   * (by default it is `ERR_INSUFFICIENT_SCOPE`). With a sender, a nonce challenge is answered
   * before this is asked. If it throws, the answer is "no" and an `error` event reports it.
   *
   * @example
   * ```ts
   * // An API that signals an expired token with 419, or a 400 whose body says so.
   * shouldRefresh: async (response) =>
   *   response.status === 401 || response.status === 419 ||
   *   (response.status === 400 && (await response.json().catch(() => ({}))).code === 'token_expired')
   * ```
   */
  shouldRefresh?: ShouldRefresh
  /**
   * A sender constraint: tokens bound to a key the client holds, with a proof on every request
   * and every token-endpoint call. For DPoP (RFC 9449): `sender: dpop({ key })` from
   * `ky-token-refresh/dpop`. With it the token endpoint must answer its token type (`DPoP`; a
   * `Bearer` answer is `ERR_TOKEN_RESPONSE_INVALID`), requests carry `Authorization: DPoP …` and
   * a `DPoP` proof header (both only to allowed origins), and a 401 nonce challenge is retried
   * once with a new proof instead of refreshing. Without it, a `DPoP` token response is refused.
   */
  sender?: SenderConstraint
}

/** The events of {@link TokenAuth.on}: the engine's, plus the hooks' `withheld`. Payloads carry no token. */
export interface TokenAuthEvents extends SessionEvents {
  /**
   * A 401 answered a request that carried no token because of the allow-list (its origin is not
   * in `origins`, or a redirect left it): "the silent miss". Nothing was sent; the error's message
   * carries the same hint.
   */
  withheld: WithheldEvent
}

/** What {@link createTokenAuth} returns. */
export interface TokenAuth {
  /**
   * The ky hooks: pass to `ky.create({ hooks: auth.hooks })` or `api.extend({ hooks: auth.hooks })`.
   * Per request, `context: { auth: false }` skips authentication and `context: { authKey }` picks
   * a token set. Every per-request option works, `throwHttpErrors: false` and a custom `fetch`
   * included; the price is ky's `init` hook, which makes ky copy each request's options. For the
   * fastest path use {@link TokenAuth.extend}.
   */
  readonly hooks: Hooks
  /**
   * Add authentication to a ky instance, settled once for the instance: the hooks without an
   * `init` hook, a fetch that keeps credentials on their origins across redirects, and the
   * `throwHttpErrors` choice of `api`. The fastest way to use this library.
   *
   * Trade-off: per-request `fetch` or `throwHttpErrors: false` options given later to a request
   * bypass what was settled here (a 401 then comes back unhandled); use `auth.hooks` for those.
   *
   * @example
   * ```ts
   * const api = auth.extend(ky.create({ prefix: 'https://api.stemp.app/api/v1' }))
   * ```
   */
  extend(api: KyInstance): KyInstance
  /** The storage adapter in use. */
  readonly storage: TokenStorage
  /** A valid access token for non-ky callers; refreshes (once, shared) when needed. */
  getAccessToken(options?: GetTokenOptions): Promise<string>
  /** Store tokens obtained elsewhere (after sign-in or an OAuth callback): a token response body or a `TokenSet`. */
  setTokens(tokens: TokenResponseBody | TokenSet, options?: { key?: string }): Promise<void>
  /**
   * Sign out: delete stored tokens first, cancel any refresh in flight (its result is discarded),
   * then revoke at the server if the grant can (best-effort; failures become `error` events).
   */
  logout(options?: { key?: string; revoke?: boolean }): Promise<void>
  /** Listen to an event; returns a function that removes the listener. */
  on<E extends keyof TokenAuthEvents>(type: E, listener: (event: TokenAuthEvents[E]) => void): () => void
  /**
   * Release this instance: stop watching storage and drop every in-memory token set. A refresh
   * already at the token endpoint finishes and is saved (the server may have rotated: losing the
   * new refresh token would end the session everywhere). Stored tokens stay. Later calls fail with
   * `ERR_DISPOSED`. Also available as `using auth = createTokenAuth(…)` (`Symbol.dispose`).
   */
  dispose(): void
  /** Same as {@link TokenAuth.dispose}, for `using` declarations. */
  [Symbol.dispose](): void
}

/**
 * Create the token engine and its ky hooks.
 *
 * @example
 * ```ts
 * import ky from 'ky'
 * import { createTokenAuth, refreshTokenGrant } from 'ky-token-refresh'
 *
 * const auth = createTokenAuth({
 *   grant: refreshTokenGrant({ url: 'https://api.stemp.app/api/v1/apps/oauth2/refresh', body: 'json' }),
 * })
 * await auth.setTokens(tokenResponseFromSignIn)
 * const api = ky.create({ prefix: 'https://api.stemp.app/api/v1', hooks: auth.hooks })
 * const passes = await api.get('passes').json()
 * ```
 */
export function createTokenAuth(options: TokenAuthOptions): TokenAuth {
  const { sender } = options
  const presentation = checkPresentation(options)
  // With a sender, every token-endpoint call goes through its transport (a proof per call), and
  // every token response must carry its token type.
  const session = createSession(sender ? { ...options, fetch: expectTokenType(sender.tokenFetch(options.fetch ?? ((input, init) => globalThis.fetch(input, init))), sender.tokenType) } : options)
  const origins = options.origins ?? (options.grant?.url ? [toOrigin(new URL(options.grant.url).origin)] : undefined)
  if (!origins) throw new TypeError('"origins" is required when the grant has no token URL (e.g. staticToken()): list the API origins that may receive the token.')
  const { hooks, extend } = createHooks(session, { allowed: originMatcher(origins), headers: options.headers ?? {}, ...presentation, sender, shouldRefresh: options.shouldRefresh })
  const auth = {
    hooks,
    extend,
    storage: session.storage,
    getAccessToken: (options) => session.obtain(options).then((ticket) => ticket.token),
    setTokens: async (tokens, { key } = {}) => session.setTokens(sender ? ofType(tokens, sender.tokenType) : tokens, key),
    logout: ({ key, revoke } = {}) => session.logout(key, revoke),
    on: session.on as TokenAuth['on'],
    dispose: session.dispose,
  } as Omit<TokenAuth, typeof Symbol.dispose> as TokenAuth
  // Runtimes without explicit resource management still get a callable `dispose()`.
  ;(auth as unknown as Record<symbol, () => void>)[(Symbol as { dispose?: symbol }).dispose ?? Symbol.for('Symbol.dispose')] = session.dispose
  return auth
}

/** Validate `scheme`, `header`, `headers`, `shouldRefresh` and `sender` at setup; the token's header and scheme. */
function checkPresentation(options: TokenAuthOptions): { header: string; scheme: string } {
  const { sender, scheme, header, headers, shouldRefresh } = options
  if (sender !== undefined) {
    const valid = typeof sender === 'object' && sender !== null && typeof sender.authorize === 'function' && typeof sender.tokenFetch === 'function' && typeof sender.scheme === 'string' && TOKEN.test(sender.scheme)
    if (!valid) throw new TypeError('"sender" must be a sender constraint such as dpop({ key }) from "ky-token-refresh/dpop".')
    if (scheme !== undefined || header !== undefined) throw new TypeError(`"scheme" and "header" cannot be combined with "sender": ${sender.scheme} sends the token as "Authorization: ${sender.scheme} …".`)
  }
  if (header !== undefined && (typeof header !== 'string' || !TOKEN.test(header))) throw new TypeError(`"header" must be an HTTP header name such as "Authorization" or "X-Api-Key".`)
  if (scheme !== undefined && (typeof scheme !== 'string' || (scheme !== '' && !TOKEN.test(scheme)))) throw new TypeError(`"scheme" must be an HTTP auth scheme such as "Bearer" or "Token" (letters, digits, no spaces), or "" for the bare token.`)
  if (shouldRefresh !== undefined && typeof shouldRefresh !== 'function') throw new TypeError('"shouldRefresh" must be a function (response, request) => boolean.')
  const name = (header ?? 'authorization').toLowerCase()
  if (headers !== undefined && typeof headers !== 'function') {
    if (typeof headers !== 'object' || headers === null) throw new TypeError('"headers" must be a record of header names to values, or a function of the token-set key returning one.')
    for (const [key, value] of Object.entries(headers)) {
      if (typeof value !== 'string' || !TOKEN.test(key)) throw new TypeError(`"headers" has an invalid entry "${key}": names must be HTTP header names and values strings.`)
      const lower = key.toLowerCase()
      if (lower === name || (sender && lower === 'authorization') || sender?.headers.includes(lower)) {
        throw new TypeError(`"headers" cannot set "${key}": that header carries the token${sender ? ' or its proof' : ''}.`)
      }
    }
  }
  return { header: name, scheme: scheme ?? (name === 'authorization' ? 'Bearer' : '') }
}

/**
 * A token response handed to `setTokens()` must carry the sender's token type (`DPoP`): a bearer
 * token would be sent with a proof it is not bound to. The checked body goes on without the type
 * (the engine's own check knows only bearer).
 */
function ofType(tokens: TokenResponseBody | TokenSet, tokenType: string): TokenResponseBody | TokenSet {
  if (!('access_token' in tokens)) return tokens
  const problem = tokenTypeProblem(tokens.token_type, tokenType)
  if (problem) throw new TokenError('ERR_TOKEN_RESPONSE_INVALID', `setTokens() was given a token response with an unusable "token_type": ${problem}. Nothing was stored.`)
  const { token_type: _, ...rest } = tokens
  return rest as TokenResponseBody
}
