/**
 * Where ky plugs in: `init` prepares each request, `beforeRequest` injects the token, ky's own
 * retry machinery replays a 401 once after one refresh (`retry.shouldRetry` + `beforeRetry`), and
 * `beforeError` turns what cannot be fixed into a typed error and redacts what ky would show.
 *
 * Why not `afterResponse`: ky clones the response for every `afterResponse` hook, on every
 * request; that clone alone made the hot path ~50 % slower than bare ky. The retry path costs
 * nothing until a request actually fails.
 *
 * Where the token must not go:
 * - Per-request state lives in a `WeakMap` keyed by the request's own `context` object, so nothing
 *   ky puts on an error (`error.options.context`) leads to a token.
 * - Every error leaving ky for a request we authenticated has `Authorization` and the configured
 *   headers redacted on the requests it carries (`error.request`, `cause`), and token echoes
 *   scrubbed from `error.data`.
 * - On runtimes whose fetch shows redirects (Node, Deno, workerd, Bun), an authenticated request
 *   follows redirects here: the token and the configured headers go only to allow-listed
 *   origins, and a 401 from anywhere else is not a reason to refresh. Browsers follow redirects
 *   before any code of ours runs (they drop `Authorization` across origins, not other headers);
 *   see SECURITY.md.
 *
 * @module
 */
import ky, { isHTTPError, type Hooks, type KyResponse, type Options } from 'ky'
import { TokenError } from '../errors.js'
import type { Session, Ticket } from '../session.js'
import type { OriginMatcher } from '../utils/origin.js'

const REDACTED = '[redacted]'
const REDIRECTS = new Set([301, 302, 303, 307, 308])
const MAX_REDIRECTS = 20

interface RequestState {
  key: string
  /** The token this request carries, with the session it belongs to, once we attached one. */
  ticket?: Ticket | undefined
  /** The renewed token for the next retry (set when a 401 was answered with a renewal). */
  next?: Ticket | undefined
  /** Every token this request carried (for redaction and scrubbing). */
  sent: string[]
  /** Auth retries done (0 or 1). */
  retries: number
  /** A `ReadableStream` body: cannot be replayed. */
  stream: boolean
  /** The caller's retry limit and methods, as ky normalised them (our auth retry comes on top). */
  limit: number
  methods: readonly string[]
}

/** Per-request options read from ky's `context`. */
export interface AuthContext {
  /** `false` sends this request without a token and without 401 handling. */
  auth?: boolean
  /** The token set (storage key) for this request, e.g. a tenant or user id. */
  authKey?: string
}

type RetryOptions = Exclude<NonNullable<Options['retry']>, number>
type Fetch = (input: Request, init?: RequestInit) => Promise<Response>

/** @internal Build the ky hooks for a session. */
export function createHooks(session: Session, allowed: OriginMatcher, headers: Record<string, string>): Required<Pick<Hooks, 'init' | 'beforeRequest' | 'beforeRetry' | 'beforeError'>> {
  const states = new WeakMap<object, RequestState>()
  const stateOf = (options: { context?: object }) => (options.context ? states.get(options.context) : undefined)
  const headerEntries = Object.entries(headers)
  const headerNames = headerEntries.map(([name]) => name.toLowerCase())
  // A 401 is ours to fix only when it came from an allow-listed origin (not a redirect target).
  const fromAllowed = (response: Response, request: Request) => allowed(response.url || request.url)

  // After a 401: use the token someone else already got, or refresh once. `true` = replay.
  const renew = async (state: RequestState, signal: AbortSignal) => {
    if (!session.refreshable || state.retries > 0 || !state.ticket) return false
    const ticket = await session.renew(state.ticket, signal)
    if (state.stream) return false
    state.next = ticket
    state.sent.push(ticket.token)
    return true
  }

  // Put the renewed token on the retry's headers and count the auth retry (once).
  const useNext = (state: RequestState, headers: Headers) => {
    if (state.next === undefined) return
    headers.set('authorization', `Bearer ${state.next.token}`)
    state.ticket = state.next
    state.next = undefined
    state.retries++
  }

  const afterResponse = async ({ request, options, response }: { request: Request; options: { context?: object }; response: Response }) => {
    // Only when ky does not throw on a 401 (`throwHttpErrors` false, or a function false for 401).
    const state = stateOf(options)
    if (state && response.status === 401 && fromAllowed(response, request) && (await renew(state, request.signal))) {
      const retryHeaders = new Headers(request.headers)
      useNext(state, retryHeaders)
      return ky.retry({ request: new Request(request, { headers: retryHeaders }), delay: 0, code: 'TOKEN_REFRESHED' })
    }
    return undefined
  }

  // Follow redirects here for a request that carries our credentials, so they never leave the
  // allow-list. Falls back to the runtime's own following where redirects are opaque (browsers).
  let opaque = false
  const guarded = (base: Fetch, state: RequestState): Fetch => async (request, init) => {
    if (!state.ticket || opaque || request.redirect !== 'follow') return base(request, init)
    const spare = request.body ? request.clone() : undefined
    let response = await base(request, { ...init, redirect: 'manual' })
    if (response.type === 'opaqueredirect') {
      opaque = true // this runtime hides redirects: let it follow them (see SECURITY.md)
      return base(spare ?? request, init)
    }
    let current = request
    let body = spare
    for (let hops = 0; REDIRECTS.has(response.status) && response.headers.has('location'); hops++) {
      if (hops === MAX_REDIRECTS) throw new TypeError(`More than ${MAX_REDIRECTS} redirects from ${describe(request)}.`)
      const target = new URL(response.headers.get('location')!, current.url)
      void response.body?.cancel().catch(() => {})
      const toGet = response.status === 303 ? current.method !== 'HEAD' : (response.status === 301 || response.status === 302) && current.method === 'POST'
      const next = new Headers(current.headers)
      if (!allowed(target.href)) {
        next.delete('authorization')
        for (const name of headerNames) next.delete(name)
      }
      if (toGet) for (const name of ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']) next.delete(name)
      const replay = toGet ? undefined : body
      body = replay?.body ? replay.clone() : undefined
      current = new Request(target, {
        method: toGet ? (current.method === 'HEAD' ? 'HEAD' : 'GET') : current.method,
        headers: next,
        body: replay?.body ?? null,
        signal: current.signal,
        redirect: 'manual',
        ...(replay?.body && { duplex: 'half' }),
      } as RequestInit)
      response = await base(current, { ...init, redirect: 'manual' })
    }
    return response
  }

  return {
    init: [
      (options: Options) => {
        const context = (options.context ?? {}) as AuthContext
        if (context.auth === false) return
        const state: RequestState = {
          key: typeof context.authKey === 'string' ? context.authKey : session.defaultKey,
          sent: [],
          retries: 0,
          stream: typeof ReadableStream !== 'undefined' && options.body instanceof ReadableStream,
          limit: 0,
          methods: [],
        }
        // A context object of this request's own: the key for its state, holding nothing of ours.
        const own = { ...options.context }
        states.set(own, state)
        options.context = own
        const base = options.fetch ?? ((input: Request, init?: RequestInit) => globalThis.fetch(input, init))
        options.fetch = guarded(base as Fetch, state) as typeof fetch
        const throws = options.throwHttpErrors
        if (throws === false || (typeof throws === 'function' && !throws(401))) {
          // A new hooks object for this request only: the instance's arrays stay untouched.
          options.hooks = { ...options.hooks, afterResponse: [...(options.hooks?.afterResponse ?? []), afterResponse as never] }
        }
        if (state.stream) return // ky would tee and buffer the whole upload to allow a retry
        const retry = options.retry
        const policy: RetryOptions = typeof retry === 'number' ? { limit: retry } : (retry ?? {})
        const { shouldRetry, delay } = policy
        options.retry = {
          ...policy,
          // No wait before the auth retry; the caller's own retries keep their schedule.
          delay: (attempt: number) => (state.next !== undefined ? 0 : (delay ?? defaultDelay)(attempt - state.retries)),
          shouldRetry: async (retryState) => {
            const { error, retryCount } = retryState
            if (!state.ticket) return shouldRetry?.(retryState) // not authenticated by us: ky's policy as is
            if (isHTTPError(error) && error.response.status === 401 && fromAllowed(error.response, error.request)) return renew(state, error.request.signal)
            const method = (error as { request?: Request }).request?.method.toLowerCase() ?? ''
            if (retryCount - state.retries > state.limit || !state.methods.includes(method)) return false
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
        if (!state.stream) {
          // ky replays bodies only when retry.limit > 0, and asks shouldRetry only for the methods
          // it retries. Keep the caller's policy (as ky normalised it, defaults included) for
          // everything but the auth retry, which gets one extra attempt for this request's method.
          const retry = options.retry as { limit: number; methods: string[] }
          state.limit = retry.limit
          state.methods = [...retry.methods]
          retry.limit += 1
          const method = request.method.toLowerCase()
          if (!retry.methods.includes(method)) retry.methods.push(method)
        }
        const attach = (ticket: Ticket) => {
          state.ticket = ticket
          state.sent.push(ticket.token)
          request.headers.set('authorization', `Bearer ${ticket.token}`)
          for (const [name, value] of headerEntries) request.headers.set(name, value)
        }
        // Hot path: a fresh token in memory is attached without a single await.
        const cached = session.peek(state.key)
        if (cached) return void attach(cached)
        return session.obtain({ key: state.key, signal: request.signal }).then(attach)
      },
    ],
    beforeRetry: [
      ({ request, options }) => {
        const state = stateOf(options)
        if (state) useNext(state, request.headers)
      },
    ],
    beforeError: [
      async ({ error, options, request: current }) => {
        const state = stateOf(options)
        if (!state?.ticket) return error
        redact(error, current, state.sent, headerNames)
        if (!isHTTPError(error)) return error
        const { response, request } = error
        if (!fromAllowed(response, request)) return error // a redirect target's answer: not about our token
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
          if (state.retries === 0) await session.renew(state.ticket, request.signal)
          return new TokenError('ERR_BODY_NOT_REPLAYABLE', `${where} answered 401 to a request with a streaming body, which cannot be sent twice. The token was refreshed: send the request again.`, { status: 401, response, cause: error })
        }
        const what = state.retries > 0
          ? 'answered 401 again after one token refresh and one retry; not retrying further. The server may have revoked the session or the token lacks access.'
          : 'answered 401 and the request was not retried (no retry left for it). The token may have been revoked: sign in again if it persists.'
        return new TokenError('ERR_STILL_UNAUTHORIZED', `${where} ${what}`, { status: 401, response, cause: error })
      },
    ],
  }
}

// ky's documented default: 0.3 s × 2^(attempt − 1).
const defaultDelay = (attempt: number) => 0.3 * 2 ** (attempt - 1) * 1000

function describe(request: Request): string {
  const url = new URL(request.url)
  return `${request.method} ${url.origin}${url.pathname}`
}

/**
 * Blank our credentials on every request an error can reach (its own `request`, ky's current
 * request, the `cause` chain) and scrub the tokens from a parsed error body. The request is
 * finished by then; the header stays visible as sent (`Bearer [redacted]`), its value does not.
 */
function redact(error: unknown, current: Request, tokens: readonly string[], names: readonly string[]): void {
  const requests = new Set<Request>([current])
  for (let link = error as { request?: unknown; cause?: unknown } | undefined, depth = 0; link && typeof link === 'object' && depth < 8; link = link.cause as typeof link, depth++) {
    if (link.request instanceof Request) requests.add(link.request)
    const data = (link as { data?: unknown }).data
    if (data !== undefined) (link as { data?: unknown }).data = scrubDeep(data, tokens)
  }
  for (const request of requests) {
    try {
      if (request.headers.has('authorization') && tokens.some((token) => request.headers.get('authorization')!.includes(token))) request.headers.set('authorization', `Bearer ${REDACTED}`)
      for (const name of names) if (request.headers.has(name)) request.headers.set(name, REDACTED)
    } catch {} // immutable headers (a runtime's own Request): nothing we attached can be on it
  }
}

function scrubDeep(value: unknown, tokens: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') {
    for (const token of tokens) if (token) value = (value as string).split(token).join(REDACTED)
    return value
  }
  if (typeof value !== 'object' || value === null || depth > 8) return value
  if (Array.isArray(value)) return value.map((item) => scrubDeep(item, tokens, depth + 1))
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, scrubDeep(item, tokens, depth + 1)]))
}

// RFC 6750 §3: `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`; else a body field.
function missingScope(response: KyResponse, data: unknown): string | undefined {
  const header = /\bscope="([^"]*)"/.exec(response.headers.get('www-authenticate') ?? '')?.[1]
  if (header) return header
  const body = (typeof data === 'object' && data !== null ? data : {}) as Record<string, any>
  const value = body.scope ?? body.required_scope ?? body.error?.scope
  return typeof value === 'string' ? value : undefined
}
