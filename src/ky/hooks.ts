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
 * - Per-request state lives in a `WeakMap` keyed by ky's per-request retry object, so nothing ky
 *   puts on an error (`error.options`) leads to a token.
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
import ky, { isHTTPError, type BeforeErrorHook, type BeforeRequestHook, type BeforeRetryHook, type Hooks, type KyInstance, type KyResponse, type Options, type ShouldRetryState } from 'ky'
import { TokenError, withoutBody } from '../errors.js'
import type { Session, Ticket } from '../session.js'
import type { OriginMatcher } from '../utils/origin.js'

const REDACTED = '[redacted]'
const REDIRECTS = new Set([301, 302, 303, 307, 308])
const MAX_REDIRECTS = 20

/** What we know about one request we authenticated, keyed by ky's per-request retry object. */
interface Attached {
  key: string
  /** The token this request carries, with the session it belongs to. */
  ticket?: Ticket | undefined
  /** The renewed token for the next retry (set when a 401 was answered with a renewal). */
  next?: Ticket | undefined
  /** Every token this request carried (for redaction and scrubbing). */
  sent: string[]
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
  /** ky's `context` is an open record; other fields pass through untouched. */
  [field: string]: unknown
}

type Fetch = (input: Request, init?: RequestInit) => Promise<Response>
/** ky's retry options after normalisation: one fresh object per request. */
interface NormalizedRetry {
  limit: number
  methods: string[]
  delay: (attempt: number) => number
  shouldRetry?: (state: ShouldRetryState) => Promise<boolean | undefined> | boolean | undefined
}

/** @internal The hook set, and the instance-level shape that settles everything once per ky instance. */
export interface AuthKy {
  hooks: Required<Pick<Hooks, 'init' | 'beforeRequest' | 'beforeRetry' | 'beforeError'>>
  extend(api: KyInstance): KyInstance
}

/** @internal Build the ky hooks for a session. */
export function createHooks(session: Session, allowed: OriginMatcher, headers: Record<string, string>): AuthKy {
  const records = new WeakMap<object, Attached>()
  const recordOf = (options: { retry?: unknown }) => (options.retry ? records.get(options.retry as object) : undefined)
  const headerEntries = Object.entries(headers)
  const headerNames = headerEntries.map(([name]) => name.toLowerCase())
  // A 401 is ours to fix only when it came from an allow-listed origin (not a redirect target).
  const fromAllowed = (response: Response, request: Request) => allowed(response.url || request.url)
  const carriesCredentials = (request: Request) => request.headers.has('authorization') || headerNames.some((name) => request.headers.has(name))

  // After a 401: use the token someone else already got, or refresh once. `true` = replay.
  const renew = async (record: Attached, signal: AbortSignal) => {
    if (!session.refreshable || record.retries > 0 || !record.ticket) return false
    const ticket = await session.renew(record.ticket, signal)
    if (record.stream) return false
    record.next = ticket
    record.sent.push(ticket.token)
    return true
  }

  // Put the renewed token on the retry's headers and count the auth retry (once).
  const useNext = (record: Attached, headers: Headers) => {
    if (record.next === undefined) return
    headers.set('authorization', `Bearer ${record.next.token}`)
    record.ticket = record.next
    record.next = undefined
    record.retries++
  }

  const afterResponse = async ({ request, options, response }: { request: Request; options: { retry?: unknown }; response: Response }) => {
    // Only when ky does not throw on a 401 (`throwHttpErrors` false, or a function false for 401).
    const record = recordOf(options)
    if (record && response.status === 401 && fromAllowed(response, request) && (await renew(record, request.signal))) {
      const retryHeaders = new Headers(request.headers)
      useNext(record, retryHeaders)
      return ky.retry({ request: new Request(request, { headers: retryHeaders }), delay: 0, code: 'TOKEN_REFRESHED' })
    }
    return undefined
  }
  const needsAfterResponse = (throws: Options['throwHttpErrors']) => throws === false || (typeof throws === 'function' && !throws(401))

  // Follow redirects here for a request that carries credentials, so they never leave the
  // allow-list. Falls back to the runtime's own following where redirects are opaque (browsers).
  let opaque = hidesRedirects() // decided up front: probing would send the first redirected request twice
  const guard = (base: Fetch): Fetch => async (request, init) => {
    if (opaque || request.redirect !== 'follow' || !carriesCredentials(request)) return base(request, init)
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
  const guards = new WeakMap<object, Fetch>()
  const defaultGuard = guard((input, init) => globalThis.fetch(input, init))
  const guardFor = (base: unknown): typeof fetch => {
    if (typeof base !== 'function') return defaultGuard as typeof fetch
    let guarded = guards.get(base)
    if (!guarded) guards.set(base, (guarded = guard(base as Fetch)))
    return guarded as typeof fetch
  }

  const beforeRequest: BeforeRequestHook = ({ request, options }) => {
    const context = options.context as AuthContext | undefined
    // An Authorization header set by the caller wins; we neither replace nor refresh it.
    if (context?.auth === false || !allowed(request.url) || request.headers.has('authorization')) return undefined
    const record: Attached = {
      key: typeof context?.authKey === 'string' ? context.authKey : session.defaultKey,
      sent: [],
      retries: 0,
      stream: typeof ReadableStream !== 'undefined' && options.body instanceof ReadableStream,
    }
    const retry = options.retry as unknown as NormalizedRetry
    records.set(retry, record)
    // ky replays bodies only when retry.limit > 0, and asks shouldRetry only for the methods it
    // retries. Keep the caller's policy (as ky normalised it for this request, defaults included)
    // for everything but the auth retry, which gets one extra attempt for this request's method.
    // (A streaming body cannot be replayed: ky would tee and buffer the whole upload, so no.)
    if (!record.stream) {
      const { limit, shouldRetry, delay } = retry
      const method = request.method.toLowerCase()
      const ownMethod = !retry.methods.includes(method)
      if (ownMethod) retry.methods.push(method)
      retry.limit = limit + 1
      // No wait before the auth retry; the caller's own retries keep their schedule.
      retry.delay = (attempt) => (record.next !== undefined ? 0 : delay(attempt - record.retries))
      retry.shouldRetry = async (state) => {
        const { error, retryCount } = state
        if (isHTTPError(error) && error.response.status === 401 && fromAllowed(error.response, error.request)) return renew(record, error.request.signal)
        if (ownMethod || retryCount - record.retries > limit) return false
        return shouldRetry?.(state)
      }
    }
    const attach = (ticket: Ticket) => {
      record.ticket = ticket
      record.sent.push(ticket.token)
      request.headers.set('authorization', `Bearer ${ticket.token}`)
      for (const [name, value] of headerEntries) request.headers.set(name, value)
    }
    // Hot path: a fresh token in memory is attached without a single await.
    const cached = session.peek(record.key)
    if (cached) return void attach(cached)
    return session.obtain({ key: record.key, signal: request.signal }).then(attach)
  }

  const beforeRetry: BeforeRetryHook = ({ request, options }) => {
    const record = recordOf(options)
    if (record) useNext(record, request.headers)
  }

  const beforeError: BeforeErrorHook = async ({ error, options, request: current }) => {
    const record = recordOf(options)
    if (!record?.ticket) return error
    redact(error, current, record.sent, headerNames)
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
    if (record.stream) {
      // With a streaming body ky could not retry (and did not ask): refresh now for the next call.
      if (record.retries === 0) await session.renew(record.ticket, request.signal)
      return new TokenError('ERR_BODY_NOT_REPLAYABLE', `${where} answered 401 to a request with a streaming body, which cannot be sent twice. The token was refreshed: send the request again.`, { status: 401, response, cause: error })
    }
    const what = record.retries > 0
      ? 'answered 401 again after one token refresh and one retry; not retrying further. The server may have revoked the session or the token lacks access.'
      : 'answered 401 and the request was not retried (no retry left for it). The token may have been revoked: sign in again if it persists.'
    return new TokenError('ERR_STILL_UNAUTHORIZED', `${where} ${what}`, { status: 401, response, cause: error })
  }

  return {
    // `auth.hooks`: everything decided per request in `init` (ky clones the options for it).
    hooks: {
      init: [
        (options: Options) => {
          if ((options.context as AuthContext | undefined)?.auth === false) return
          options.fetch = guardFor(options.fetch)
          if (needsAfterResponse(options.throwHttpErrors)) {
            // A new hooks object for this request only: the instance's arrays stay untouched.
            options.hooks = { ...options.hooks, afterResponse: [...(options.hooks?.afterResponse ?? []), afterResponse as never] }
          }
        },
      ],
      beforeRequest: [beforeRequest],
      beforeRetry: [beforeRetry],
      beforeError: [beforeError],
    },
    // `auth.extend(api)`: the same hooks without `init`, the redirect guard and the
    // `throwHttpErrors` choice settled once for the instance.
    extend: (api) =>
      api.extend((parent) => ({
        fetch: guardFor(parent.fetch),
        hooks: { beforeRequest: [beforeRequest], beforeRetry: [beforeRetry], beforeError: [beforeError], ...(needsAfterResponse(parent.throwHttpErrors) && { afterResponse: [afterResponse as never] }) },
      })),
  }
}

/**
 * Browsers (pages and workers) follow redirects before any code of ours can look at them
 * (`redirect: 'manual'` yields an opaque response), so there the browser's own rules apply: see
 * SECURITY.md. Node, Deno, Bun and workerd show redirects, and the guard follows them itself.
 */
function hidesRedirects(): boolean {
  const scope = globalThis as { document?: unknown; WorkerGlobalScope?: unknown; navigator?: { userAgent?: string } }
  return scope.document !== undefined || (scope.WorkerGlobalScope !== undefined && scope.navigator?.userAgent !== 'Cloudflare-Workers')
}

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
    // ky has read the body into `data` (scrubbed above); keep status, headers and url only, since
    // some runtimes keep the raw bytes of a read body reachable from the Response.
    const { response } = link as { response?: unknown }
    if (response instanceof Response && Object.getOwnPropertyDescriptor(link, 'response')?.writable) {
      const copy = withoutBody(response)
      if (copy) (link as { response?: Response }).response = copy
    }
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
