/**
 * The client-credentials grant (RFC 6749 §4.4) of Stenn and DokStamp: no refresh token, so a
 * "refresh" re-runs the grant.
 *
 * @module
 */
import type { Grant } from '../types.js'
import { assertURL } from './refresh-token.js'
import { callTokenEndpoint, clientAuthOf, type ClientAssertion, type ClientAuthMethod, type TokenEndpointOptions } from './token-endpoint.js'

/** Options for {@link clientCredentialsGrant}. */
export interface ClientCredentialsGrantOptions extends TokenEndpointOptions {
  /** The token endpoint, e.g. `https://api.dokstamp.com/oauth/token`. */
  url: string
  /** The client id. */
  clientId: string
  /**
   * The client secret (not needed with `private_key_jwt`). Never written to storage and scrubbed
   * from error messages.
   * > [!WARNING]
   * > Server-side only: anything in a browser bundle is public.
   */
  clientSecret?: string
  /**
   * How the client authenticates. Default `private_key_jwt` when `clientAssertion` is set, else
   * `client_secret_post` (the secret in the form body), which is what Stenn and DokStamp
   * document; `client_secret_basic` uses the `Authorization` header.
   */
  clientAuth?: Exclude<ClientAuthMethod, 'none'>
  /**
   * Signs the RFC 7523 client assertion for `private_key_jwt`: `privateKeyJwt({ key })` from
   * `ky-token-refresh/dpop`, or your own signer. A new assertion is signed for every attempt.
   *
   * @example
   * ```ts
   * import { privateKeyJwt } from 'ky-token-refresh/dpop'
   * clientCredentialsGrant({ url, clientId: 'reporting', clientAssertion: privateKeyJwt({ key: process.env.CLIENT_KEY_PEM! }) })
   * ```
   */
  clientAssertion?: ClientAssertion
  /** Space-separated scopes to request. */
  scope?: string
  /** Extra form fields, e.g. `{ audience: 'https://api.example.com' }`. */
  extra?: Record<string, string>
}

/**
 * Obtain tokens with a client id and secret. Every renewal re-authenticates; a 401 or
 * `invalid_client` from the endpoint is `ERR_INVALID_CLIENT` (credentials rotated or wrong).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4
 * @example
 * ```ts
 * const grant = clientCredentialsGrant({
 *   url: 'https://api.dokstamp.com/oauth/token',
 *   clientId: process.env.DOKSTAMP_CLIENT_ID!,
 *   clientSecret: process.env.DOKSTAMP_CLIENT_SECRET!,
 * })
 * ```
 */
export function clientCredentialsGrant(options: ClientCredentialsGrantOptions): Grant {
  assertURL(options.url, 'url')
  const clientAuth = clientAuthOf(options, 'client_secret_post')
  if (!options.clientId || (clientAuth !== 'private_key_jwt' && !options.clientSecret)) {
    throw new TypeError('clientCredentialsGrant() needs "clientId" and "clientSecret", or "clientId" and "clientAssertion" (private_key_jwt).')
  }
  const secrets = options.clientSecret ? [options.clientSecret] : []
  return {
    name: 'client_credentials',
    url: options.url,
    secrets,
    request(_current, context) {
      const fields: Record<string, string> = { grant_type: 'client_credentials', ...options.extra }
      if (options.scope) fields.scope = options.scope
      return callTokenEndpoint(
        { ...options, clientAuth, encoding: 'form', fields, idempotent: true, rejected: 'client', secrets },
        context,
      )
    },
  }
}
