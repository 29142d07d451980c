/**
 * Server side of the playground (runs in Vite's Node process): wraps the mock API's handler to
 * record every call the page makes, exactly as the server received and answered it, with every
 * token masked. Each call carries the page's `x-playground-tag` header (`tab.action.part`), so the
 * page can ask for the calls of one action (one burst) and count them: per-burst counters, the
 * request inspector and the guided mode's summaries all come from here.
 *
 * A ledger names every token this mock issued (access token #n, refresh-token generation g) and
 * knows what the server thinks of it (valid, expired early, revoked, spent), so the page can show
 * the server's view next to the library's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
// (Type-only Node imports: the page imports `mask` and `TAG_HEADER` from this module too.)

export const TAG_HEADER = 'x-playground-tag'

/** One header or body field as shown in the inspector (the value already masked). */
export interface Shown {
  name: string
  value: string
  /** What the server knows about the token in `value`, e.g. "access token #1 · expired". */
  note?: string
  /** Which issued token this is, so the page can compare old and new ("a1" = access #1, "r2" = refresh generation 2). */
  ref?: string
}

export interface CallRecord {
  seq: number
  tag: string
  kind: 'api' | 'token' | 'signin' | 'revoke'
  method: string
  path: string
  /** Server time (ms, performance.now) the request arrived and how long the answer took. */
  at: number
  ms: number
  request: { headers: Shown[]; body?: Shown[]; text?: string }
  response: { status: number; headers: Shown[]; body?: Shown[]; text?: string }
  /** This call was a spent refresh token presented again: the server revoked the session. */
  reuse: boolean
}

/**
 * Headers shown in the inspector. Everything else (cookies, user agent, sec-*) stays out.
 * DPoP (extension point): `dpop` (the proof, a JWT: masked like any token) and `dpop-nonce`
 * (the server's nonce challenge) are already listed so a DPoP profile only has to send them.
 */
const REQUEST_HEADERS = ['authorization', 'x-tenant', 'dpop', 'content-type', 'accept']
const RESPONSE_HEADERS = ['www-authenticate', 'dpop-nonce', 'retry-after', 'content-type']
const SECRET_FIELDS = new Set(['client_secret', 'password'])
const TOKEN_FIELDS = new Set(['access_token', 'refresh_token', 'token', 'id_token'])

/** `eyJ…a1B2c3`, `srt_…a1b2c3`, `sk_live_…a1b2c3`: enough to tell two tokens apart, useless to an attacker. */
export function mask(token: string): string {
  if (token.length <= 12) return '••••'
  const prefix = token.startsWith('eyJ') ? 'eyJ' : token.startsWith('sk_live_') ? 'sk_live_' : token.startsWith('srt_') ? 'srt_' : ''
  return `${prefix}…${token.slice(-6)}`
}
const fingerprint = (token: string) => token.slice(-6)

interface AccessEntry { n: number; exp: number; early: boolean; revoked: boolean }
interface RefreshEntry { generation: number; spent: boolean; revoked: boolean }

/** What the server knows about the tokens one mock API issued. */
export class Ledger {
  readonly access = new Map<string, AccessEntry>()
  readonly refresh = new Map<string, RefreshEntry>()
  private issued = 0
  readonly staticTokens: ReadonlySet<string>
  constructor(staticTokens: ReadonlySet<string> = new Set()) {
    this.staticTokens = staticTokens
  }

  issue(body: Record<string, unknown>, generation: number, now = Date.now()) {
    const refs: Record<string, string> = {}
    if (typeof body.access_token === 'string') {
      const n = ++this.issued
      const ttl = Number(body.expires_in) || 0
      this.access.set(fingerprint(body.access_token), { n, exp: now + ttl * 1000, early: false, revoked: false })
      refs.access_token = `a${n}`
    }
    if (typeof body.refresh_token === 'string') {
      this.refresh.set(fingerprint(body.refresh_token), { generation, spent: false, revoked: false })
      refs.refresh_token = `r${generation}`
    }
    return refs
  }
  expireAll(now = Date.now()) {
    for (const entry of this.access.values()) if (entry.exp > now) Object.assign(entry, { exp: now - 1, early: true })
  }
  revokeAll() {
    for (const entry of this.access.values()) entry.revoked = true
    for (const entry of this.refresh.values()) entry.revoked = true
  }
  spend(refreshToken: string) {
    const entry = this.refresh.get(fingerprint(refreshToken))
    if (entry) entry.spent = true
  }

  /** The server's view of an access token, by its masked tail. */
  accessStatus(fp: string, now = Date.now()) {
    const entry = this.access.get(fp)
    if (!entry) return undefined
    const status = entry.revoked ? 'revoked' : entry.exp <= now ? (entry.early ? 'expired-early' : 'expired') : 'valid'
    return { n: entry.n, status, expiresIn: Math.max(0, (entry.exp - now) / 1000) }
  }
  refreshStatus(fp: string) {
    const entry = this.refresh.get(fp)
    if (!entry) return undefined
    return { generation: entry.generation, status: entry.revoked ? 'revoked' : entry.spent ? 'spent' : 'unused' }
  }

  describeAccess(token: string): Pick<Shown, 'note' | 'ref'> {
    if (this.staticTokens.has(token)) return { note: 'static API token (never expires)' }
    const status = this.accessStatus(fingerprint(token))
    if (!status) return { note: 'not issued by this run of the mock' }
    const state =
      status.status === 'valid' ? `valid for ${Math.round(status.expiresIn)} s`
      : status.status === 'expired-early' ? 'expired (by "Expire access token now")'
      : status.status
    return { note: `access token #${status.n} · ${state}`, ref: `a${status.n}` }
  }
  describeRefresh(token: string): Pick<Shown, 'note' | 'ref'> {
    const status = this.refreshStatus(fingerprint(token))
    if (!status) return { note: 'refresh token not issued by this run of the mock' }
    return { note: `refresh token generation ${status.generation} · ${status.status === 'unused' ? 'valid' : status.status}`, ref: `r${status.generation}` }
  }
}

/** Per action (`tab.action`), the calls the server saw, oldest first; only the latest 100 actions are kept. */
export class CallLog {
  private seq = 0
  private readonly byAction = new Map<string, CallRecord[]>()

  add(record: Omit<CallRecord, 'seq'>) {
    const key = record.tag.split('.').slice(0, 2).join('.')
    let list = this.byAction.get(key)
    if (!list) {
      this.byAction.set(key, (list = []))
      while (this.byAction.size > 100) this.byAction.delete(this.byAction.keys().next().value!)
    }
    if (list.length < 2_000) list.push({ seq: ++this.seq, ...record })
  }
  get(action: string): CallRecord[] {
    return this.byAction.get(action) ?? []
  }
}

const parseBody = (text: string, type: string | undefined): Record<string, unknown> | undefined => {
  try {
    if (type?.startsWith('application/json')) return JSON.parse(text)
    if (type?.startsWith('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(text))
  } catch {}
  return undefined
}
const headerText = (value: unknown) => (Array.isArray(value) ? value.join(', ') : String(value))
const titleCase = (name: string) => name.replace(/(^|-)(\w)/g, (_, dash: string, letter: string) => dash + letter.toUpperCase()).replace(/^Www/, 'WWW').replace(/^Dpop/, 'DPoP')

/** Fields of a token request or response body, every token and secret masked and described. */
function shownFields(body: Record<string, unknown>, ledger: Ledger, refs: Record<string, string> = {}): Shown[] {
  return Object.entries(body).map(([name, value]) => {
    if (SECRET_FIELDS.has(name)) return { name, value: '••••••', note: name === 'password' ? 'the password, never shown' : 'the client secret, never shown' }
    if (TOKEN_FIELDS.has(name) && typeof value === 'string') {
      if (refs[name]) {
        const ref = refs[name]
        const note = ref.startsWith('a') ? `access token #${ref.slice(1)} · new` : `refresh token generation ${ref.slice(1)} · new`
        return { name, value: mask(value), note, ref }
      }
      return { name, value: mask(value), ...(name === 'access_token' ? ledger.describeAccess(value) : ledger.describeRefresh(value)) }
    }
    return { name, value: typeof value === 'string' ? value : (JSON.stringify(value) ?? 'undefined') }
  })
}

const shortText = (text: string) => (text.length > 240 ? `${text.slice(0, 240)}…` : text)

export interface RecordContext {
  kind: CallRecord['kind']
  ledger: Ledger
  log: CallLog
  /** The mock API's refresh-token generation right now (read when a token response is sent). */
  generation: () => number
  /** The mock API's reuse-detection counter. */
  reuseCount: () => number
}

/**
 * Record one call: call it right before the handler runs. It listens to the request body (the
 * handler reads it too) and wraps `writeHead`/`end` to see the answer as it leaves.
 */
export function record(req: IncomingMessage, res: ServerResponse, path: string, context: RecordContext) {
  const tag = headerText(req.headers[TAG_HEADER] ?? '')
  if (!tag || req.method === 'OPTIONS') return
  const { ledger, kind } = context
  const at = performance.now()
  const reuseBefore = context.reuseCount()
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))

  const requestHeaders: Shown[] = []
  for (const name of REQUEST_HEADERS) {
    const raw = req.headers[name]
    if (raw === undefined) continue
    const value = headerText(raw)
    if (name === 'authorization' && /^bearer /i.test(value)) {
      const token = value.slice(7)
      requestHeaders.push({ name: titleCase(name), value: `Bearer ${mask(token)}`, ...ledger.describeAccess(token) })
    } else if (name === 'authorization') {
      requestHeaders.push({ name: titleCase(name), value: `${value.split(' ')[0]} ••••••`, note: 'client credentials, never shown' })
    } else if (name === 'dpop') {
      requestHeaders.push({ name: 'DPoP', value: mask(value), note: 'proof of possession (a signed JWT)' })
    } else {
      requestHeaders.push({ name: titleCase(name), value })
    }
  }

  let status = 0
  let responseHeaders: Record<string, unknown> = {}
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse
  res.writeHead = ((code: number, ...rest: unknown[]) => {
    status = code
    const headers = rest.find((item) => item && typeof item === 'object')
    if (headers) responseHeaders = headers as Record<string, unknown>
    return writeHead(code, ...rest)
  }) as ServerResponse['writeHead']

  let done = false
  const finish = (chunk: unknown) => {
    if (done) return
    done = true
    const requestText = Buffer.concat(chunks).toString('utf8')
    const requestBody = parseBody(requestText, req.headers['content-type'])
    const responseText = chunk === undefined || chunk === null ? '' : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk)
    const responseType = String(Object.entries(responseHeaders).find(([name]) => name.toLowerCase() === 'content-type')?.[1] ?? '')
    const responseBody = parseBody(responseText, responseType)
    const tokenCall = kind === 'token' || kind === 'signin'

    // Describe what was sent before the ledger learns about this call's answer (a refresh token
    // that is spent by this very call was valid when it arrived).
    const sentFields = requestBody && tokenCall ? shownFields(requestBody, ledger) : undefined
    let refs: Record<string, string> = {}
    if (tokenCall && status === 200 && responseBody && typeof responseBody.access_token === 'string') {
      refs = ledger.issue(responseBody, context.generation())
      if (typeof requestBody?.refresh_token === 'string' && typeof responseBody.refresh_token === 'string') ledger.spend(requestBody.refresh_token)
    }
    const reuse = context.reuseCount() > reuseBefore
    if (reuse || (kind === 'revoke' && status === 200)) ledger.revokeAll()

    const shownResponseHeaders: Shown[] = []
    for (const [name, value] of Object.entries(responseHeaders)) {
      if (RESPONSE_HEADERS.includes(name.toLowerCase())) shownResponseHeaders.push({ name: titleCase(name.toLowerCase()), value: headerText(value) })
    }
    context.log.add({
      tag,
      kind,
      method: req.method ?? 'GET',
      path,
      at,
      ms: performance.now() - at,
      request: {
        headers: requestHeaders,
        ...(sentFields ? { body: sentFields } : requestText ? { text: shortText(requestText) } : {}),
      },
      response: {
        status,
        headers: shownResponseHeaders,
        ...(tokenCall && responseBody && status === 200 ? { body: shownFields(responseBody, ledger, refs) } : responseText ? { text: shortText(responseText) } : {}),
      },
      reuse,
    })
  }
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    finish(typeof chunk === 'function' ? undefined : chunk)
    return end(chunk, ...rest)
  }) as ServerResponse['end']
  // A dropped connection (a "reset" fault) never reaches end().
  res.on('close', () => finish(undefined))
}
