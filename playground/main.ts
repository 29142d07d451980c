// The playground page: the real library, imported from src/ exactly as a user imports the package.
// Every action (sign in, expire, a burst of requests…) gets a tag; the mock server records the calls
// of each tag (./recorder.ts), so the counters, the summary, the timeline and the inspector all
// describe one action, as the server saw it.
import ky, { type KyInstance } from 'ky'
import { createTokenAuth, isTokenError, type StoredTokens, type TokenAuth } from '../src/index.ts'
import type { DPoP } from '../src/dpop/index.ts'
import { TOKEN_CAUSES, explainBurst, explainError, summarize, type BurstFacts } from './explain.ts'
import { describeSequence, entriesOf, renderSequence, sequenceOf } from './inspector.ts'
import { PROFILES, STORAGE, build, codeFor, configFor, type Call, type ControlId, type MockConfig, type ProfileId, type ProfileSpec } from './profiles.ts'
import { TAG_HEADER, mask, type CallRecord } from './recorder.ts'
import { LEGEND, MAX_LANES, PATTERN_DEFS, renderTimeline, svgElement, type ActionTrace, type RequestTrace, type TokenTrace } from './timeline.ts'

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T
const origin = location.origin
/** This tab's id: every call it makes is tagged `tab.action.part`. */
const tab = Math.random().toString(36).slice(2, 8)
const reducedMotion = matchMedia('(prefers-reduced-motion: reduce)')
const REFRESH_BEFORE_S = 5

interface Action extends ActionTrace { no: number; key: string; kind: string; calls?: CallRecord[] }
interface Outcome { line: string; explain?: string[]; step?: keyof typeof STEPS; stepText?: string; tone?: 'ok' | 'bad' }
interface ServerView {
  ttl: number
  epoch: number
  mode: string
  access: { n?: number; status: string; expiresIn?: number } | null
  refresh: { generation?: number; status: string } | null
  /** DPoP profile: the number of the server's current nonce. */
  nonce?: number
}

const params = new URLSearchParams(location.hash.slice(1))
let profile: ProfileSpec = PROFILES[(params.get('profile') as ProfileId) ?? 'stemp'] ?? PROFILES.stemp
let storageName = STORAGE[params.get('storage') ?? ''] ? params.get('storage')! : 'memory'
let auth: TokenAuth | undefined
/** The DPoP profile's sender (its key, its nonces): the sign-in goes through it too. */
let sender: DPoP | undefined
/** Where the DPoP profile's sign-in exchanges its code: the grant's own token endpoint and client. */
let tokenEndpoint: { url: string; clientId: string } | undefined
let api: KyInstance
let epoch = 0
let actionNo = 0
let completed = 0
let current: Action | undefined
let shown: Action | undefined
let stored: StoredTokens | undefined
let server: ServerView | undefined
let unsubscribe: (() => void)[] = []
let restarting = false
let totals = { actions: 0, api: 0, unauthorized: 0, token: 0, reuse: 0, nonce: 0 }

// ---- small helpers ------------------------------------------------------------------------------
const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`
/** A DPoP nonce challenge: a 401 with `WWW-Authenticate: DPoP error="use_dpop_nonce"`, or a 400 `use_dpop_nonce` from a token endpoint. */
const isNonceChallenge = async (response: Response) => {
  if (!response.headers.has('dpop-nonce')) return false
  if (response.status === 401) return /\buse_dpop_nonce\b/.test(response.headers.get('www-authenticate') ?? '')
  if (response.status !== 400) return false
  const body = (await response.clone().json().catch(() => undefined)) as { error?: unknown } | undefined
  return body?.error === 'use_dpop_nonce'
}
const codeOf = (error: unknown) => (isTokenError(error) ? error.code : error instanceof Error ? error.name : 'Error')

function log(text: string, kind: 'info' | 'error' | 'refresh' = 'info') {
  const item = document.createElement('li')
  item.className = kind
  const glyph = kind === 'error' ? '✖ ' : kind === 'refresh' ? '↻ ' : '· '
  item.textContent = `${new Date().toLocaleTimeString()}  ${glyph}${text}`
  $('log').prepend(item)
  while ($('log').childElementCount > 200) $('log').lastElementChild!.remove()
}

function showBanner(text?: string, tone: 'bad' | 'warn' | 'info' = 'bad') {
  const banner = $('session-banner')
  banner.className = tone
  banner.textContent = text ?? ''
}

async function control(action: string, value?: unknown) {
  const response = await fetch('/mock/_control', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ profile: profile.id, action, value }) })
  return (await response.json()) as { epoch?: number; ttl?: number }
}

/** Bring the result into view (on a phone it sits below the tour) unless it already is. */
function reveal() {
  const rect = $('summary').getBoundingClientRect()
  if (rect.top >= 0 && rect.bottom <= innerHeight) return
  $('result').scrollIntoView({ behavior: reducedMotion.matches ? 'auto' : 'smooth', block: 'start' })
}

// ---- transport wrappers: tag and time every call ------------------------------------------------
/** ky's transport: times each attempt of a request (the first one and the replay after a 401). */
const kyFetch: typeof fetch = async (input, init) => {
  const tag = (input instanceof Request ? input.headers : new Headers(init?.headers)).get(TAG_HEADER) ?? ''
  const [tabId, no, part] = tag.split('.')
  const request = current && current.key === `${tabId}.${no}` ? current.requests[Number(part) - 1] : undefined
  const attempt: RequestTrace['attempts'][number] = { start: performance.now() }
  request?.attempts.push(attempt)
  try {
    const response = await fetch(input, init)
    attempt.status = response.status
    if (await isNonceChallenge(response)) attempt.nonce = true
    return response
  } catch (error) {
    attempt.status = 0
    throw error
  } finally {
    attempt.end = performance.now()
  }
}

/**
 * The token engine's transport: tags token-endpoint calls with the running action and times them.
 * With DPoP it sits under the sender's transport, so each attempt (the nonce challenge, then the
 * retry with a fresh proof) is a call of its own.
 */
const tagged = (part: 'token' | 'signin'): typeof fetch => async (input, init) => {
  const headers = new Headers(init?.headers)
  const action = current
  headers.set(TAG_HEADER, `${action?.key ?? `${tab}.0`}.${part}`)
  const trace: TokenTrace = { start: performance.now(), path: `POST …/${new URL(String(input instanceof Request ? input.url : input)).pathname.split('/').slice(-2).join('/')}` }
  action?.tokenCalls.push(trace)
  try {
    const response = await fetch(input, { ...init, headers })
    trace.status = response.status
    if (await isNonceChallenge(response)) trace.nonce = true
    return response
  } catch (error) {
    trace.status = 0
    throw error
  } finally {
    trace.end = performance.now()
  }
}

// ---- setup --------------------------------------------------------------------------------------
async function setup() {
  delete document.body.dataset.ready
  for (const off of unsubscribe) off()
  unsubscribe = []
  auth?.dispose()
  location.hash = new URLSearchParams({ profile: profile.id, storage: storageName }).toString()
  $<HTMLSelectElement>('profile').value = profile.id
  $<HTMLSelectElement>('storage').value = storageName
  const config = (await (await fetch(`/mock/_config?profile=${profile.id}`)).json()) as MockConfig & { epoch: number }
  epoch = config.epoch
  const plan = configFor(profile, storageName, origin, config)
  const options = await build(plan.auth)
  sender = options.sender as DPoP | undefined
  tokenEndpoint = sender ? (plan.auth.grant as Call).args[0] as { url: string; clientId: string } : undefined
  auth = createTokenAuth({ ...options, fetch: tagged('token') })
  api = ky.create({ ...(await build(plan.ky)), hooks: auth.hooks, fetch: kyFetch })
  $('code').textContent = codeFor(profile, plan)
  unsubscribe = [
    auth.on('refresh', ({ rotated }) => log(`refreshed: new access token${rotated ? ' and a new refresh token (rotated)' : ''}`, 'refresh')),
    auth.on('sessionEnded', ({ error }) => {
      showBanner(`Session ended. ${explainError(error.code)}`)
      log(`session ended (${error.code}): stored tokens deleted`, 'error')
    }),
    auth.on('error', ({ error }) => log(`background problem (the requests were still served): ${isTokenError(error) ? explainError(error.code, error) : String(error)}`, 'error')),
    auth.on('tokens', ({ cause }) => {
      log(TOKEN_CAUSES[cause] ?? cause)
      if (cause === 'remote') void remoteChange()
      else void refreshLive()
    }),
  ]
  applyProfile()
  log(`profile ${profile.name}, storage ${profile.id === 'static' ? 'none (static token)' : STORAGE[storageName]!.label}`)
  await refreshLive()
  document.body.dataset.ready = `${profile.id}/${storageName}` // for scripts and tests driving the page
}

/** Another tab changed the stored tokens: if they are gone, it logged out (or its session ended). */
async function remoteChange() {
  await refreshLive()
  if (!stored && profile.refreshTokens) {
    showBanner('Signed out in another tab (a logout, or a session that ended there): the shared tokens were deleted, so this tab is signed out too. Sign in again to continue.', 'info')
    log('another tab logged out: this tab is signed out too', 'error')
  }
}

/** Descriptions, labels and the controls that do nothing for this profile (disabled, with the reason shown). */
function applyProfile() {
  $('profile-desc').textContent = profile.description
  $('storage-desc').textContent = STORAGE[storageName]!.description
  $('new-tab-hint').textContent = storageName === 'memory' ? 'With memory storage the new tab signs in on its own; pick IndexedDB to share one session.' : 'The new tab shares this session: one refresh serves both.'
  for (const id of ['signin', 'g-signin']) {
    const label = $(id).querySelector('.label') ?? $(id)
    label.textContent = profile.signIn.label
  }
  const reasons = profile.disabled
  const buttons: ControlId[] = ['signin', 'expire', 'revoke', 'forbid', 'logout', 'rotate-nonce']
  for (const id of buttons) {
    const reason = reasons[id]
    const button = $(id)
    if (reason) button.setAttribute('aria-disabled', 'true')
    else button.removeAttribute('aria-disabled')
    $(`${id}-reason`).textContent = reason ? `Not for this profile: ${reason}` : ''
  }
  for (const id of ['mode', 'ttl', 'storage'] as const) {
    const reason = reasons[id]
    $<HTMLInputElement>(id).disabled = Boolean(reason)
    $(`${id}-reason`).textContent = reason ? `Not for this profile: ${reason}` : ''
  }
  $('readme-recipe').setAttribute('href', profile.readme)
  $('readme-recipe').textContent = profile.sender ? 'DPoP (sender-constrained tokens)' : 'Recipes for the four APIs'
  // DPoP only: the nonce counter, the nonce row of the live panel and the timeline's nonce swatch.
  const dpop = Boolean(profile.sender)
  $('c-nonce-box').hidden = !dpop
  $('counters').classList.toggle('has-nonce', dpop)
  for (const id of ['nonce-dt', 'nonce-dd']) $(id).hidden = !dpop
  for (const item of $('legend').querySelectorAll<HTMLElement>('[data-legend="nonce"]')) item.hidden = !dpop
  renderGuide()
}

// ---- guided tour --------------------------------------------------------------------------------
const STEPS = { signin: 1, expire: 2, fire: 3, read: 4 } as const
const done = new Set<keyof typeof STEPS>()
const count = () => Math.max(1, Math.min(500, Number($<HTMLInputElement>('count').value) || 50))

function expectedBurst(n: number) {
  if (profile.id === 'static') return `${plural(n, 'request')} → 0 × 401 → 0 token calls → 0 replayed, all OK`
  return `${plural(n, 'request')} → ${n} × 401 → 1 token call → ${n} replayed, all OK`
}

function renderGuide() {
  const n = count()
  const disabled: Partial<Record<keyof typeof STEPS, string | undefined>> = { signin: profile.disabled.signin, expire: profile.disabled.expire }
  $('g-fire').querySelector('.label')!.textContent = `Fire ${plural(n, 'concurrent request')}`
  $('g-signin-expect').textContent = disabled.signin ? `Skip: ${disabled.signin}` : `Expected: ${profile.signIn.expect}`
  $('g-expire-expect').textContent = disabled.expire ? `Skip: ${disabled.expire}` : 'Expected: The server now rejects the current access token. The page still holds it, so nothing happens yet.'
  $('g-fire-expect').textContent = `Expected: ${expectedBurst(n)}.`
  $('g-read-expect').textContent =
    profile.sender ? `Expected: Request #1 went out with the old token and its proof → 401 → ${profile.tokenPath} (refresh token generation 1 → 2, with a proof of its own) → replayed with the new token and a fresh proof → 200.`
    : profile.id === 'static' ? 'Expected: Request #1 went out once with the static token and got 200; no token call.'
    : profile.refreshTokens ? `Expected: Request #1 went out with the old token → 401 → ${profile.tokenPath} (refresh token generation 1 → 2) → replayed with the new token → 200.`
    : `Expected: Request #1 went out with the old token → 401 → ${profile.tokenPath} (client credentials again) → replayed with the new token → 200.`
  let next: keyof typeof STEPS | undefined
  for (const step of Object.keys(STEPS) as (keyof typeof STEPS)[]) {
    const item = $(`step-${STEPS[step]}`)
    const skip = Boolean(disabled[step])
    const button = $(`g-${step}`)
    if (skip) button.setAttribute('aria-disabled', 'true')
    else button.removeAttribute('aria-disabled')
    button.setAttribute('aria-describedby', `g-${step}-expect g-${step}-outcome`)
    const state = done.has(step) ? 'done' : skip ? 'skipped' : !next ? 'next' : ''
    if (state === 'next') next = step
    item.dataset.state = state
    if (!done.has(step)) $(`g-${step}-outcome`).textContent = ''
  }
  const nextButton = $('next-step-btn')
  $('next-step').hidden = !next || completed === 0
  if (next) {
    nextButton.textContent = `Next step ${STEPS[next]}: ${$(`g-${next}`).querySelector('.label')!.textContent}`
    nextButton.dataset.step = next
  }
}

function completeStep(step: keyof typeof STEPS, text: string) {
  done.add(step)
  $(`g-${step}-outcome`).textContent = `Done: ${text}`
  renderGuide()
}

// ---- actions ------------------------------------------------------------------------------------
let queue: Promise<unknown> = Promise.resolve()

/** Run one action (after the previous one finished): tag it, time it, then show what it did. */
function act(kind: string, label: string, body: (action: Action) => Promise<Outcome>): Promise<void> {
  const run = queue.then(async () => {
    const action: Action = { no: ++actionNo, key: `${tab}.${actionNo}`, kind, label, start: performance.now(), requests: [], tokenCalls: [] }
    current = action
    document.body.dataset.busy = kind
    const frame = setInterval(() => {
      if (!reducedMotion.matches && (action.requests.length || action.tokenCalls.length)) renderTimeline($('timeline') as unknown as SVGSVGElement, action, performance.now())
    }, 100)
    let outcome: Outcome
    try {
      outcome = await body(action)
    } catch (error) {
      const code = codeOf(error)
      outcome = { line: `${label}: failed (${code}).`, explain: [explainError(code, isTokenError(error) ? error : {})], tone: 'bad' }
    } finally {
      clearInterval(frame)
      action.end = performance.now()
      current = undefined
    }
    try {
      if (action.requests.length || action.tokenCalls.length) {
        action.calls ??= await callsOf(action)
        showAction(action)
      }
      $('summary-line').textContent = outcome.line
      $('summary-line').className = outcome.tone ?? ''
      $('summary-explain').replaceChildren(...(outcome.explain ?? []).filter(Boolean).map((text) => Object.assign(document.createElement('span'), { textContent: text, className: 'explain-line' })))
      $('result-of').textContent = `· ${label}`
      if (outcome.step) completeStep(outcome.step, outcome.stepText ?? outcome.line)
      await refreshLive()
    } catch (error) {
      console.error('playground: could not show the result', error)
    } finally {
      completed++
      renderGuide()
      delete document.body.dataset.busy
      document.body.dataset.actions = String(completed)
    }
    reveal()
  })
  queue = run.catch(() => {})
  return run
}

async function callsOf(action: Action): Promise<CallRecord[]> {
  const response = await fetch(`/mock/_calls?action=${encodeURIComponent(action.key)}`)
  return ((await response.json()) as { calls: CallRecord[] }).calls
}

/** Put an action with traffic on the counters, the chart and the inspector. */
function showAction(action: Action) {
  shown = action
  const calls = action.calls ?? []
  const apiCalls = calls.filter((call) => call.kind === 'api')
  const counts = {
    api: apiCalls.length,
    unauthorized: apiCalls.filter((call) => call.response.status === 401 && !call.challenge).length,
    token: calls.filter((call) => call.kind === 'token').length,
    reuse: calls.filter((call) => call.reuse).length,
    nonce: calls.filter((call) => call.challenge).length,
  }
  $('c-api').textContent = String(counts.api)
  $('c-nonce').textContent = String(counts.nonce)
  $('c-401').textContent = String(counts.unauthorized)
  $('c-token').textContent = String(counts.token)
  $('c-reuse').textContent = String(counts.reuse)
  $('counters-h').textContent = `Counted by the mock server for: ${action.label}`
  totals = { actions: totals.actions + 1, api: totals.api + counts.api, unauthorized: totals.unauthorized + counts.unauthorized, token: totals.token + counts.token, reuse: totals.reuse + counts.reuse, nonce: totals.nonce + counts.nonce }
  $('totals').textContent = `Since Reset: ${plural(totals.actions, 'action')} with traffic · ${plural(totals.api, 'API call')} · ${totals.unauthorized} × 401 · ${plural(totals.token, 'token call')} · ${plural(totals.reuse, 'reuse detection')}${profile.sender ? ` · ${totals.nonce} × nonce challenge` : ''}.`
  drawChart()
  fillInspector()
}

function clearCounters() {
  totals = { actions: 0, api: 0, unauthorized: 0, token: 0, reuse: 0, nonce: 0 }
  for (const id of ['c-api', 'c-401', 'c-token', 'c-reuse', 'c-nonce']) $(id).textContent = '0'
  $('counters-h').textContent = 'Counted by the mock server, per action: nothing counted yet'
  $('totals').textContent = ''
}

function drawChart() {
  const svg = $('timeline') as unknown as SVGSVGElement
  renderTimeline(svg, shown, performance.now())
  const requests = shown?.requests.length ?? 0
  $('timeline-desc').textContent = !shown
    ? 'Empty: nothing fired yet (since the page opened, the last Reset or a profile change).'
    : `${shown.label}: ${plural(requests, 'request')}, ${plural(shown.tokenCalls.length, 'token-endpoint call')}${requests > MAX_LANES ? `; the first ${MAX_LANES} requests are drawn (the counters include all ${requests})` : ''}. Time runs left to right from the click.`
}

function fillInspector() {
  const select = $<HTMLSelectElement>('inspect-request')
  const entries = entriesOf(shown?.calls ?? [])
  select.replaceChildren(...entries.map((entry) => Object.assign(document.createElement('option'), { value: entry.id, textContent: entry.label })))
  select.disabled = entries.length === 0
  if (!entries.length) {
    select.append(Object.assign(document.createElement('option'), { textContent: 'Fire some requests first' }))
    $('sequence').replaceChildren()
    return
  }
  select.value = entries[0]!.id
  renderInspector()
}

function renderInspector() {
  if (!shown?.calls) return
  renderSequence($('sequence'), shown.calls, $<HTMLSelectElement>('inspect-request').value, profile, shown.requests.length)
}

async function fire(n: number) {
  const label = `Fire ${plural(n, 'request')}`
  return act('fire', label, async (action) => {
    const results = await Promise.allSettled(
      Array.from({ length: n }, async (_, index) => {
        const trace: RequestTrace = { i: index + 1, start: performance.now(), attempts: [] }
        action.requests.push(trace)
        try {
          await api.get(profile.resource, { headers: { [TAG_HEADER]: `${action.key}.${trace.i}` } }).json()
          trace.outcome = 'ok'
        } catch (error) {
          trace.outcome = 'failed'
          trace.code = codeOf(error)
          throw error
        } finally {
          trace.end = performance.now()
        }
      }),
    )
    const calls = (action.calls = await callsOf(action))
    const apiCalls = calls.filter((call) => call.kind === 'api')
    const failures = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected').map((result) => result.reason as unknown)
    const byCode = new Map<string, { count: number; error: unknown }>()
    for (const error of failures) {
      const code = codeOf(error)
      byCode.set(code, { count: (byCode.get(code)?.count ?? 0) + 1, error })
    }
    // Per request: was a later attempt a replay after a 401 (a refresh), or a retry after a nonce challenge?
    const perRequest = new Map<string, CallRecord[]>()
    for (const call of apiCalls) perRequest.set(call.tag, [...(perRequest.get(call.tag) ?? []), call])
    const after = (attempts: CallRecord[], challenge: boolean) => attempts.some((attempt, index) => index > 0 && Boolean(attempts[index - 1]!.challenge) === challenge)
    const tokenCalls = calls.filter((call) => call.kind === 'token')
    const nonceChallenges = apiCalls.filter((call) => call.challenge).length
    const facts: BurstFacts = {
      requests: n,
      apiCalls: apiCalls.length,
      unauthorized: apiCalls.filter((call) => call.response.status === 401 && !call.challenge).length,
      forbidden: apiCalls.filter((call) => call.response.status === 403).length,
      tokenCalls: tokenCalls.length,
      tokenStatuses: tokenCalls.map((call) => call.response.status),
      replayed: [...perRequest.values()].filter((attempts) => after(attempts, false)).length,
      ok: n - failures.length,
      failed: failures.length,
      codes: [...byCode].sort((a, b) => b[1].count - a[1].count).map(([code]) => code),
      reuse: calls.filter((call) => call.reuse).length,
      ...((nonceChallenges > 0 || tokenCalls.some((call) => call.challenge)) && {
        nonceChallenges,
        nonceRetried: [...perRequest.values()].filter((attempts) => after(attempts, true)).length,
        tokenChallenges: tokenCalls.filter((call) => call.challenge).length,
      }),
    }
    const explain = [explainBurst(facts, REFRESH_BEFORE_S)]
    for (const [code, { error }] of byCode) {
      const status = isTokenError(error) ? error.status : (error as { response?: Response }).response?.status
      explain.push(explainError(code, { ...(status !== undefined && { status }), ...(isTokenError(error) && error.scope !== undefined && { scope: error.scope }) }))
    }
    const line = summarize(facts)
    log(`${label}: ${line}`, facts.failed ? 'error' : 'info')
    if (byCode.has('ERR_INSUFFICIENT_SCOPE')) showBanner(`403 Forbidden. ${explainError('ERR_INSUFFICIENT_SCOPE', isTokenError(byCode.get('ERR_INSUFFICIENT_SCOPE')!.error) ? (byCode.get('ERR_INSUFFICIENT_SCOPE')!.error as { scope?: string }) : {})}`, 'warn')
    else if (facts.failed === 0) showBanner()
    document.body.dataset.lastSummary = line
    return { line, explain, step: 'fire', stepText: line, tone: facts.failed ? 'bad' : 'ok' }
  })
}

/** Sign in: stemp through a stand-in for its OAuth callback, the others through their grant. */
const signIn = () =>
  act('signin', profile.signIn.label, async (action) => {
    showBanner()
    if (profile.id === 'stemp') {
      const trace: TokenTrace = { start: performance.now(), path: 'POST /mock/_signin' }
      action.tokenCalls.push(trace)
      const response = await fetch('/mock/_signin', { method: 'POST', headers: { [TAG_HEADER]: `${action.key}.signin` } })
      Object.assign(trace, { status: response.status, end: performance.now() })
      await auth!.setTokens(await response.json())
    } else if (sender) {
      // The code exchange, through the sender (a proof, the server's nonce): the tokens come back bound to this browser's key.
      const { url, clientId } = tokenEndpoint!
      const exchange = sender.tokenFetch(tagged('signin')) // = sender.fetch, plus the page's tag
      const body = new URLSearchParams({ grant_type: 'authorization_code', code: 'playground', client_id: clientId })
      const response = await exchange(url, { method: 'POST', body })
      if (!response.ok) throw new Error(`The code exchange failed: ${response.status} ${await response.text()}`)
      await auth!.setTokens(await response.json())
    } else {
      await auth!.getAccessToken({ forceRefresh: true })
    }
    await refreshLive()
    const access = server?.access?.n ? `access token #${server.access.n}` : 'an access token'
    const refresh = profile.refreshTokens && server?.refresh?.generation ? ` and refresh token generation ${server.refresh.generation}` : ', no refresh token (the library asks for a new token when this one expires)'
    const line = `Signed in: the app stored ${access} (valid ${server?.ttl ?? '?'} s)${refresh}.`
    return { line, step: 'signin', stepText: line, tone: 'ok' }
  })

const expire = () =>
  act('expire', 'Expire access token now', async () => {
    await control('expire')
    await refreshLive()
    const line = stored
      ? `The server expired access token${server?.access?.n ? ` #${server.access.n}` : ''}. The library still holds it and does not know yet: the next request gets a 401.`
      : 'The server expired every access token it issued. This tab holds none yet: sign in first.'
    return { line, step: 'expire', stepText: line }
  })

const revoke = () =>
  act('revoke', 'Revoke session', async () => {
    await control('revoke')
    await refreshLive()
    const line = profile.refreshTokens
      ? 'The server revoked the session: the access and refresh tokens are dead. The next request gets a 401, its refresh is rejected, and the session ends (ERR_SESSION_ENDED).'
      : 'The server revoked every access token. The next request gets a 401 and the library asks for a new token with the client credentials.'
    return { line }
  })

const rotateNonce = () =>
  act('rotate-nonce', 'Rotate the API’s DPoP nonce', async () => {
    const answer = (await control('rotate-nonce')) as { nonce?: number }
    await refreshLive()
    const line = `The server now wants DPoP nonce #${answer.nonce}. The library still signs with #${(answer.nonce ?? 2) - 1}: each request of the next burst gets one nonce challenge (401 use_dpop_nonce + DPoP-Nonce) and is retried once with a fresh proof; no token refresh.`
    log(`server: DPoP nonce rotated (now #${answer.nonce})`)
    return { line }
  })

const forbid = () =>
  act('forbid', 'Next call answers 403', async () => {
    await control('forbid')
    return { line: 'The next API call answers 403 Forbidden (a missing scope). The library will not refresh for it: ERR_INSUFFICIENT_SCOPE.' }
  })

const MODES: Record<string, string> = { normal: 'normally again', '5xx': '503 Service Unavailable', html: '200 with an HTML page instead of tokens', slow: 'after 3 s' }
const setMode = (value: string) =>
  act('mode', 'Token endpoint mode', async () => {
    await control('mode', value)
    log(`server: the token endpoint now answers ${MODES[value]}`)
    return { line: value === 'normal' ? 'The token endpoint answers normally again.' : `The token endpoint now answers ${MODES[value]}. Expire the token and fire to see what the library does.` }
  })

const setTtl = (value: number) =>
  act('ttl', 'Access-token lifetime', async () => {
    await auth?.logout().catch(() => {})
    const answer = await control('ttl', value)
    await setup()
    showBanner(`The mock API restarted with ${answer.ttl} s access tokens, so every session ended. Sign in again.`, 'info')
    return { line: `Access tokens now live ${answer.ttl} s. The mock API restarted, so the session ended: sign in again.` }
  })

const logout = () =>
  act('logout', 'Log out', async () => {
    await auth!.logout()
    return { line: 'Logged out: the stored tokens were deleted. Requests now fail with ERR_TOKEN_MISSING until you sign in again.' }
  })

const reset = () =>
  act('reset', 'Reset', async () => {
    await control('reset-counts')
    shown = undefined
    clearCounters()
    drawChart()
    fillInspector()
    done.clear()
    $('log').replaceChildren()
    return { line: 'Counters, chart and tour reset. The session is unchanged.' }
  })

function readStep() {
  const select = $<HTMLSelectElement>('inspect-request')
  if (!shown?.calls || select.disabled) {
    const line = 'Nothing to inspect yet: fire some requests first (step 3).'
    $('summary-line').textContent = line
    return
  }
  if ([...select.options].some((option) => option.value === '1')) select.value = '1'
  renderInspector()
  const text = describeSequence(sequenceOf(shown.calls, select.value), select.value)
  completeStep('read', text)
  $('inspector').scrollIntoView({ behavior: reducedMotion.matches ? 'auto' : 'smooth', block: 'start' })
  $('inspector').focus({ preventScroll: true })
}

// ---- live panel: the library's copy and the server's view ----------------------------------------
async function refreshLive() {
  if (!auth) return
  stored = profile.id === 'static' ? undefined : await auth.storage.get(`playground:${profile.id}`).catch(() => undefined)
  const query = new URLSearchParams({ profile: profile.id })
  if (stored) query.set('access', stored.accessToken.slice(-6))
  if (stored?.refreshToken) query.set('refresh', stored.refreshToken.slice(-6))
  server = (await (await fetch(`/mock/_state?${query}`)).json()) as ServerView
  if (server.epoch > epoch && !current && !restarting) {
    restarting = true
    // The mock restarted (a new lifetime, perhaps set in another tab): every session is gone.
    void act('restart', 'Mock API restarted', async () => {
      await auth?.logout().catch(() => {})
      await setup()
      showBanner(`The mock API restarted with ${server?.ttl} s access tokens (the lifetime was changed, perhaps in another tab): every session ended. Sign in again.`, 'info')
      restarting = false
      return { line: 'The mock API restarted: the session ended. Sign in again.' }
    })
  }
  if (document.activeElement !== $('ttl')) $<HTMLInputElement>('ttl').value = String(server.ttl)
  $<HTMLSelectElement>('mode').value = server.mode
  renderLive()
}

function renderLive() {
  const token = $('token')
  const expiry = $('expiry')
  const view = $('server-view')
  const generation = $('generation')
  $('nonce-dd').textContent = server?.nonce ? `#${server.nonce}: proofs must carry it (the library learns it from the server’s DPoP-Nonce header)` : '—'
  if (profile.id === 'static') {
    token.textContent = 'sk_live_…: static, in the code'
    expiry.textContent = 'never'
    view.textContent = 'accepts it on every call'
    generation.textContent = 'none (nothing to refresh)'
    return
  }
  if (!stored) {
    token.textContent = 'none: sign in'
    expiry.textContent = '—'
    view.textContent = '—'
    generation.textContent = profile.refreshTokens ? 'none' : 'none (client credentials: no refresh token)'
    return
  }
  const access = server?.access
  token.textContent = `${mask(stored.accessToken)}${access?.n ? ` · access token #${access.n}` : ''}`
  const left = stored.expiresAt !== undefined ? (stored.expiresAt - Date.now()) / 1000 : undefined
  const status = access?.status
  expiry.textContent =
    status === 'expired-early' ? 'expired: the server expired it early; the next request gets a 401 and triggers one refresh'
    : status === 'revoked' ? 'revoked by the server: the next request gets a 401'
    : status === 'unknown' ? 'unknown to the server (the mock restarted): sign in again'
    : left === undefined ? 'unknown (renewed on a 401)'
    : left <= 0 ? 'expired: the next request refreshes first'
    : `in ${left.toFixed(1)} s${left <= REFRESH_BEFORE_S ? ' (inside the 5 s early-refresh window: the next request renews it first)' : ` (renewed ${REFRESH_BEFORE_S} s early)`}`
  view.textContent =
    !access ? '…'
    : status === 'valid' ? `valid for ${Math.max(0, Math.round(access.expiresIn ?? 0))} s more`
    : status === 'expired-early' ? 'expired (by “Expire access token now”)'
    : status === 'expired' ? 'expired'
    : status === 'revoked' ? 'revoked'
    : 'never issued by this run of the mock'
  const refresh = server?.refresh
  generation.textContent = !profile.refreshTokens
    ? 'none (client credentials: the library asks for a new token instead)'
    : stored.refreshToken
      ? `${mask(stored.refreshToken)}${refresh?.generation ? ` · generation ${refresh.generation}` : ''}${refresh?.status && refresh.status !== 'unused' ? ` · ${refresh.status}` : ''}`
      : 'none'
}

// ---- wiring -------------------------------------------------------------------------------------
const guarded = (id: string, handler: () => unknown) => {
  $(id).addEventListener('click', () => {
    if ($(id).getAttribute('aria-disabled') === 'true') return
    void handler()
  })
}

$<HTMLSelectElement>('profile').onchange = (event) => {
  const next = PROFILES[(event.target as HTMLSelectElement).value as ProfileId]
  void act('profile', `Profile ${next.name}`, async () => {
    profile = next
    showBanner()
    shown = undefined
    done.clear()
    drawChart()
    fillInspector()
    clearCounters()
    await setup()
    return { line: `Profile: ${profile.name}. ${profile.description}` }
  })
}
$<HTMLSelectElement>('storage').onchange = (event) => {
  const next = (event.target as HTMLSelectElement).value
  void act('storage', 'Storage', async () => {
    storageName = next
    await setup()
    return { line: `Storage: ${STORAGE[storageName]!.label}. ${STORAGE[storageName]!.description}` }
  })
}
$('ttl').onchange = (event) => void setTtl(Number((event.target as HTMLInputElement).value))
$<HTMLSelectElement>('mode').onchange = (event) => void setMode((event.target as HTMLSelectElement).value)
$('count').oninput = () => renderGuide()
$<HTMLSelectElement>('inspect-request').onchange = () => renderInspector()

guarded('signin', signIn)
guarded('g-signin', signIn)
guarded('expire', expire)
guarded('g-expire', expire)
guarded('fire', () => fire(count()))
guarded('g-fire', () => fire(count()))
guarded('fire-one', () => fire(1))
guarded('g-read', readStep)
guarded('revoke', revoke)
guarded('forbid', forbid)
guarded('rotate-nonce', rotateNonce)
guarded('logout', logout)
guarded('reset', reset)
$('next-step-btn').onclick = () => $(`g-${$('next-step-btn').dataset.step}`).click()
$('new-tab').onclick = () => window.open(location.href, '_blank')
$('copy').onclick = async () => {
  const text = $('code').textContent ?? ''
  let copied = false
  try {
    await navigator.clipboard.writeText(text)
    copied = true
  } catch {
    const range = document.createRange()
    range.selectNodeContents($('code'))
    getSelection()?.removeAllRanges()
    getSelection()?.addRange(range)
    copied = document.execCommand('copy')
  }
  $('copy-status').textContent = copied ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C (⌘C) to copy.'
  setTimeout(() => ($('copy-status').textContent = ''), 4000)
}

// Legend and chart patterns.
$('pattern-defs').innerHTML = PATTERN_DEFS
$('legend').replaceChildren(
  ...LEGEND.map(([markup, text]) => {
    const item = document.createElement('li')
    if (/nonce/.test(text)) item.dataset.legend = 'nonce'
    item.append(svgElement(markup), text)
    return item
  }),
)
new ResizeObserver(() => drawChart()).observe($('result'))

document.body.dataset.actions = '0'
drawChart()
await setup()
setInterval(renderLive, 250)
setInterval(() => void refreshLive().catch(() => {}), 1000)
