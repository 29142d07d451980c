/**
 * The client-credentials grant (RFC 6749 §4.4) of Stenn and DokStamp: no refresh token, so a
 * "refresh" re-runs the grant.
 *
 * @module
 */
import type { Grant } from '../types.js'
import { assertURL } from './refresh-token.js'
import { callTokenEndpoint, type ClientAuthMethod, type TokenEndpointOptions } from './token-endpoint.js'

/** Options for {@link clientCredentialsGrant}. */
export interface ClientCredentialsGrantOptions extends TokenEndpointOptions {
  /** The token endpoint, e.g. `https://api.dokstamp.com/oauth/token`. */
  url: string
  /** The client id. */
  clientId: string
  /**
   * The client secret. Never written to storage and scrubbed from error messages.
   * > [!WARNING]
   * > Server-side only: anything in a browser bundle is public.
   */
  clientSecret: string
  /**
   * How the secret is sent. Default `client_secret_post` (in the form body), which is what
   * Stenn and DokStamp document; `client_secret_basic` uses the `Authorization` header.
   */
  clientAuth?: Exclude<ClientAuthMethod, 'none'>
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
  if (!options.clientId || !options.clientSecret) throw new TypeError('"clientId" and "clientSecret" are required by clientCredentialsGrant().')
  const secrets = [options.clientSecret]
  return {
    name: 'client_credentials',
    url: options.url,
    secrets,
    request(_current, context) {
      const fields: Record<string, string> = { grant_type: 'client_credentials', ...options.extra }
      if (options.scope) fields.scope = options.scope
      return callTokenEndpoint(
        { ...options, clientAuth: options.clientAuth ?? 'client_secret_post', encoding: 'form', fields, idempotent: true, rejected: 'client', secrets },
        context,
      )
    },
  }
}
