/**
 * The timeline of one action, drawn as SVG in real pixels (the viewBox follows the element's
 * width, so labels stay 11–12 px on a phone). One lane per request: each attempt is a bar
 * (solid = answered 2xx, hatched = 401, dotted = a DPoP nonce challenge, cross-hatched = other
 * error, dashed outline = in flight), a dotted line is time spent waiting for a token, a × marks a failure. Token-endpoint
 * calls are drawn last, on top, as a labelled band across all lanes. Patterns and shapes carry
 * the meaning; colour only adds to it.
 */

/** `nonce`: the answer was a DPoP nonce challenge (401 `use_dpop_nonce`), retried with a fresh proof, no refresh. */
export interface Attempt { start: number; end?: number; status?: number; nonce?: boolean }
export interface RequestTrace { i: number; start: number; end?: number; outcome?: 'ok' | 'failed'; code?: string; attempts: Attempt[] }
/** `nonce`: the token endpoint answered 400 `use_dpop_nonce`; the call was repeated with a fresh proof. */
export interface TokenTrace { start: number; end?: number; status?: number; path: string; nonce?: boolean }
export interface ActionTrace { label: string; start: number; end?: number; requests: RequestTrace[]; tokenCalls: TokenTrace[] }

export const MAX_LANES = 20
const NS = 'http://www.w3.org/2000/svg'
const LEFT = 40
const RIGHT = 14
const TOP = 34
const LANE = 15
const BAR = 10

/** Shared patterns (index.html holds them once, for the chart and the legend). */
export const PATTERN_DEFS = `
  <pattern id="p-401" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><rect width="3" height="6" fill="#a64b00"/></pattern>
  <pattern id="p-nonce" width="5" height="5" patternUnits="userSpaceOnUse"><rect width="5" height="5" fill="#fff"/><circle cx="2.5" cy="2.5" r="1.3" fill="#1f5fa8"/></pattern>
  <pattern id="p-failed" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#fff"/><path d="M0 0L6 6M6 0L0 6" stroke="#b42318" stroke-width="1.6"/></pattern>`

/** A round tick interval at least 72 px apart (labels like "1000 ms" never touch). */
const niceStep = (span: number, plot: number) => [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000].find((step) => (step / span) * plot >= 72) ?? 30000

export function describeRequest(request: RequestTrace): string {
  const parts = request.attempts.map((attempt, index) => `${index ? (request.attempts[index - 1]!.nonce ? 'retried with a fresh proof → ' : 'replayed → ') : ''}${attempt.status === undefined ? 'in flight' : attempt.status === 0 ? 'network error' : attempt.status}${attempt.nonce ? ' (nonce challenge)' : ''}`)
  if (request.attempts.length === 0) parts.push('never sent')
  if (request.outcome === 'failed') parts.push(`failed (${request.code ?? 'error'})`)
  return `Request #${request.i}: ${parts.join(' → ')}`
}

export function renderTimeline(svg: SVGSVGElement, trace: ActionTrace | undefined, now: number): void {
  const width = Math.max(280, Math.round(svg.clientWidth || svg.parentElement?.clientWidth || 600))
  const lanes = trace ? Math.min(trace.requests.length, MAX_LANES) : 0
  const height = trace && (lanes || trace.tokenCalls.length) ? TOP + Math.max(lanes, 1) * LANE + 30 : 90
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  svg.setAttribute('height', String(height))
  const parts: string[] = []
  if (!trace || (lanes === 0 && trace.tokenCalls.length === 0)) {
    parts.push(`<text x="${width / 2}" y="50" text-anchor="middle" class="t-muted">Nothing to draw yet: fire some requests.</text>`)
    svg.innerHTML = parts.join('')
    return
  }
  const ends = [trace.end ?? now, ...trace.requests.map((r) => r.end ?? now), ...trace.tokenCalls.map((t) => t.end ?? now)]
  const span = Math.max(20, Math.max(...ends) - trace.start) * 1.03
  const plot = width - LEFT - RIGHT
  const x = (t: number) => LEFT + ((t - trace.start) / span) * plot
  const bottom = TOP + Math.max(lanes, 1) * LANE

  // Axis: milliseconds since the click.
  const step = niceStep(span, plot)
  for (let t = 0; t <= span; t += step) {
    const px = x(trace.start + t)
    parts.push(`<line x1="${px}" y1="${TOP - 4}" x2="${px}" y2="${bottom}" class="grid"/>`)
    parts.push(`<text x="${px}" y="${bottom + 16}" text-anchor="${t === 0 ? 'start' : 'middle'}" class="t-muted">${t >= 1000 ? `${t / 1000} s` : `${t} ms`}</text>`)
  }

  trace.requests.slice(0, lanes).forEach((request, index) => {
    const y = TOP + index * LANE
    const mid = y + BAR / 2
    const group: string[] = [`<text x="${LEFT - 6}" y="${y + BAR - 1}" text-anchor="end" class="t-lane">#${request.i}</text>`]
    const wait = (from: number, to: number) => {
      if (to - from > span / plot) group.push(`<line x1="${x(from)}" y1="${mid}" x2="${x(to)}" y2="${mid}" class="wait"/>`)
    }
    let cursor = request.start
    for (const attempt of request.attempts) {
      wait(cursor, attempt.start)
      const end = attempt.end ?? now
      const w = Math.max(3, x(end) - x(attempt.start))
      const kind = attempt.end === undefined ? 'inflight' : attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300 ? 'ok' : attempt.nonce ? 'nonce' : attempt.status === 401 ? 'unauthorized' : 'error'
      group.push(`<rect x="${x(attempt.start)}" y="${y}" width="${w}" height="${BAR}" rx="1.5" class="seg-${kind}"/>`)
      cursor = end
    }
    if (request.end !== undefined) wait(cursor, request.end)
    else if (!request.attempts.length || request.attempts.at(-1)!.end !== undefined) wait(cursor, now)
    if (request.outcome === 'failed') {
      const cx = x(request.end ?? now) + 5
      group.push(`<path d="M${cx - 4} ${mid - 4}L${cx + 4} ${mid + 4}M${cx + 4} ${mid - 4}L${cx - 4} ${mid + 4}" class="fail-mark"/>`)
    }
    parts.push(`<g data-kind="request" data-i="${request.i}"><title>${describeRequest(request)}</title>${group.join('')}</g>`)
  })

  // Token-endpoint calls on top of everything, with a label.
  trace.tokenCalls.forEach((call, index) => {
    const x1 = x(call.start)
    const w = Math.max(3, x(call.end ?? now) - x1)
    parts.push(`<g data-kind="token"${call.nonce ? ' data-nonce="true"' : ''}><rect x="${x1}" y="${TOP - 6}" width="${w}" height="${bottom - TOP + 8}" class="band${call.nonce ? ' band-nonce' : ''}"/><path d="M${x1} ${TOP - 12}l5 5l-5 5l-5 -5z" class="band-mark"/></g>`)
    if (index === 0) {
      const statuses = trace.tokenCalls.map((item) => (item.end === undefined ? '…' : `${item.status || 'no answer'}${item.nonce ? ' (nonce challenge)' : ''}`))
      const label = trace.tokenCalls.length === 1 ? `${call.path} → ${statuses[0]}${call.end !== undefined ? ` (${Math.round(call.end - call.start)} ms)` : ''}` : `${trace.tokenCalls.length} token calls → ${statuses.join(', ')}`
      const estimate = label.length * 6.6
      const lx = Math.min(Math.max(x1 + 8, LEFT), width - RIGHT - estimate)
      parts.push(`<text x="${lx}" y="${TOP - 14}" class="t-band">${label.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`)
    }
  })
  svg.innerHTML = parts.join('')
  // Keep the token call's label inside the chart (its width is known only once drawn).
  const label = svg.querySelector<SVGTextElement>('.t-band')
  if (label) {
    const room = width - RIGHT - label.getComputedTextLength()
    if (Number(label.getAttribute('x')) > room) label.setAttribute('x', String(Math.max(4, room)))
  }
}

/** Legend swatches (inline SVG, same classes and patterns as the chart). */
export const LEGEND: [string, string][] = [
  ['<rect x="1" y="3" width="22" height="10" rx="1.5" class="seg-ok"/>', 'sent → 2xx'],
  ['<rect x="1" y="3" width="22" height="10" rx="1.5" class="seg-unauthorized"/>', 'sent → 401'],
  ['<rect x="1" y="3" width="22" height="10" rx="1.5" class="seg-nonce"/>', 'sent → DPoP nonce challenge (retried with a fresh proof, no refresh)'],
  ['<line x1="1" y1="8" x2="23" y2="8" class="wait"/>', 'waiting for a token'],
  ['<rect x="1" y="3" width="22" height="10" rx="1.5" class="seg-error"/>', 'sent → other error'],
  ['<path d="M8 4L16 12M16 4L8 12" class="fail-mark"/>', 'request failed'],
  ['<rect x="1" y="3" width="22" height="10" rx="1.5" class="seg-inflight"/>', 'in flight'],
  ['<rect x="4" y="1" width="16" height="14" class="band"/><path d="M4 1l4 4l-4 4l-4 -4z" class="band-mark"/>', 'token-endpoint call'],
]

export function svgElement(markup: string, width = 24, height = 16): SVGSVGElement {
  const svg = document.createElementNS(NS, 'svg')
  svg.setAttribute('width', String(width))
  svg.setAttribute('height', String(height))
  svg.setAttribute('aria-hidden', 'true')
  svg.setAttribute('focusable', 'false')
  svg.innerHTML = markup
  return svg
}
