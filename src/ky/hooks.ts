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
 * - Per-request state is held by a closure on ky's per-request retry object that returns nothing
 *   and hands the record only to this auth instance's hooks, so nothing ky puts on an error
 *   (`error.options`) leads to a token.
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
import type { SenderConstraint } from '../grants/sender.js'
import { describeURL, scrub } from '../grants/token-response.js'
import type { Session, Ticket } from '../session.js'
import type { OriginMatcher } from '../utils/origin.js'

const REDACTED = '[redacted]'
const REDIRECTS = new Set([301, 302, 303, 307, 308])
const MAX_REDIRECTS = 20
const NULL_BODY = new Set([101, 103, 204, 205, 304])
/** ky's per-request retry object, carrying a closure that hands our record over (see `recordOf`). */
type Carrier = Record<symbol, (() => void) | undefined>

/** What we know about one request we authenticated, held on ky's per-request retry object (see `recordOf`). */
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
  /** Retries with a fresh proof after a nonce challenge (0 or 1). */
  nonceRetries: number
  /** The next retry answers a nonce challenge (no new token, a new proof). */
  reproof: boolean
  /** A `ReadableStream` body: cannot be replayed. */
  stream: boolean
}

/** How a response is judged: a sender's nonce challenge, a rejected token, or not ours. */
type Verdict = 'nonce' | 'refresh' | 'other'

/** Per-request options read from ky's `context`. */
export interface AuthContext {
  /** `false` sends this request without a token and without 401 handling. */
  auth?: boolean
  /** The token set (storage key) for this request, e.g. a tenant or user id. */
  authKey?: string
  /** ky's `context` is an open record; other fields pass through untouched. */
  [field: string]: unknown
}

/** The `withheld` event: a 401 answered a request that carried no token because of the allow-list. */
export interface WithheldEvent {
  /** `origin + path` of the request (no query: it may carry secrets). */
  url: string
  /** The status that came back (401). */
  status: number
  /**
   * `origin`: the request's origin is not in `origins`, so no token was attached. `redirect`: the
   * request was authenticated, but redirected to an origin outside the allow-list, where the
   * credentials were not forwarded.
   */
  reason: 'origin' | 'redirect'
}

/**
 * Decides whether an error response means "the token was rejected: refresh once and replay".
 * Receives the response (its body readable) and the request. Default: `status === 401`.
 */
export type ShouldRefresh = (response: Response, request: Request) => boolean | Promise<boolean>

/** @internal What the hooks need besides the session. */
export interface HookConfig {
  allowed: OriginMatcher
  /** Headers sent with the token, or a function of the token-set key returning them. */
  headers: Record<string, string> | ((key: string) => Record<string, string> | undefined)
  /** The header that carries the token (lower case). Ignored with a sender (always `authorization`). */
  header: string
  /** The scheme before the token (`Bearer`), or `''` for the bare token. Ignored with a sender. */
  scheme: string
  sender: SenderConstraint | undefined
  shouldRefresh: ShouldRefresh | undefined
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
export function createHooks(session: Session, config: HookConfig): AuthKy {
  const { allowed, sender, shouldRefresh } = config
  // The record of a request rides on ky's per-request retry object as a closure: ky shows that
  // object to every hook and puts it on errors (`error.options.retry`), and a closure's variables
  // cannot be reached from outside. The closure returns nothing: it drops the record into `handoff`,
  // which only this hook set reads, so whoever calls it (a user's tracing wrapper) learns nothing.
  // The key is this hook set's own: two auth instances on one ky instance never read each other's.
  // (A WeakMap keyed by the object did the same at ~0.8 µs per request, a sixth of our hot path.)
  const RECORD = Symbol('ky-token-refresh')
  let handoff: Attached | undefined
  const recordOf = (options: { retry?: unknown }): Attached | undefined => {
    const give = (options.retry as Carrier | undefined)?.[RECORD]
    if (typeof give !== 'function') return undefined
    handoff = undefined
    give()
    const record = handoff
    handoff = undefined
    return record
  }
  // The header that carries the token and what precedes it: `Authorization: Bearer …` by
  // default, `Authorization: DPoP …` with DPoP, `X-Api-Key: …` or `Authorization: Token …` as configured.
  const tokenHeader = sender ? 'authorization' : config.header
  const prefix = sender ? `${sender.scheme} ` : config.scheme ? `${config.scheme} ` : ''
  const headersOf = typeof config.headers === 'function' ? config.headers : undefined
  const staticEntries = headersOf ? [] : Object.entries(config.headers as Record<string, string>)
  // Other headers that are credentials: the configured extra headers (also those a headers
  // function returns, learned as they appear) and the sender's proof header. `strip` is what a
  // redirect off the allow-list loses: those, the token header and any Authorization.
  const extra = new Set<string>(sender?.headers.map((name) => name.toLowerCase()))
  let extraNames: string[] = []
  let strip: string[] = []
  const learn = (names: Iterable<string>) => {
    for (const name of names) extra.add(name.toLowerCase())
    extraNames = [...extra]
    strip = [...new Set(['authorization', tokenHeader, ...extra])]
  }
  learn(staticEntries.map(([name]) => name))
  const entriesFor = (key: string): [string, string][] => {
    const entries = Object.entries(headersOf!(key) ?? {})
    for (const [name, value] of entries) {
      const lower = name.toLowerCase()
      if (typeof value !== 'string') throw new TypeError(`The "headers" function returned a non-string value for "${name}" (key "${key}"); return a record of strings.`)
      if (lower === tokenHeader || (sender && lower === 'authorization')) throw new TypeError(`The "headers" function returned "${name}", the header that carries the token; set the token's header with the "header" option instead.`)
      if (!extra.has(lower)) learn([lower])
    }
    return entries
  }
  // A 401 is ours to fix only when it came from an allow-listed origin (not a redirect target).
  // Requests whose credentials the redirect guard withheld on the way (a hop left the allow-list):
  // whatever answers at the end, even an allowed origin, did not see our token.
  const withheldOnTheWay = new WeakSet<Request>()
  const fromAllowed = (response: Response, request: Request) => !withheldOnTheWay.has(request) && allowed(response.url || request.url)
  const carriesCredentials = (request: Request) => {
    for (const name of strip) if (request.headers.has(name)) return true
    return false
  }
  const extraAttempts = sender ? 2 : 1 // the auth retry, and with a sender one nonce retry

  // What a failed response means. Cached per response: shouldRetry and beforeError see the same one.
  const verdicts = new WeakMap<Response, Verdict>()
  const judge = async (record: Attached, response: Response, request: Request, data: unknown, readable: boolean): Promise<Verdict> => {
    let verdict = verdicts.get(response)
    if (verdict) return verdict
    if (sender) sender.observe(response, request)
    if (sender && response.status === 401 && sender.challenge(response)) verdict = 'nonce'
    else if (!shouldRefresh) verdict = response.status === 401 ? 'refresh' : 'other'
    else {
      try {
        verdict = (await shouldRefresh(readable ? response : replica(response, data), request)) === true ? 'refresh' : 'other'
      } catch (error) {
        session.emit('error', { key: record.key, error })
        verdict = 'other'
      }
    }
    verdicts.set(response, verdict)
    return verdict
  }

  // After a rejected token: use the token someone else already got, or refresh once. `true` = replay.
  const renew = async (record: Attached, signal: AbortSignal) => {
    if (!session.refreshable || record.retries > 0 || !record.ticket) return false
    const ticket = await session.renew(record.ticket, signal)
    if (record.stream) return false
    record.next = ticket
    record.sent.push(ticket.token)
    return true
  }
  // After a nonce challenge: one replay with a fresh proof, never a refresh. `true` = replay.
  const reproof = (record: Attached) => {
    if (record.stream || record.nonceRetries > 0) return false
    record.reproof = true
    return true
  }

  // Put the renewed token on the retry's headers and count the auth retry (once).
  const useNext = (record: Attached, headers: Headers) => {
    if (record.next === undefined) return
    headers.set(tokenHeader, prefix + record.next.token)
    record.ticket = record.next
    record.next = undefined
    record.retries++
  }

  // "The silent miss": a 401 for a request that carried no token because of the allow-list.
  const withheld = (request: Request, response: Response, reason: WithheldEvent['reason']): string => {
    const url = describeURL(reason === 'origin' ? request.url : response.url || request.url)
    ;(session.emit as (type: string, event: WithheldEvent) => void)('withheld', { url, status: response.status, reason })
    const origin = url.slice(0, url.indexOf('/', url.indexOf('//') + 2))
    return `ky-token-refresh ${reason === 'origin' ? 'sent no token with this request' : 'did not forward the token: the request was redirected'}: ${origin} is not an allowed origin. If it should receive the token, add "${origin}" to the "origins" option of createTokenAuth().`
  }
  const unattached = (request: Request, response: Response, options: { context?: unknown }) =>
    response.status === 401 && (options.context as AuthContext | undefined)?.auth !== false && !allowed(request.url) && !request.headers.has(tokenHeader)

  const afterResponse = async ({ request, options, response }: { request: Request; options: { retry?: unknown; context?: unknown }; response: Response }) => {
    // Only when ky does not throw on a 401 (`throwHttpErrors` false, or a function false for 401).
    const record = recordOf(options)
    if (!record?.ticket) {
      if (unattached(request, response, options)) withheld(request, response, 'origin')
      return undefined
    }
    if (response.ok) return undefined
    if (!fromAllowed(response, request)) {
      if (response.status === 401) withheld(request, response, 'redirect')
      return undefined
    }
    const verdict = await judge(record, response, request, undefined, true)
    let replay = false
    if (verdict === 'nonce' && reproof(record)) {
      record.reproof = false
      record.nonceRetries++
      replay = true
    } else if (verdict === 'refresh') replay = await renew(record, request.signal)
    if (!replay) return undefined
    const retryHeaders = new Headers(request.headers)
    useNext(record, retryHeaders)
    // The retry's proof is made in beforeRetry, which ky runs for this request too.
    return ky.retry({ request: new Request(request, { headers: retryHeaders }), delay: 0, code: verdict === 'nonce' ? 'SENDER_CHALLENGE' : 'TOKEN_REFRESHED' })
  }
  const needsAfterResponse = (throws: Options['throwHttpErrors']) => throws === false || (typeof throws === 'function' && !throws(401))

  // Follow redirects here for a request that carries credentials, so they never leave the
  // allow-list. Falls back to the runtime's own following where redirects are opaque (browsers).
  // With a sender, every response of an allowed origin is shown to it (nonces), and every hop
  // that stays on the allow-list gets a fresh proof for its own URL.
  let opaque = hidesRedirects() // decided up front: probing would send the first redirected request twice
  const observe = sender
    ? (response: Response, request: Request) => {
        if (allowed(response.url || request.url)) sender.observe(response, request)
        return response
      }
    : undefined
  const guard = (base: Fetch): Fetch => async (request, init) => {
    if (opaque || request.redirect !== 'follow' || !carriesCredentials(request)) {
      return observe ? base(request, init).then((response) => observe(response, request)) : base(request, init)
    }
    const spare = request.body ? request.clone() : undefined
    let response = await base(request, { ...init, redirect: 'manual' })
    if (response.type === 'opaqueredirect') {
      opaque = true // this runtime hides redirects: let it follow them (see SECURITY.md)
      const followed = await base(spare ?? request, init)
      return observe ? observe(followed, request) : followed
    }
    observe?.(response, request)
    let current = request
    let body = spare
    let stripped = false
    for (let hops = 0; REDIRECTS.has(response.status) && response.headers.has('location'); hops++) {
      if (hops === MAX_REDIRECTS) throw new TypeError(`More than ${MAX_REDIRECTS} redirects from ${describe(request)}.`)
      const target = new URL(response.headers.get('location')!, current.url)
      void response.body?.cancel().catch(() => {})
      const toGet = response.status === 303 ? current.method !== 'HEAD' : (response.status === 301 || response.status === 302) && current.method === 'POST'
      const next = new Headers(current.headers)
      const stays = allowed(target.href)
      if (!stays) {
        for (const name of strip) next.delete(name)
        stripped = true
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
      const carried = next.get(tokenHeader)
      if (sender && stays && carried?.startsWith(prefix)) await sender.authorize(current, carried.slice(prefix.length))
      response = await base(current, { ...init, redirect: 'manual' })
      observe?.(response, current)
    }
    if (stripped) withheldOnTheWay.add(request)
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

  let lastTicket: Ticket | undefined
  let lastValue = ''
  const beforeRequest: BeforeRequestHook = ({ request, options }) => {
    const context = options.context as AuthContext | undefined
    // A token header set by the caller wins; we neither replace nor refresh it.
    if (context?.auth === false || !allowed(request.url) || request.headers.has(tokenHeader)) return undefined
    const record: Attached = {
      key: typeof context?.authKey === 'string' ? context.authKey : session.defaultKey,
      sent: [],
      retries: 0,
      nonceRetries: 0,
      reproof: false,
      stream: typeof ReadableStream !== 'undefined' && options.body instanceof ReadableStream,
    }
    const retry = options.retry as unknown as NormalizedRetry & Carrier
    retry[RECORD] = () => void (handoff = record)
    // ky replays bodies only when retry.limit > 0, and asks shouldRetry only for the methods it
    // retries. Keep the caller's policy (as ky normalised it for this request, defaults included)
    // for everything but the auth retry (and a sender's nonce retry), which get extra attempts for
    // this request's method. (A streaming body cannot be replayed: ky would tee and buffer the
    // whole upload, so no.)
    if (!record.stream) {
      const { limit, shouldRetry, delay } = retry
      const method = request.method.toLowerCase()
      const ownMethod = !retry.methods.includes(method)
      if (ownMethod) retry.methods.push(method)
      retry.limit = limit + extraAttempts
      // No wait before our retries; the caller's own retries keep their schedule.
      retry.delay = (attempt) => (record.next !== undefined || record.reproof ? 0 : delay(attempt - record.retries - record.nonceRetries))
      retry.shouldRetry = async (state) => {
        const { error, retryCount } = state
        // A user's beforeRetry hook may throw an error that wraps this one, and ky hands such an error
        // to the caller without beforeError: the request it carries is finished (a retry sends a
        // copy), so our credentials on it are blanked before any hook can see it.
        const blank = () => {
          const { request } = error as { request?: unknown }
          if (request instanceof Request) redact(error, request, record.sent, tokenHeader, prefix, extraNames, false)
        }
        if (isHTTPError(error) && fromAllowed(error.response, error.request)) {
          const verdict = await judge(record, error.response, error.request, error.data, false)
          if (verdict === 'nonce' || verdict === 'refresh') {
            const replay = await (verdict === 'nonce' ? reproof(record) : renew(record, error.request.signal))
            blank()
            return replay
          }
        }
        blank()
        if (ownMethod || retryCount - record.retries - record.nonceRetries > limit) return false
        return shouldRetry?.(state)
      }
    }
    const attach = (ticket: Ticket) => {
      record.ticket = ticket
      record.sent.push(ticket.token)
      for (const [name, value] of headersOf ? entriesFor(record.key) : staticEntries) request.headers.set(name, value)
      if (sender) return sender.authorize(request, ticket.token)
      // The header value is built once per token, not per request.
      if (ticket !== lastTicket) (lastTicket = ticket), (lastValue = prefix + ticket.token)
      request.headers.set(tokenHeader, lastValue)
      return undefined
    }
    // Hot path: a fresh token in memory is attached without a single await (bearer; a sender
    // signs a proof, which is asynchronous).
    const cached = session.peek(record.key)
    if (cached) return attach(cached)
    return session.obtain({ key: record.key, signal: request.signal }).then(attach)
  }

  const beforeRetry: BeforeRetryHook = ({ request, options }) => {
    const record = recordOf(options)
    if (!record) return undefined
    useNext(record, request.headers)
    if (record.reproof) {
      record.reproof = false
      record.nonceRetries++
    }
    // Every attempt of a sender-constrained request carries its own proof (a proof is single-use).
    if (sender && record.ticket) return sender.authorize(request, record.ticket.token)
    return undefined
  }

  const beforeError: BeforeErrorHook = async ({ error, options, request: current }) => {
    const record = recordOf(options)
    if (!record?.ticket) {
      if (isHTTPError(error) && unattached(error.request, error.response, options)) error.message += ` (${withheld(error.request, error.response, 'origin')})`
      return error
    }
    // The response as ky gave it (redaction swaps in a body-less copy): the verdict cache's key.
    const received = isHTTPError(error) ? error.response : undefined
    redact(error, current, record.sent, tokenHeader, prefix, extraNames)
    if (!isHTTPError(error) || !received) return error
    const { response, request } = error
    if (!fromAllowed(response, request)) {
      // A redirect target's answer: not about our token (which was not forwarded there).
      if (response.status === 401) error.message += ` (${withheld(request, response, 'redirect')})`
      return error
    }
    const where = describe(request)
    const { status } = response
    const verdict = await judge(record, received, request, error.data, false)
    if (verdict === 'nonce') {
      const scheme = sender!.scheme
      if (record.stream) {
        return new TokenError('ERR_BODY_NOT_REPLAYABLE', `${where} answered a ${scheme} nonce challenge (401) to a request with a streaming body, which cannot be sent twice. The new nonce was learned: send the request again.`, { status, response, cause: error })
      }
      const what = record.nonceRetries > 0
        ? `answered another ${scheme} nonce challenge (401) after one retry with the nonce it had just sent; not retrying further. The server may rotate nonces faster than a request completes, or reject the proof: check its nonce policy.`
        : `answered a ${scheme} nonce challenge (401) and the request was not retried (no retry left for it). The new nonce was learned: send the request again.`
      return new TokenError('ERR_STILL_UNAUTHORIZED', `${where} ${what}`, { status, response, cause: error })
    }
    if (status === 403 && verdict !== 'refresh') {
      const scope = missingScope(response, error.data)
      return new TokenError(
        'ERR_INSUFFICIENT_SCOPE',
        `${where} answered 403: the token is valid but lacks ${scope ? `the "${scope}" scope` : 'a permission'}. Request the scope (or use another token); refreshing will not help.`,
        { status: 403, response, cause: error, ...(scope && { scope }) },
      )
    }
    if (verdict !== 'refresh') return error
    if (!session.refreshable) {
      return new TokenError('ERR_STATIC_TOKEN_REJECTED', `${where} rejected the static API token (${status}). It cannot be refreshed: check that it was not revoked and belongs to this API.`, { status, response, cause: error })
    }
    if (record.stream) {
      // With a streaming body ky could not retry (and did not ask): refresh now for the next call.
      if (record.retries === 0) await session.renew(record.ticket, request.signal)
      return new TokenError('ERR_BODY_NOT_REPLAYABLE', `${where} answered ${status} to a request with a streaming body, which cannot be sent twice. The token was refreshed: send the request again.`, { status, response, cause: error })
    }
    const what = record.retries > 0
      ? `answered ${status} again after one token refresh and one retry; not retrying further. The server may have revoked the session or the token lacks access.`
      : `answered ${status} and the request was not retried (no retry left for it). The token may have been revoked: sign in again if it persists.`
    return new TokenError('ERR_STILL_UNAUTHORIZED', `${where} ${what}`, { status, response, cause: error })
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

// A readable stand-in for a response whose body ky already read into `error.data`.
function replica(response: Response, data: unknown): Response {
  const body = NULL_BODY.has(response.status) || data === undefined ? null : typeof data === 'string' ? data : JSON.stringify(data)
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
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
  return `${request.method} ${describeURL(request.url)}`
}

/**
 * Blank our credentials on every request an error can reach (its own `request`, ky's current
 * request, the `cause` chain) and scrub the tokens from a parsed error body. The request is
 * finished by then; the header stays visible as sent (`Bearer [redacted]`, `DPoP [redacted]`),
 * its value does not; the other credential headers (extra headers, the `DPoP` proof) become
 * `[redacted]`.
 */
function redact(error: unknown, current: Request, tokens: readonly string[], tokenHeader: string, prefix: string, names: readonly string[], bodiless = true): void {
  const requests = new Set<Request>([current])
  for (let link = error as { request?: unknown; cause?: unknown } | undefined, depth = 0; link && typeof link === 'object' && depth < 8; link = link.cause as typeof link, depth++) {
    if (link.request instanceof Request) requests.add(link.request)
    const data = (link as { data?: unknown }).data
    if (data !== undefined) (link as { data?: unknown }).data = scrubDeep(data, tokens)
    // ky has read the body into `data` (scrubbed above); keep status, headers and url only, since
    // some runtimes keep the raw bytes of a read body reachable from the Response.
    const { response } = link as { response?: unknown }
    if (bodiless && response instanceof Response && Object.getOwnPropertyDescriptor(link, 'response')?.writable) {
      const copy = withoutBody(response)
      if (copy) (link as { response?: Response }).response = copy
    }
  }
  for (const request of requests) {
    try {
      const carried = request.headers.get(tokenHeader)
      if (carried !== null && tokens.some((token) => carried.includes(token))) request.headers.set(tokenHeader, prefix + REDACTED)
      for (const name of names) if (request.headers.has(name)) request.headers.set(name, REDACTED)
    } catch {} // immutable headers (a runtime's own Request): nothing we attached can be on it
  }
}

// The token endpoint's scrubber (every encoding of every value), applied to each string of a body.
function scrubDeep(value: unknown, tokens: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') return scrub(value, tokens)
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
