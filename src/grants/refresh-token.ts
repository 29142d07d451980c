/**
 * The refresh-token grant (RFC 6749 §6) in both wire styles: form-encoded OAuth and the JSON
 * `{ "refresh_token": … }` body of stemp and Starship Rewards. Handles rotation.
 *
 * @module
 */
import { TokenError } from '../errors.js'
import type { Grant, GrantContext, StoredTokens, TokenSet } from '../types.js'
import { callTokenEndpoint, clientAuthOf, encode, signAssertion, type ClientAssertion, type ClientAuthMethod, type TokenEndpointOptions } from './token-endpoint.js'
import { describeURL, redirectError } from './token-response.js'

/** Options for {@link refreshTokenGrant}. */
export interface RefreshTokenGrantOptions extends TokenEndpointOptions {
  /** The refresh endpoint, e.g. `https://api.stemp.app/api/v1/apps/oauth2/refresh`. */
  url: string
  /**
   * `form` (RFC 6749: `grant_type=refresh_token&refresh_token=…`, form-encoded) or `json`
   * (`{"refresh_token": "…"}`, the stemp and Starship style). Default `form`.
   */
  body?: 'form' | 'json'
  /** OAuth client id, sent as the client authentication method requires. */
  clientId?: string
  /**
   * OAuth client secret. Never written to storage and scrubbed from error messages.
   * > [!WARNING]
   * > Keep secrets on servers; a browser bundle is public.
   */
  clientSecret?: string
  /**
   * How the client authenticates. Default `private_key_jwt` with a `clientAssertion`,
   * `client_secret_basic` with a secret, else `none`.
   */
  clientAuth?: ClientAuthMethod
  /**
   * Signs the RFC 7523 client assertion for `private_key_jwt`: `privateKeyJwt({ key })` from
   * `ky-token-refresh/dpop`. A new assertion (unique `jti`, short `exp`) is signed for every
   * attempt, and scrubbed from error messages like a secret.
   *
   * @example
   * ```ts
   * import { privateKeyJwt } from 'ky-token-refresh/dpop'
   * refreshTokenGrant({ url, clientId: 'my-bff', clientAssertion: privateKeyJwt({ key: process.env.CLIENT_KEY_PEM! }) })
   * ```
   */
  clientAssertion?: ClientAssertion
  /** Extra body fields, e.g. `{ scope: 'pass:read' }`. */
  extra?: Record<string, string>
  /** RFC 7009 revocation endpoint, called best-effort by `auth.logout()`. */
  revocationUrl?: string
}

/**
 * Refresh with a stored refresh token. A `refresh_token` in the response replaces the stored one
 * (rotation) and is persisted before any waiting request resumes; `null` or absent keeps the old
 * one. A rejected refresh token (`invalid_grant`, or 401/403 from the endpoint) ends the session.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 * @see https://www.rfc-editor.org/rfc/rfc7009
 * @example
 * ```ts
 * const grant = refreshTokenGrant({ url: 'https://api.stemp.app/api/v1/apps/oauth2/refresh', body: 'json' })
 * ```
 */
export function refreshTokenGrant(options: RefreshTokenGrantOptions): Grant {
  assertURL(options.url, 'url')
  const clientAuth = clientAuthOf(options, options.clientSecret ? 'client_secret_basic' : 'none')
  const secrets = options.clientSecret ? [options.clientSecret] : []
  const call = (url: string, fields: Record<string, string>, rejected: 'session' | 'client', context: GrantContext) =>
    callTokenEndpoint({ ...options, clientAuth, url, encoding: options.body ?? 'form', fields, idempotent: false, rejected, secrets }, context)
  return {
    name: 'refresh_token',
    url: options.url,
    rotates: true,
    secrets,
    async request(current, context): Promise<TokenSet> {
      const refreshToken = current?.refreshToken
      if (!refreshToken) {
        throw new TokenError(
          'ERR_TOKEN_MISSING',
          'No refresh token is stored for this key. Sign the user in, then call auth.setTokens() with the token response.',
        )
      }
      const fields: Record<string, string> = options.body === 'json'
        ? { refresh_token: refreshToken, ...options.extra }
        : { grant_type: 'refresh_token', refresh_token: refreshToken, ...options.extra }
      return call(options.url, fields, 'session', context)
    },
    ...(options.revocationUrl !== undefined && {
      async revoke(tokens: StoredTokens, context: GrantContext) {
        if (!tokens.refreshToken) return
        const fields = { token: tokens.refreshToken, token_type_hint: 'refresh_token' }
        // RFC 7009 §2.1: the client authenticates as it does at the token endpoint, and like it
        // never follows a redirect. The server answers 200 with an empty body; anything else is
        // reported, never thrown at the user.
        const assertion = await signAssertion({ ...options, clientAuth }, options.revocationUrl!)
        const request = encode({ ...options, clientAuth, encoding: options.body ?? 'form', fields }, assertion)
        const response = await context.fetch(options.revocationUrl!, { method: 'POST', signal: context.signal, ...request })
        const redirect = redirectError(response, 'revocation', describeURL(options.revocationUrl!), 'The tokens were deleted locally anyway.', [...secrets, tokens.refreshToken, ...(assertion ? [assertion] : [])])
        if (redirect) throw redirect
        if (!response.ok) throw new TokenError('ERR_TOKEN_ENDPOINT', `Token revocation answered ${response.status}; the tokens were deleted locally anyway.`, { status: response.status })
      },
    }),
  }
}

/** @internal Throw a `TypeError` naming the option when `value` is not an absolute URL. */
export function assertURL(value: unknown, option: string): void {
  if (typeof value !== 'string' || !URL.canParse(value)) {
    throw new TypeError(`"${option}" must be an absolute URL string, e.g. "https://auth.example.com/token".`)
  }
}
