/**
 * Where ky plugs in: `init` prepares each request, `beforeRequest` injects the token, ky's own
 * retry machinery replays a 401 once after one refresh (`retry.shouldRetry` + `beforeRetry`), and
 * `beforeError` turns what cannot be fixed into a typed error.
 *
 * Why not `afterResponse`: ky clones the response for every `afterResponse` hook, on every
 * request; that clone alone made the hot path ~50 % slower than bare ky. The retry path costs
 * nothing until a request actually fails.
 *
 * @module
 */
import ky, { isHTTPError, type Hooks, type KyResponse, type Options } from 'ky'
import { TokenError } from '../errors.js'
import type { Session } from '../session.js'
import type { OriginMatcher } from '../utils/origin.js'

// Per-request state travels in ky's `context` (cloned per request before `init` runs) under a
// symbol key, so it cannot collide with the caller's own context fields.
const STATE = Symbol.for('ky-token-refresh.state')
const ALL_METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options', 'trace']

interface RequestState {
  key: string
  /** The token this request carries, when we attached one. */
  token?: string | undefined
  /** The token to put on the next retry (set when a 401 was answered with a renewal). */
  next?: string | undefined
  /** Auth retries done (0 or 1). */
  retries: number
  /** A `ReadableStream` body: cannot be replayed. */
  stream: boolean
}

/** Per-request options read from ky's `context`. */
export interface AuthContext {
  /** `false` sends this request without a token and without 401 handling. */
  auth?: boolean
  /** The token set (storage key) for this request, e.g. a tenant or user id. */
  authKey?: string
}

type RetryOptions = Exclude<NonNullable<Options['retry']>, number>
// ky's documented default: 0.3 s × 2^(attempt − 1).
const defaultDelay = (attempt: number) => 0.3 * 2 ** (attempt - 1) * 1000

/** @internal Build the ky hooks for a session. */
export function createHooks(session: Session, allowed: OriginMatcher, headers: Record<string, string>): Required<Pick<Hooks, 'init' | 'beforeRequest' | 'beforeRetry' | 'beforeError'>> {
  const stateOf = (options: { context?: Record<PropertyKey, unknown> }) => options.context?.[STATE] as RequestState | undefined
  const headerEntries = Object.entries(headers)

  // After a 401: use the token someone else already got, or refresh once. `true` = replay.
  const renew = async (state: RequestState, signal: AbortSignal) => {
    if (!session.refreshable || state.retries > 0 || !state.token) return false
    const token = await session.renew(state.key, state.token, signal)
    if (state.stream) return false
    state.next = token
    return true
  }

  // Put the renewed token on the retry's headers and count the auth retry (once).
  const useNext = (state: RequestState, headers: Headers) => {
    if (state.next === undefined) return
    headers.set('authorization', `Bearer ${state.next}`)
    state.token = state.next
    state.next = undefined
    state.retries++
  }

  const afterResponse = async ({ request, options, response }: { request: Request; options: { context?: Record<PropertyKey, unknown> }; response: Response }) => {
    // Only for `throwHttpErrors: false`, where ky never reaches its retry path on a 401.
    const state = stateOf(options)
    if (state && response.status === 401 && (await renew(state, request.signal))) {
      const retryHeaders = new Headers(request.headers)
      useNext(state, retryHeaders)
      return ky.retry({ request: new Request(request, { headers: retryHeaders }), delay: 0, code: 'TOKEN_REFRESHED' })
    }
    return undefined
  }

  return {
    init: [
      (options: Options) => {
        const context = (options.context ?? {}) as AuthContext
        if (context.auth === false) return
        const state: RequestState = {
          key: typeof context.authKey === 'string' ? context.authKey : session.defaultKey,
          retries: 0,
          stream: typeof ReadableStream !== 'undefined' && options.body instanceof ReadableStream,
        }
        options.context = { ...options.context, [STATE]: state }
        if (options.throwHttpErrors === false) {
          // A new hooks object for this request only: the instance's arrays stay untouched.
          options.hooks = { ...options.hooks, afterResponse: [...(options.hooks?.afterResponse ?? []), afterResponse as never] }
        }
        if (state.stream) return // ky would tee and buffer the whole upload to allow a retry
        // ky replays bodies only when retry.limit > 0. Reserve one extra attempt for the auth
        // retry, let every method reach shouldRetry, and keep the caller's own policy exact.
        const retry = options.retry
        const base: RetryOptions = typeof retry === 'object' ? retry : {}
        const limit = typeof retry === 'number' ? retry : (base.limit ?? 2)
        const methods = base.methods ?? ['get', 'put', 'head', 'delete', 'options', 'trace']
        const { shouldRetry, delay } = base
        options.retry = {
          ...base,
          limit: limit + 1,
          methods: ALL_METHODS,
          // No wait before the auth retry; the caller's own retries keep their schedule.
          delay: (attempt) => (state.next !== undefined ? 0 : (delay ?? defaultDelay)(attempt - state.retries)),
          shouldRetry: async (retryState) => {
            const { error, retryCount } = retryState
            if (isHTTPError(error) && error.response.status === 401 && state.token) return renew(state, error.request.signal)
            const method = (error as { request?: Request }).request?.method.toLowerCase() ?? ''
            if (retryCount - state.retries > limit || !methods.includes(method)) return false
            return shouldRetry?.(retryState)
          },
        }
      },
    ],
    beforeRequest: [
      ({ request, options }) => {
        const state = stateOf(options)
        // An Authorization header set by the caller wins; we neither replace nor refresh it.
        if (!state || !allowed(request.url) || request.headers.has('authorization')) return undefined
        const attach = (token: string) => {
          state.token = token
          request.headers.set('authorization', `Bearer ${token}`)
          for (const [name, value] of headerEntries) request.headers.set(name, value)
        }
        // Hot path: a fresh token in memory is attached without a single await.
        const cached = session.peek(state.key)
        if (cached) return void attach(cached)
        return session.getAccessToken({ key: state.key, signal: request.signal }).then(attach)
      },
    ],
    beforeRetry: [
      ({ request, options }) => {
        const state = stateOf(options)
        if (state) useNext(state, request.headers)
      },
    ],
    beforeError: [
      async ({ error, options }) => {
        const state = stateOf(options)
        if (!state?.token || !isHTTPError(error)) return error
        const { response, request } = error
        const where = describe(request)
        if (response.status === 403) {
          const scope = missingScope(response, error.data)
          return new TokenError(
            'ERR_INSUFFICIENT_SCOPE',
            `${where} answered 403: the token is valid but lacks ${scope ? `the "${scope}" scope` : 'a permission'}. Request the scope (or use another token); refreshing will not help.`,
            { status: 403, response, cause: error, ...(scope && { scope }) },
          )
        }
        if (response.status !== 401) return error
        if (!session.refreshable) {
          return new TokenError('ERR_STATIC_TOKEN_REJECTED', `${where} rejected the static API token (401). It cannot be refreshed: check that it was not revoked and belongs to this API.`, { status: 401, response, cause: error })
        }
        if (state.stream) {
          // With a streaming body ky could not retry (and did not ask): refresh now for the next call.
          if (state.retries === 0) await session.renew(state.key, state.token, request.signal)
          return new TokenError('ERR_BODY_NOT_REPLAYABLE', `${where} answered 401 to a request with a streaming body, which cannot be sent twice. The token was refreshed: send the request again.`, { status: 401, response, cause: error })
        }
        return new TokenError('ERR_STILL_UNAUTHORIZED', `${where} answered 401 again after one token refresh and one retry; not retrying further. The server may have revoked the session or the token lacks access.`, { status: 401, response, cause: error })
      },
    ],
  }
}

function describe(request: Request): string {
  const url = new URL(request.url)
  return `${request.method} ${url.origin}${url.pathname}`
}

// RFC 6750 §3: `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`; else a body field.
function missingScope(response: KyResponse, data: unknown): string | undefined {
  const header = /\bscope="([^"]*)"/.exec(response.headers.get('www-authenticate') ?? '')?.[1]
  if (header) return header
  const body = (typeof data === 'object' && data !== null ? data : {}) as Record<string, any>
  const value = body.scope ?? body.required_scope ?? body.error?.scope
  return typeof value === 'string' ? value : undefined
}
