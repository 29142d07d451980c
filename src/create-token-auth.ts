/**
 * The entry point: one object with the ky hooks and the session's controls.
 *
 * @module
 */
import type { Hooks, KyInstance } from 'ky'
import { createHooks } from './ky/hooks.js'
import { createSession, type GetTokenOptions, type SessionEvents, type SessionOptions } from './session.js'
import type { TokenResponseBody, TokenSet, TokenStorage } from './types.js'
import { originMatcher, toOrigin } from './utils/origin.js'

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
   * `{ 'X-Tenant': 'acme' }`.
   */
  headers?: Record<string, string>
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
  on<E extends keyof SessionEvents>(type: E, listener: (event: SessionEvents[E]) => void): () => void
  /**
   * Release this instance: stop watching storage, cancel refreshes in flight (their results are
   * discarded) and drop every in-memory token set. Stored tokens stay. Later calls fail with
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
  const session = createSession(options)
  const origins = options.origins ?? (options.grant.url ? [toOrigin(new URL(options.grant.url).origin)] : undefined)
  if (!origins) throw new TypeError('"origins" is required when the grant has no token URL (e.g. staticToken()): list the API origins that may receive the token.')
  const { hooks, extend } = createHooks(session, originMatcher(origins), options.headers ?? {})
  const auth = {
    hooks,
    extend,
    storage: session.storage,
    getAccessToken: (options) => session.obtain(options).then((ticket) => ticket.token),
    setTokens: (tokens, { key } = {}) => session.setTokens(tokens, key),
    logout: ({ key, revoke } = {}) => session.logout(key, revoke),
    on: session.on,
    dispose: session.dispose,
  } as Omit<TokenAuth, typeof Symbol.dispose> as TokenAuth
  // Runtimes without explicit resource management still get a callable `dispose()`.
  ;(auth as unknown as Record<symbol, () => void>)[(Symbol as { dispose?: symbol }).dispose ?? Symbol.for('Symbol.dispose')] = session.dispose
  return auth
}
