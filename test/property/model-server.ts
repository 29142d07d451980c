/**
 * An in-process, strict-rotation authorization + resource server, exposed as a `fetch` function
 * (real `Request`/`Response` objects, so ky and the grants use it exactly as a network).
 *
 * - Token endpoint in stemp style: `POST /api/v1/apps/oauth2/refresh {"refresh_token"}` →
 *   `{access_token, token_type: "bearer", expires_in, refresh_token, scope}`. Strict rotation: every
 *   refresh token is good once; a spent one presented again revokes its whole family (reuse
 *   detection, as Auth0 and Okta do).
 * - Revocation (RFC 7009): `POST /api/v1/apps/oauth2/revoke {"token"}` revokes the family.
 * - Sessions per user: `signIn('A')` issues a new family (= one session) for user A.
 * - `GET|POST /api/v1/whoami`: 200 with the user and session of the bearer token, or 401 for an
 *   expired, revoked or unknown token. Every attempt is tagged with the call that sent it (`x-call`).
 * - Every request waits behind a scheduler gate; the server processes it when the gate is
 *   released (that is when a refresh token is spent), or never, if the caller aborts first.
 * - Injectable outcome per token call (queued, taken by arrival order): success, invalid_grant,
 *   503, network fault before processing, network fault after rotating (processed, answer lost),
 *   or hang until aborted.
 * - Every request and token call is reported to the {@link Checker}.
 */
import type { TokenResponseBody } from '../../src/index.ts'
import type { Checker } from './invariants.ts'
import type { Gate, Scheduler } from './scheduler.ts'

export const ORIGIN = 'https://stemp.test'
export const TOKEN_URL = `${ORIGIN}/api/v1/apps/oauth2/refresh`
export const REVOKE_URL = `${ORIGIN}/api/v1/apps/oauth2/revoke`
export const API_URL = `${ORIGIN}/api/v1/whoami`
/** The body every POST call sends (with its call id); the server checks it arrives intact. */
export const postBody = (call: string) => ({ call, note: 'é✓ payload', n: [1, 2, 3] })

export type TokenOutcome = 'ok' | 'invalid_grant' | '503' | 'fault-before' | 'fault-after' | 'hang'
export const TOKEN_OUTCOMES: readonly TokenOutcome[] = ['ok', 'invalid_grant', '503', 'fault-before', 'fault-after', 'hang']

interface Family {
  id: string
  user: string
  revoked: boolean
  generation: number
  newest: string
}

export interface ModelServerOptions {
  scheduler: Scheduler
  checker: Checker
  /** The server clock (epoch ms), shared with the engines' `now`. */
  clock: () => number
  /** Access-token lifetime in seconds. */
  accessTtl: number
}

export class ModelServer {
  readonly families = new Map<string, Family>()
  readonly refreshTokens = new Map<string, { family: string; used: boolean }>()
  readonly accessTokens = new Map<string, { family: string; exp: number }>()
  /** Outcomes for the next token calls, in arrival order (then `ok`). */
  readonly outcomes: TokenOutcome[] = []
  readonly counts = { token: 0, api: 0, unauthorized: 0, reuse: 0, revoke: 0, rotated: 0 }
  private familyCount = 0
  private accessCount = 0
  private tokenCallCount = 0

  private readonly options: ModelServerOptions

  constructor(options: ModelServerOptions) {
    this.options = options
  }

  private get checker() {
    return this.options.checker
  }

  // ---- server-side controls -------------------------------------------------------------------

  /** A sign-in of `user` (the OAuth flow happened elsewhere): a new session, its token response. */
  signIn(user: string): { family: string; body: TokenResponseBody } {
    const family: Family = { id: `S${++this.familyCount}`, user, revoked: false, generation: 0, newest: '' }
    this.families.set(family.id, family)
    return { family: family.id, body: this.issue(family) }
  }

  /** Every access token issued so far is expired (server side). */
  expireAccessTokens(): void {
    const now = this.options.clock()
    for (const record of this.accessTokens.values()) record.exp = Math.min(record.exp, now - 1)
  }

  familyOfAccess(token: string | undefined): string | undefined {
    return token === undefined ? undefined : this.accessTokens.get(token)?.family
  }

  familyOfRefresh(token: string | undefined): string | undefined {
    return token === undefined ? undefined : this.refreshTokens.get(token)?.family
  }

  userOf(family: string | undefined): string | undefined {
    return family === undefined ? undefined : this.families.get(family)?.user
  }

  /** The newest refresh token issued for `family`. */
  newest(family: string): string | undefined {
    return this.families.get(family)?.newest
  }

  isRevoked(family: string): boolean {
    return this.families.get(family)?.revoked ?? false
  }

  private issue(family: Family): TokenResponseBody {
    const accessToken = `at-${family.id}-${++this.accessCount}`
    this.accessTokens.set(accessToken, { family: family.id, exp: this.options.clock() + this.options.accessTtl * 1000 })
    const refreshToken = `rt-${family.id}-${++family.generation}`
    this.refreshTokens.set(refreshToken, { family: family.id, used: false })
    family.newest = refreshToken
    return { access_token: accessToken, token_type: 'bearer', expires_in: this.options.accessTtl, refresh_token: refreshToken, scope: 'pass:read' }
  }

  private revoke(family: Family, why: string): void {
    if (family.revoked) return
    family.revoked = true // its access tokens stop working too (the API checks the family)
    this.checker.familyRevoked(family.id, why)
  }

  // ---- the network ------------------------------------------------------------------------------

  /** The `fetch` of engine `engine` (its ky instance and its token calls). */
  fetchFor(engine: number): typeof fetch {
    return (input, init) => this.exchange(engine, new Request(input as RequestInfo, init))
  }

  private async exchange(engine: number, request: Request): Promise<Response> {
    const { signal } = request
    if (signal.aborted) throw signal.reason
    const url = new URL(request.url)
    const text = request.method === 'GET' || request.method === 'HEAD' ? '' : await request.text()
    if (signal.aborted) throw signal.reason
    if (url.origin !== ORIGIN) throw new TypeError(`fetch failed: no route to ${url.origin}`)
    if (request.method === 'POST' && url.href === TOKEN_URL) return this.tokenCall(engine, request, text)
    if (request.method === 'POST' && url.href === REVOKE_URL) return this.revocation(engine, request, text)
    if (url.href === API_URL) return this.apiCall(engine, request, text)
    return json(404, { error: 'not_found' })
  }

  /**
   * Hold the exchange behind a gate. `fire` computes the answer when released (a Response, or an
   * Error to reject with); `aborted` runs if the caller's signal aborts first.
   */
  private gate(label: string, signal: AbortSignal, hung: boolean, fire: () => Response | Error, aborted: () => void, failed: () => Error): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      const settle = (result: Response | Error) => {
        signal.removeEventListener('abort', onAbort)
        if (result instanceof Error) reject(result)
        else resolve(result)
      }
      const gate: Gate = {
        id: this.options.scheduler.newId(),
        label,
        queue: undefined,
        hung,
        fire: () => settle(fire()),
        fail: () => settle(failed()),
      }
      const onAbort = () => {
        this.options.scheduler.remove(gate)
        aborted()
        reject(signal.reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.options.scheduler.add(gate)
    })
  }

  private tokenCall(engine: number, request: Request, text: string): Promise<Response> {
    this.counts.token++
    const id = ++this.tokenCallCount
    let rt = ''
    try {
      const parsed = JSON.parse(text) as { refresh_token?: unknown }
      if (typeof parsed.refresh_token === 'string') rt = parsed.refresh_token
    } catch {}
    const outcome = this.outcomes.shift() ?? 'ok'
    if (!request.headers.get('content-type')?.startsWith('application/json')) {
      return Promise.resolve(json(400, { error: { code: 'invalid_request', message: 'Body must be JSON' } }))
    }
    this.checker.tokenArrived(id, engine, rt, this.familyOfRefresh(rt))
    const fault = () => new TypeError('fetch failed (injected network fault)')
    return this.gate(
      `e${engine} token #${id} ${rt} [${outcome}]`,
      request.signal,
      outcome === 'hang',
      () => {
        switch (outcome) {
          case 'fault-before':
            this.checker.tokenSettled(id, 'failed', 'network fault before processing')
            return fault()
          case '503':
            this.checker.tokenSettled(id, 'delivered', '503')
            return json(503, { error: { code: 'server_error', message: 'Temporarily unavailable' } })
          case 'invalid_grant': {
            const family = this.families.get(this.familyOfRefresh(rt) ?? '')
            if (family) this.revoke(family, 'the server ended the session (invalid_grant)')
            this.checker.tokenSettled(id, 'delivered', 'invalid_grant')
            return json(400, { error: { code: 'invalid_grant', message: 'Refresh token is invalid or has been revoked' } })
          }
          default: {
            const answer = this.rotate(id, rt)
            if (outcome === 'fault-after') {
              this.checker.tokenSettled(id, 'lost', `network fault after processing (${answer.status})`)
              return fault()
            }
            this.checker.tokenSettled(id, 'delivered', String(answer.status))
            return answer
          }
        }
      },
      () => this.checker.tokenSettled(id, 'aborted'),
      () => {
        this.checker.tokenSettled(id, 'failed', 'hang ended by a network fault')
        return fault()
      },
    )
  }

  /** Strict rotation with reuse detection. */
  private rotate(id: number, rt: string): Response {
    const invalid = () => json(400, { error: { code: 'invalid_grant', message: 'Refresh token is invalid or has been revoked' } })
    const record = this.refreshTokens.get(rt)
    if (!record) return invalid()
    const family = this.families.get(record.family)!
    if (family.revoked) return invalid()
    if (record.used) {
      this.counts.reuse++
      this.revoke(family, `reuse of the spent refresh token ${rt} detected`)
      return invalid()
    }
    record.used = true
    const body = this.issue(family)
    this.counts.rotated++
    this.checker.tokenRotated(id, rt, body.refresh_token as string)
    return json(200, body)
  }

  private revocation(engine: number, request: Request, text: string): Promise<Response> {
    this.counts.revoke++
    let token = ''
    try {
      const parsed = JSON.parse(text) as { token?: unknown }
      if (typeof parsed.token === 'string') token = parsed.token
    } catch {}
    this.checker.note(`revoke ← engine ${engine} ${token}`)
    return this.gate(
      `e${engine} revoke ${token}`,
      request.signal,
      false,
      () => {
        const family = this.families.get(this.familyOfRefresh(token) ?? '')
        if (family) this.revoke(family, `revoked at logout by engine ${engine}`)
        return new Response(null, { status: 200 })
      },
      () => this.checker.note(`revoke of ${token} aborted`),
      () => new TypeError('fetch failed'),
    )
  }

  private apiCall(engine: number, request: Request, text: string): Promise<Response> {
    this.counts.api++
    const call = request.headers.get('x-call') ?? undefined
    const header = request.headers.get('authorization') ?? ''
    const token = header.startsWith('Bearer ') ? header.slice(7) : undefined
    const family = this.familyOfAccess(token)
    let intact = true
    if (request.method === 'POST') {
      try {
        intact = JSON.stringify(JSON.parse(text)) === JSON.stringify(postBody(call ?? ''))
      } catch {
        intact = false
      }
    }
    this.checker.apiArrived(call, engine, family, token !== undefined, intact)
    return this.gate(
      `e${engine} API ${request.method} ${call} ${token ?? '(no token)'}`,
      request.signal,
      false,
      () => {
        const record = token === undefined ? undefined : this.accessTokens.get(token)
        const valid = !!record && this.options.clock() < record.exp && !this.families.get(record.family)?.revoked
        this.checker.apiAnswered(call, valid ? 200 : 401)
        if (!valid) {
          this.counts.unauthorized++
          return json(401, { error: { code: 'unauthorized', message: 'Access token is invalid or expired' } }, { 'www-authenticate': 'Bearer error="invalid_token"' })
        }
        return json(200, { user: this.userOf(record.family), session: record.family, call })
      },
      () => this.checker.note(`API request of call ${call} aborted`),
      () => new TypeError('fetch failed'),
    )
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
}
