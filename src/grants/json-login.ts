/**
 * The JSON login grant of Starship Rewards: `POST {email, password}` returns access and refresh
 * tokens; later renewals use the JSON refresh endpoint, and fall back to logging in again when
 * the refresh token is dead.
 *
 * @module
 */
import { TokenError, isTokenError } from '../errors.js'
import type { Grant } from '../types.js'
import { assertURL } from './refresh-token.js'
import { callTokenEndpoint, type TokenEndpointOptions } from './token-endpoint.js'

/** Options for {@link jsonLoginGrant}. */
export interface JSONLoginGrantOptions extends TokenEndpointOptions {
  /** The login endpoint, e.g. `https://host/auth/login`. */
  loginUrl: string
  /** The JSON refresh endpoint, e.g. `https://host/auth/refresh`. Without it, every renewal logs in. */
  refreshUrl?: string
  /**
   * The login body, e.g. `{ email, password }`, or a function returning it (read a vault at call
   * time). Kept in memory only: never written to storage, scrubbed from error messages.
   */
  credentials: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>)
}

/**
 * Log in with JSON credentials and keep the session alive with the JSON refresh endpoint.
 * A rejected refresh token triggers one fresh login. Rejected credentials (a 401 at login, e.g.
 * after the provider rotated them) are `ERR_INVALID_CLIENT`; when they follow a rejected refresh
 * token the error is `ERR_SESSION_ENDED` (stored tokens deleted) with the login failure as `cause`.
 *
 * > [!WARNING]
 * > Server-side use only. The password stays in this process's memory and is never written to
 * > storage, but it must never ship in a browser bundle.
 *
 * @example
 * ```ts
 * const grant = jsonLoginGrant({
 *   loginUrl: 'https://rewards.example/auth/login',
 *   refreshUrl: 'https://rewards.example/auth/refresh',
 *   credentials: { email: process.env.STARSHIP_EMAIL!, password: process.env.STARSHIP_PASSWORD! },
 * })
 * ```
 */
export function jsonLoginGrant(options: JSONLoginGrantOptions): Grant {
  assertURL(options.loginUrl, 'loginUrl')
  if (options.refreshUrl !== undefined) assertURL(options.refreshUrl, 'refreshUrl')
  const fixed = typeof options.credentials === 'function' ? undefined : options.credentials
  return {
    name: 'json_login',
    url: options.loginUrl,
    rotates: options.refreshUrl !== undefined,
    secrets: fixed ? Object.values(fixed) : [],
    async request(current, context) {
      let ended: TokenError | undefined
      if (options.refreshUrl && current?.refreshToken) {
        try {
          return await callTokenEndpoint(
            { ...options, url: options.refreshUrl, encoding: 'json', fields: { refresh_token: current.refreshToken }, idempotent: false, rejected: 'session', secrets: [] },
            context,
          )
        } catch (error) {
          if (!isTokenError(error, 'ERR_SESSION_ENDED')) throw error
          ended = error
        }
      }
      const credentials = fixed ?? (await (options.credentials as () => Record<string, string>)())
      try {
        return await callTokenEndpoint(
          { ...options, url: options.loginUrl, encoding: 'json', fields: credentials, idempotent: true, rejected: 'client', secrets: Object.values(credentials) },
          context,
        )
      } catch (error) {
        // The stored refresh token is dead either way: report the session as ended (so storage is
        // cleared) and keep the login failure as the cause.
        if (!ended || !isTokenError(error)) throw error
        throw new TokenError('ERR_SESSION_ENDED', `The refresh token was rejected and logging in again failed: ${error.message}`, {
          cause: error,
          ...(ended.error !== undefined && { error: ended.error }),
          ...(error.status !== undefined && { status: error.status }),
        })
      }
    },
  }
}
