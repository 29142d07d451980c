/**
 * ky-token-refresh: keep ky requests authenticated with short-lived bearer tokens.
 *
 * @module
 */
export { createTokenAuth, type TokenAuth, type TokenAuthEvents, type TokenAuthOptions } from './create-token-auth.js'
export type { AuthContext, ShouldRefresh, WithheldEvent } from './ky/hooks.js'
export type { SenderConstraint } from './grants/sender.js'
export type { GetTokenOptions, SessionEvents, SessionOptions } from './session.js'
export { TokenError, isTokenError, type TokenErrorCode, type TokenErrorDetails } from './errors.js'
export { refreshTokenGrant, type RefreshTokenGrantOptions } from './grants/refresh-token.js'
export { clientCredentialsGrant, type ClientCredentialsGrantOptions } from './grants/client-credentials.js'
export { jsonLoginGrant, type JSONLoginGrantOptions } from './grants/json-login.js'
export { staticToken } from './grants/static-token.js'
export { readTokenResponse, toTokenSet, type ReadTokenResponseOptions } from './grants/token-response.js'
export type { ClientAssertion, ClientAuthMethod, TokenEndpointOptions } from './grants/token-endpoint.js'
export { memoryStorage } from './storage/memory.js'
export { createLocalLock, type WithLock } from './coordination/local-lock.js'
export type { Grant, GrantContext, LockOptions, StoredTokens, TokenResponseBody, TokenSet, TokenStorage } from './types.js'
