/**
 * The request inspector: for one request of the last action, the calls the server received and
 * answered, in order (first attempt → 401 → the shared token call → the replay), with the real
 * headers and bodies, tokens masked and named by the server ("access token #1 · expired",
 * "refresh token generation 1 → 2").
 */
import type { CallRecord, Shown } from './recorder.ts'
import type { ProfileSpec } from './profiles.ts'

const REASONS: Record<number, string> = { 0: 'no answer (connection dropped)', 200: 'OK', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' }

export interface InspectEntry { id: string; label: string }

const partOf = (call: CallRecord) => call.tag.split('.')[2] ?? ''

/** What can be inspected in an action's calls: each request, then the token calls on their own. */
export function entriesOf(calls: CallRecord[]): InspectEntry[] {
  const requests = new Map<number, CallRecord[]>()
  for (const call of calls) {
    const part = Number(partOf(call))
    if (Number.isInteger(part) && part > 0) requests.set(part, [...(requests.get(part) ?? []), call])
  }
  const entries: InspectEntry[] = [...requests]
    .sort(([a], [b]) => a - b)
    .map(([i, attempts]) => ({
      id: String(i),
      label: `Request #${i}: ${attempts.map((attempt, index) => `${index ? (attempts[index - 1]!.challenge ? ' → retried with a fresh proof → ' : ' → replayed → ') : ''}${attempt.response.status || 'no answer'}${attempt.challenge ? ' nonce challenge' : ''}`).join('')}`,
    }))
  const tokenCalls = calls.filter((call) => call.kind === 'token' || call.kind === 'signin' || call.kind === 'revoke')
  if (tokenCalls.length) entries.push({ id: 'token', label: `Token-endpoint calls only (${tokenCalls.length})` })
  return entries
}

/** The calls of one entry, in the order they happened. */
export function sequenceOf(calls: CallRecord[], id: string): CallRecord[] {
  const tokenCalls = calls.filter((call) => call.kind !== 'api')
  if (id === 'token') return tokenCalls
  const attempts = calls.filter((call) => partOf(call) === id)
  const last = attempts.at(-1)
  const related =
    attempts.length === 0 ? tokenCalls
    : attempts.length > 1 || last!.response.status !== 401 ? tokenCalls.filter((call) => call.at < last!.at) // proactive, or before the replay
    : tokenCalls.filter((call) => call.at >= attempts[0]!.at) // the 401 whose refresh failed
  return [...attempts, ...related].sort((a, b) => a.at - b.at)
}

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> & { dataset?: Record<string, string> } = {}, ...children: (Node | string)[]) => {
  const node = document.createElement(tag)
  const { dataset, ...rest } = props
  Object.assign(node, rest)
  if (dataset) Object.assign(node.dataset, dataset)
  node.append(...children)
  return node
}

function fields(items: Shown[], notes: Record<string, string> = {}, marks: (item: Shown) => Record<string, string> | undefined = () => undefined) {
  const list = el('dl', { className: 'seq-fields' })
  for (const item of items) {
    const code = el('code', { dataset: marks(item) ?? {} }, `${item.value}`)
    const note = item.note ?? notes[item.name]
    list.append(el('div', {}, el('dt', {}, item.name), el('dd', {}, code, ...(note ? [el('span', { className: 'note' }, note)] : []), ...(item.proof ? [proofOf(item.proof)] : []))))
  }
  return list
}

/** A DPoP proof, decoded: its protected header and its claims; the signature is left out. */
function proofOf(proof: NonNullable<Shown['proof']>) {
  return el(
    'div',
    { className: 'seq-proof', dataset: { proof: 'dpop' } },
    el('p', { className: 'seq-sub' }, 'proof header'),
    fields(proof.header, {}, (item) => ({ proofHeader: item.name })),
    el('p', { className: 'seq-sub' }, 'proof claims'),
    fields(proof.claims, {}, (item) => ({ claim: item.name })),
    el('p', { className: 'note' }, 'signature: elided (the server verified it with the jwk above)'),
  )
}

const shortPath = (path: string) => `…/${path.split('/').filter(Boolean).slice(-2).join('/')}`
const accessRef = (call: CallRecord) => call.request.headers.find((header) => header.name === 'Authorization')?.ref

/** One sentence for the whole sequence: "access token #1 → 401 → POST …/oauth2/refresh (refresh token generation 1 → 2) → replay with access token #2 → 200 OK". */
export function describeSequence(sequence: CallRecord[], id: string): string {
  const parts: string[] = []
  let apiSeen = 0
  let challenged = false
  for (const call of sequence) {
    const challenge = call.challenge ? ' (nonce challenge)' : ''
    if (call.kind === 'api') {
      const auth = call.request.headers.find((header) => header.name === 'Authorization')
      const who = auth?.ref ? `access token #${auth.ref.slice(1)}` : auth ? 'the token' : 'no token'
      const step = !apiSeen++ ? `GET with ${who}` : challenged ? `retry with a fresh proof and ${who}` : `replay with ${who}`
      parts.push(`${step} → ${`${call.response.status} ${REASONS[call.response.status] ?? ''}`.trim()}${challenge}`)
      challenged = Boolean(call.challenge)
    } else {
      const sent = call.request.body?.find((field) => field.name === 'refresh_token')?.ref
      const issued = call.response.body?.find((field) => field.name === 'refresh_token')?.ref
      const generation = sent && issued ? ` (refresh token generation ${sent.slice(1)} → ${issued.slice(1)})` : issued ? ` (refresh token generation ${issued.slice(1)})` : ''
      parts.push(`${call.method} ${shortPath(call.path)}${generation} → ${call.response.status || 'no answer'}${challenge}`)
    }
  }
  const head = id === 'token' ? 'Token calls' : `Request #${id}`
  return parts.length ? `${head}: ${parts.join(' → ')}` : `${head}: never sent (it failed before reaching the API).`
}

export function renderSequence(target: HTMLElement, calls: CallRecord[], id: string, profile: ProfileSpec, requestsInAction: number): void {
  const sequence = sequenceOf(calls, id)
  const list = el('ol', { className: 'sequence' })
  const refs = sequence.filter((call) => call.kind === 'api').map(accessRef)
  const firstRef = refs[0]
  const lastRef = refs.at(-1)
  let attempt = 0
  let previous: CallRecord | undefined
  for (const call of sequence) {
    const isApi = call.kind === 'api'
    const step = el('li', { className: `seq-step ${isApi ? 'seq-api' : 'seq-token'}`, dataset: call.challenge ? { challenge: 'nonce' } : {} })
    // A retry after a nonce challenge (same call, fresh proof) is not a replay after a refresh.
    const retry = previous?.challenge && previous.kind === call.kind
    const title = isApi ? (attempt++ ? (retry ? 'nonce retry' : 'replay') : 'attempt 1') : retry ? 'nonce retry' : call.kind === 'signin' ? 'sign-in' : call.kind === 'revoke' ? 'revocation' : 'token call'
    step.append(el('p', { className: 'seq-line seq-req' }, el('span', { className: 'arrow', ariaHidden: 'true' }, '→ '), el('strong', {}, call.method), ' ', el('code', {}, call.path), ' ', el('span', { className: `pill${retry ? ' nonce' : ''}` }, title)))
    previous = call
    if (isApi && attempt === 1 && sequence[0] !== call) step.append(el('p', { className: 'note' }, 'It reached the server after the token call: the browser had queued it (at most 6 connections per server), with the header set before the refresh.'))
    if (!isApi && id !== 'token' && requestsInAction > 1) step.append(el('p', { className: 'note' }, `One call shared by every request of this burst that needed a new token.`))
    step.append(
      fields(call.request.headers, profile.headerNotes, (item) => {
        if (item.name !== 'Authorization' || !item.ref || firstRef === lastRef) return undefined
        return item.ref === firstRef ? { token: 'old' } : item.ref === lastRef ? { token: 'new' } : undefined
      }),
    )
    const rotated = Boolean(call.response.body?.some((field) => field.name === 'refresh_token' && field.ref))
    if (call.request.body) step.append(el('p', { className: 'seq-sub' }, 'body'), fields(call.request.body, {}, (item) => (item.name === 'refresh_token' && item.ref ? { refresh: 'sent', ...(rotated && { spent: 'true' }) } : undefined)))
    else if (call.request.text) step.append(el('pre', { className: 'seq-body' }, call.request.text))
    const status = call.response.status
    step.append(
      el('p', { className: 'seq-line' }, el('span', { className: 'arrow', ariaHidden: 'true' }, '← '), el('strong', { className: `status ${status >= 200 && status < 300 ? 'good' : 'bad'}` }, String(status || '—')), ` ${REASONS[status] ?? ''}`, el('span', { className: 'muted' }, ` · ${Math.max(1, Math.round(call.ms))} ms`)),
    )
    if (call.response.headers.length) step.append(fields(call.response.headers))
    if (call.response.body) step.append(el('p', { className: 'seq-sub' }, 'body'), fields(call.response.body, {}, (item) => (item.ref ? { [item.name === 'refresh_token' ? 'refresh' : 'issued']: 'issued' } : undefined)))
    else if (call.response.text) step.append(el('pre', { className: 'seq-body' }, call.response.text))
    if (call.challenge) step.append(el('p', { className: 'note' }, isApi ? 'A DPoP nonce challenge, not a dead token: the proof carried a nonce the API no longer accepts. The library learns the new DPoP-Nonce and retries this request once with a fresh proof; it does not refresh the token.' : 'The token endpoint wants its DPoP nonce in the proof: the library retries this call once with a fresh proof carrying the DPoP-Nonce it just got.'))
    if (call.reuse) step.append(el('p', { className: 'note bad' }, 'Reuse detected: a spent refresh token was presented again, so the server revoked the session.'))
    list.append(step)
  }
  target.replaceChildren(el('p', { className: 'seq-summary', id: 'sequence-summary' }, describeSequence(sequence, id)), ...(sequence.length ? [list] : []))
}
