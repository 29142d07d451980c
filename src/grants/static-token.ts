/**
 * A static API token (stemp `sk_live_…`): injected as-is, never refreshed.
 *
 * @module
 */
import type { Grant } from '../types.js'

/**
 * Use a fixed API token. It never expires locally and is never refreshed: a 401 is final and
 * surfaces as `ERR_STATIC_TOKEN_REJECTED`. There is no token endpoint, so `createTokenAuth`
 * needs an explicit `origins` list.
 *
 * > [!WARNING]
 * > Server-side only: an API token in a browser bundle is public.
 *
 * @example
 * ```ts
 * const auth = createTokenAuth({ grant: staticToken(process.env.STEMP_API_TOKEN!), origins: ['https://api.stemp.app'] })
 * ```
 */
export function staticToken(token: string): Grant {
  if (typeof token !== 'string' || !token) throw new TypeError('staticToken() needs a non-empty token string.')
  return {
    name: 'static',
    refreshable: false,
    secrets: [token],
    async request(_current, context) {
      return { accessToken: token, receivedAt: context.now() }
    },
  }
}
