/**
 * The extension point for sender-constrained tokens (RFC 9449 DPoP, or a scheme of your own):
 * the contract between the core and an object such as `dpop()` from `ky-token-refresh/dpop`.
 *
 * Why an interface rather than DPoP in the core: a proof needs a signing key and a JOSE library,
 * which bearer users should not download. The core only knows *where* a sender constraint acts
 * (the token-endpoint transport, the API request's credentials, the 401 that is a challenge
 * rather than a dead token); the subpath knows *how*. Everything the core guarantees for bearer
 * tokens (allow-list, redirects, redaction, single flight, rotation, logout fencing) holds
 * unchanged, because the core still decides when and where credentials are attached.
 *
 * @module
 */

/**
 * How a sender-constrained token is presented. Pass one to `createTokenAuth({ sender })`; build it
 * with `dpop()` from `ky-token-refresh/dpop`, or implement it for another proof-of-possession
 * scheme. The core calls it as follows:
 *
 * - every token-endpoint call goes through {@link SenderConstraint.tokenFetch} (a proof per call);
 * - every authenticated API attempt (first send, the 401 retry, ky's own retries, each redirect
 *   hop that stays on the allow-list) goes through {@link SenderConstraint.authorize};
 * - every response from an allowed origin is shown to {@link SenderConstraint.observe};
 * - a 401 for which {@link SenderConstraint.challenge} is `true` is answered with one retry and a
 *   fresh proof, never with a token refresh.
 */
export interface SenderConstraint {
  /** The `Authorization` scheme, e.g. `"DPoP"`; also shown (with `[redacted]`) in errors. */
  readonly scheme: string
  /**
   * The `token_type` the token endpoint must answer (compared case-insensitively), e.g. `"DPoP"`.
   * A token response with another type (a plain `Bearer`) is `ERR_TOKEN_RESPONSE_INVALID`.
   */
  readonly tokenType: string
  /**
   * Lower-case names of the other headers {@link SenderConstraint.authorize} sets (e.g.
   * `["dpop"]`). They are treated as credentials: stripped when a redirect leaves the allow-list
   * and redacted on the requests an error carries.
   */
  readonly headers: readonly string[]
  /**
   * Wrap the transport used for token-endpoint calls (refresh, client credentials, revocation):
   * e.g. add a proof to every call, learn the server's nonce, retry once on a nonce challenge.
   */
  tokenFetch(fetch: typeof globalThis.fetch): typeof globalThis.fetch
  /**
   * Put the credentials for `token` on `request` (mutating its headers): the `Authorization`
   * header with {@link SenderConstraint.scheme} and any proof. Called for every attempt, so a
   * proof is never sent twice.
   */
  authorize(request: Request, token: string): Promise<void>
  /**
   * See a response from an allowed origin (e.g. remember its `DPoP-Nonce`), with the request it
   * answers (whose URL stands in when the response has none). Synchronous and cheap: it runs on
   * every response.
   */
  observe(response: Response, request: Request): void
  /**
   * Is this 401 a challenge that a fresh proof answers (DPoP's `use_dpop_nonce`), rather than a
   * rejected token? The request is then retried once with a new proof and no refresh.
   */
  challenge(response: Response): boolean
}

/** Errors thrown before anything was sent (a DPoP key that cannot be loaded): not a network failure. */
export const LOCAL_FAILURE: unique symbol = Symbol.for('ky-token-refresh.local-failure') as never

/** @internal Mark `error` as a local failure (nothing was sent), so it is not reported as "unreachable". */
export function localFailure<E extends Error>(error: E): E {
  Object.defineProperty(error, LOCAL_FAILURE, { value: true })
  return error
}

/** @internal Did this error happen before anything was sent? */
export function isLocalFailure(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[LOCAL_FAILURE] === true
}
