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
  /** A DPoP proof (a JWT), decoded: its protected header and claims; the signature is never shown. */
  proof?: { header: Shown[]; claims: Shown[] }
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
  /**
   * The server answered with a DPoP nonce challenge (`use_dpop_nonce`: 401 from the API, 400 from
   * the token endpoint): the client retries once with a fresh proof, it does not refresh.
   */
  challenge?: boolean
}

/**
 * What a DPoP server decided about one call's proof, handed to the recorder by the DPoP mock
 * (./dpop-mock.ts) while it answers, so the inspector can show it beside the decoded proof.
 */
export interface ProofVerdict {
  /** The checks the proof passed, in order (all of them when the call was accepted). */
  verified?: string[]
  /** Why the proof was refused (`use_dpop_nonce: …`, `invalid_dpop_proof: …`). */
  refused?: string
  /** RFC 7638 thumbprint of the proof's key: what the tokens are bound to (`cnf.jkt`). */
  jkt?: string
  /** The proof's nonce, as the server sees it ("nonce #2: the server's current nonce"). */
  nonce?: string
  /** The nonce the response hands out (its `DPoP-Nonce` header). */
  responseNonce?: string
}
export const proofVerdicts = new WeakMap<IncomingMessage, ProofVerdict>()

/**
 * Headers shown in the inspector. Everything else (cookies, user agent, sec-*) stays out.
 * DPoP: `dpop` (the proof, a JWT) is shown decoded, header and claims, never its signature; the
 * server's verdict on it comes from the DPoP mock ({@link proofVerdicts}); `dpop-nonce` is the
 * server's nonce.
 */
const REQUEST_HEADERS = ['authorization', 'x-tenant', 'dpop', 'content-type', 'accept']
const RESPONSE_HEADERS = ['www-authenticate', 'dpop-nonce', 'retry-after', 'content-type']
const SECRET_FIELDS = new Set(['client_secret', 'password'])
const TOKEN_FIELDS = new Set(['access_token', 'refresh_token', 'token', 'id_token'])

/** `eyJ…a1B2c3`, `srt_…a1b2c3`, `sk_live_…a1b2c3`: enough to tell two tokens apart, useless to an attacker. */
export function mask(token: string): string {
  if (token.length <= 12) return '••••'
  const prefix = token.startsWith('eyJ') ? 'eyJ' : token.startsWith('sk_live_') ? 'sk_live_' : token.startsWith('srt_') ? 'srt_' : token.startsWith('drt_') ? 'drt_' : ''
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

/** A DPoP proof's protected header and claims (decoded, not verified: the server does that). */
function decodeProof(value: string): Shown['proof'] {
  const [head, body] = value.split('.')
  let header: Record<string, unknown>
  let claims: Record<string, unknown>
  try {
    header = JSON.parse(Buffer.from(head ?? '', 'base64url').toString('utf8'))
    claims = JSON.parse(Buffer.from(body ?? '', 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
  const text = (item: unknown) => (typeof item === 'string' ? item : (JSON.stringify(item) ?? ''))
  const NOTES: Record<string, string> = {
    typ: 'marks the JWT as a DPoP proof',
    htm: 'the HTTP method this proof is for',
    htu: 'the URL this proof is for, without query and fragment',
    jti: 'unique per proof: the server refuses one it has seen (replay cache)',
    ath: 'base64url(SHA-256(access token)): binds the proof to the token it travels with',
  }
  const shownHeader = Object.entries(header).map(([name, item]) => {
    if (name === 'jwk' && item && typeof item === 'object') {
      const jwk = item as Record<string, unknown>
      return { name, value: [jwk.kty, jwk.crv].filter(Boolean).join(' '), note: 'public key only' }
    }
    return { name, value: text(item), ...(NOTES[name] && { note: NOTES[name] }) }
  })
  const shownClaims = Object.entries(claims).map(([name, item]) => {
    if (name === 'iat' && typeof item === 'number') return { name, value: String(item), note: `signed ${Math.max(0, Math.round(Date.now() / 1000 - item))} s before it arrived` }
    return { name, value: text(item), ...(NOTES[name] && { note: NOTES[name] }) }
  })
  return { header: shownHeader, claims: shownClaims }
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
    if (name === 'authorization' && /^(bearer|dpop) /i.test(value)) {
      const [scheme = '', token = ''] = value.split(' ')
      requestHeaders.push({ name: titleCase(name), value: `${/^dpop$/i.test(scheme) ? 'DPoP' : 'Bearer'} ${mask(token)}`, ...ledger.describeAccess(token) })
    } else if (name === 'authorization') {
      requestHeaders.push({ name: titleCase(name), value: `${value.split(' ')[0]} ••••••`, note: 'client credentials, never shown' })
    } else if (name === 'dpop') {
      const proof = decodeProof(value)
      requestHeaders.push({ name: 'DPoP', value: proof ? 'dpop+jwt · header.claims.[signature elided]' : mask(value), note: 'proof of possession: a JWT signed by this tab’s key, new for every attempt', ...(proof && { proof }) })
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

    // DPoP: what the server decided about the proof, beside the decoded proof.
    const verdict = proofVerdicts.get(req)
    const challenge =
      (status === 401 && /\buse_dpop_nonce\b/.test(headerText(Object.entries(responseHeaders).find(([name]) => name.toLowerCase() === 'www-authenticate')?.[1] ?? ''))) ||
      (status === 400 && responseBody?.error === 'use_dpop_nonce')
    const proofHeader = requestHeaders.find((header) => header.name === 'DPoP')
    if (proofHeader && verdict) {
      const decided = verdict.refused ? `refused by the server: ${verdict.refused}` : verdict.verified ? `verified by the server: ${verdict.verified.join(', ')} ✓` : undefined
      if (decided) proofHeader.note = decided
      const claim = (name: string) => proofHeader.proof?.claims.find((item) => item.name === name)
      if (verdict.nonce && claim('nonce')) claim('nonce')!.note = verdict.nonce
      else if (!claim('nonce') && proofHeader.proof) proofHeader.proof.claims.push({ name: 'nonce', value: '(none)', note: 'no nonce yet: the server answers with one' })
      const jwk = proofHeader.proof?.header.find((item) => item.name === 'jwk')
      if (jwk && verdict.jkt) jwk.note = `public key only · thumbprint (jkt) …${verdict.jkt.slice(-6)}`
    }

    const shownResponseHeaders: Shown[] = []
    for (const [name, value] of Object.entries(responseHeaders)) {
      const lower = name.toLowerCase()
      if (!RESPONSE_HEADERS.includes(lower)) continue
      const note = lower === 'dpop-nonce' ? verdict?.responseNonce : lower === 'www-authenticate' && challenge ? 'a nonce challenge: retry once with a fresh proof carrying the new nonce (no refresh)' : undefined
      shownResponseHeaders.push({ name: titleCase(lower), value: headerText(value), ...(note && { note }) })
    }
    const issuedFields = tokenCall && responseBody && status === 200 ? shownFields(responseBody, ledger, refs) : undefined
    const issuedAccess = issuedFields?.find((field) => field.name === 'access_token')
    if (issuedAccess && verdict?.jkt && responseBody?.token_type === 'DPoP') issuedAccess.note = `${issuedAccess.note} · bound to key …${verdict.jkt.slice(-6)} (cnf.jkt)`
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
        ...(issuedFields ? { body: issuedFields } : responseText ? { text: shortText(responseText) } : {}),
      },
      reuse,
      ...(challenge && { challenge }),
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
