/**
 * Where ky plugs in: `init` prepares each request, `beforeRequest` injects the token,
 * `afterResponse` turns a 401 into one refresh and one retry, and a 403 into a typed error.
 *
 * @module
 */
import ky, { type Hooks, type Options } from 'ky'
import { TokenError } from '../errors.js'
import { readCapped } from '../grants/token-response.js'
import type { Session } from '../session.js'
import type { OriginMatcher } from '../utils/origin.js'

// Per-request state travels in ky's `context` (cloned per request before `init` runs) under a
// symbol key, so it cannot collide with the caller's own context fields.
const STATE = Symbol.for('ky-token-refresh.state')

interface RequestState {
  key: string
  /** The token this request carries, when we attached one. */
  token?: string
  /** Forced auth retries done (0 or 1). */
  retries: number
  /** A `ReadableStream` body: cannot be replayed. */
  stream: boolean
  /** The caller's `throwHttpErrors` (ky leaves it out of the options hooks see). */
  throws: Options['throwHttpErrors']
}

/** Per-request options read from ky's `context`. */
export interface AuthContext {
  /** `false` sends this request without a token and without 401 handling. */
  auth?: boolean
  /** The token set (storage key) for this request, e.g. a tenant or user id. */
  authKey?: string
}

/** @internal Build the ky hooks for a session. */
export function createHooks(session: Session, allowed: OriginMatcher, headers: Record<string, string>): Required<Pick<Hooks, 'init' | 'beforeRequest' | 'afterResponse'>> {
  const stateOf = (options: { context?: Record<PropertyKey, unknown> }) => options.context?.[STATE] as RequestState | undefined
  return {
    init: [
      (options: Options) => {
        const context = (options.context ?? {}) as AuthContext
        if (context.auth === false) return
        const state: RequestState = {
          key: typeof context.authKey === 'string' ? context.authKey : session.defaultKey,
          retries: 0,
          stream: typeof ReadableStream !== 'undefined' && options.body instanceof ReadableStream,
          throws: options.throwHttpErrors,
        }
        options.context = { ...options.context, [STATE]: state }
        if (state.stream) return // ky would tee and buffer the whole upload to allow a retry
        // ky only replays bodies and honours ky.retry() when retry.limit > 0. Reserve one extra
        // attempt for the auth retry and keep the caller's own retry budget exactly as it was.
        const retry = options.retry
        const base = typeof retry === 'object' ? retry : {}
        const limit = typeof retry === 'number' ? retry : (base.limit ?? 2)
        const shouldRetry = base.shouldRetry
        options.retry = {
          ...base,
          limit: limit + 1,
          shouldRetry: (retryState) => (retryState.retryCount - state.retries > limit ? false : shouldRetry?.(retryState)),
        }
      },
    ],
    beforeRequest: [
      async ({ request, options }) => {
        const state = stateOf(options)
        // An Authorization header set by the caller wins; we neither replace nor refresh it.
        if (!state || !allowed(request.url) || request.headers.has('authorization')) return
        const token = await session.getAccessToken({ key: state.key, signal: request.signal })
        state.token = token
        request.headers.set('authorization', `Bearer ${token}`)
        for (const [name, value] of Object.entries(headers)) request.headers.set(name, value)
      },
    ],
    afterResponse: [
      async ({ request, options, response }) => {
        const state = stateOf(options)
        if (!state?.token || (response.status !== 401 && response.status !== 403)) return
        const throws = typeof state.throws === 'function' ? state.throws(response.status) : state.throws !== false
        const where = describe(request)
        if (response.status === 403) {
          if (!throws) return
          const scope = await missingScope(response)
          throw new TokenError(
            'ERR_INSUFFICIENT_SCOPE',
            `${where} answered 403: the token is valid but lacks ${scope ? `the "${scope}" scope` : 'a permission'}. Request the scope (or use another token); refreshing will not help.`,
            { status: 403, response, ...(scope && { scope }) },
          )
        }
        if (!session.refreshable) {
          if (!throws) return
          throw new TokenError('ERR_STATIC_TOKEN_REJECTED', `${where} rejected the static API token (401). It cannot be refreshed: check that it was not revoked and belongs to this API.`, { status: 401, response })
        }
        if (state.retries > 0) {
          if (!throws) return
          throw new TokenError('ERR_STILL_UNAUTHORIZED', `${where} answered 401 again after one token refresh and one retry; not retrying further. The server may have revoked the session or the token lacks access.`, { status: 401, response })
        }
        const token = await session.renew(state.key, state.token, request.signal)
        if (state.stream) {
          throw new TokenError('ERR_BODY_NOT_REPLAYABLE', `${where} answered 401 to a request with a streaming body, which cannot be sent twice. The token was refreshed: send the request again.`, { status: 401, response })
        }
        state.retries++
        state.token = token
        const retryHeaders = new Headers(request.headers)
        retryHeaders.set('authorization', `Bearer ${token}`)
        return ky.retry({ request: new Request(request, { headers: retryHeaders }), delay: 0, code: 'TOKEN_REFRESHED' })
      },
    ],
  }
}

function describe(request: Request): string {
  const url = new URL(request.url)
  return `${request.method} ${url.origin}${url.pathname}`
}

// RFC 6750 §3: `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`; else a body field.
async function missingScope(response: Response): Promise<string | undefined> {
  const header = /\bscope="([^"]*)"/.exec(response.headers.get('www-authenticate') ?? '')?.[1]
  if (header) return header
  try {
    const body = JSON.parse((await readCapped(response, 8192)) ?? '') as Record<string, any>
    const value = body.scope ?? body.required_scope ?? body.error?.scope
    return typeof value === 'string' ? value : undefined
  } catch {
    return undefined
  }
}
