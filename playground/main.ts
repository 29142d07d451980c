// The playground page: the real library, imported from src/ exactly as a user imports the package.
import ky, { type KyInstance } from 'ky'
import {
  clientCredentialsGrant,
  createTokenAuth,
  isTokenError,
  jsonLoginGrant,
  memoryStorage,
  refreshTokenGrant,
  staticToken,
  type Grant,
  type TokenAuth,
  type TokenStorage,
} from '../src/index.ts'

type Profile = 'stemp' | 'stenn' | 'dokstamp' | 'starship' | 'static'
interface Span { start: number; end?: number; kind: 'request' | 'refresh'; outcome?: 'ok' | 'retried' | 'failed' }

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const origin = location.origin
const API_PATH: Record<Profile, string> = { stemp: '/mock/stemp/api/v1/', static: '/mock/static/api/v1/', stenn: '/mock/stenn/v1/', dokstamp: '/mock/dokstamp/api/', starship: '/mock/starship/api/v1/' }
const RESOURCE: Record<Profile, string> = { stemp: 'passes', static: 'passes', stenn: 'companies', dokstamp: 'documents', starship: 'products' }

const params = new URLSearchParams(location.hash.slice(1))
let profile = (params.get('profile') as Profile) ?? 'stemp'
let storageName = params.get('storage') ?? 'memory'
let auth: TokenAuth
let api: KyInstance
let spans: Span[] = []
let unsubscribe: (() => void)[] = []

const mask = (token: string) => (token.length > 12 ? `${token.slice(0, 6)}…${token.slice(-4)}` : '••••')

function log(text: string, kind: 'info' | 'error' | 'refresh' = 'info') {
  const item = document.createElement('li')
  item.className = kind
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`
  $('log').prepend(item)
  while ($('log').childElementCount > 200) $('log').lastElementChild!.remove()
}

async function control(action: string, value?: unknown) {
  await fetch('/mock/_control', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ profile, action, value }) })
  await refreshState()
}

async function makeStorage(): Promise<TokenStorage> {
  const adapters: Record<string, () => Promise<TokenStorage>> = {
    memory: async () => memoryStorage(),
    indexeddb: async () => (await import('../src/storage/indexeddb.ts')).indexedDBStorage({ dbName: 'ky-token-refresh-playground' }),
  }
  return (adapters[storageName] ?? adapters.memory!)()
}

async function makeGrant(): Promise<Grant> {
  const config = await (await fetch(`/mock/_config?profile=${profile}`)).json()
  const base = `${origin}/mock/${profile}`
  switch (profile) {
    case 'stemp': return refreshTokenGrant({ url: `${base}/api/v1/apps/oauth2/refresh`, body: 'json' })
    case 'static': return staticToken(config.apiToken)
    case 'starship': return jsonLoginGrant({ loginUrl: `${base}/auth/login`, refreshUrl: `${base}/auth/refresh`, credentials: config.credentials })
    default: return clientCredentialsGrant({ url: `${base}${profile === 'stenn' ? '/auth/v1/token' : '/oauth/token'}`, clientId: config.credentials.client_id, clientSecret: config.credentials.client_secret })
  }
}

async function setup() {
  delete document.body.dataset.ready
  for (const off of unsubscribe) off()
  location.hash = new URLSearchParams({ profile, storage: storageName }).toString()
  $<HTMLSelectElement>('profile').value = profile
  $<HTMLSelectElement>('storage').value = storageName
  const grant = await makeGrant()
  auth = createTokenAuth({
    grant,
    storage: await makeStorage(),
    key: `playground:${profile}`,
    origins: [origin],
    refreshBefore: 5_000,
    ...(profile === 'dokstamp' && { headers: { 'X-Tenant': 'acme' } }),
    // Wraps the transport only to draw token-endpoint calls on the timeline.
    fetch: async (input, init) => {
      const span: Span = { start: performance.now(), kind: 'refresh' }
      spans.push(span)
      try {
        return await fetch(input, init)
      } finally {
        span.end = performance.now()
      }
    },
  })
  unsubscribe = [
    auth.on('refresh', ({ rotated }) => log(`refreshed${rotated ? ' — refresh token rotated' : ''}`, 'refresh')),
    auth.on('sessionEnded', ({ error }) => {
      showBanner(`Session ended (${error.code}): sign in again.`)
      log(`session ended: ${error.message}`, 'error')
    }),
    auth.on('error', ({ error }) => log(`background error: ${isTokenError(error) ? error.code : String(error)}`, 'error')),
    auth.on('tokens', ({ cause }) => log(`tokens ${cause}`)),
  ]
  api = ky.create({ baseUrl: `${origin}${API_PATH[profile]}`, retry: 0, hooks: auth.hooks })
  log(`profile ${profile}, storage ${storageName}`)
  document.body.dataset.ready = `${profile}/${storageName}` // for scripts and tests driving the page
}

function showBanner(text?: string) {
  const banner = $('session-banner')
  banner.hidden = !text
  banner.textContent = text ?? ''
}

async function fire(count: number) {
  const started = performance.now()
  const results = await Promise.allSettled(
    Array.from({ length: count }, async () => {
      const span: Span = { start: performance.now(), kind: 'request' }
      spans.push(span)
      let retried = false
      try {
        await api.get(RESOURCE[profile], { hooks: { beforeRetry: [() => void (retried = true)] } }).json()
        span.outcome = retried ? 'retried' : 'ok'
      } catch (error) {
        span.outcome = 'failed'
        throw error
      } finally {
        span.end = performance.now()
      }
    }),
  )
  const failures = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected')
  const codes = [...new Set(failures.map(({ reason }) => (isTokenError(reason) ? reason.code : (reason as Error).name)))]
  log(`${count} request(s) in ${Math.round(performance.now() - started)} ms: ${count - failures.length} ok${failures.length ? `, ${failures.length} failed (${codes.join(', ')})` : ''}`, failures.length ? 'error' : 'info')
  if (failures.length) $('fire').dataset.lastError = codes.join(',')
  await refreshState()
}

async function refreshState() {
  const state = await (await fetch(`/mock/_state?profile=${profile}`)).json()
  $('c-api').textContent = String(state.counts.api)
  $('c-401').textContent = String(state.counts.unauthorized)
  $('c-refresh').textContent = String(state.counts.token)
  $('c-reuse').textContent = String(state.counts.reuse)
  $('generation').textContent = profile === 'stemp' || profile === 'starship' ? String(state.generation) : 'n/a (no refresh token)'
  $<HTMLInputElement>('ttl').value = String(state.ttl)
  $<HTMLSelectElement>('mode').value = state.mode
}

async function renderToken() {
  const stored = auth && (await auth.storage.get(`playground:${profile}`).catch(() => undefined))
  if (profile === 'static') {
    $('token').textContent = 'sk_live_•••• (static, never refreshed)'
    $('expiry').textContent = 'never'
    return
  }
  $('token').textContent = stored ? mask(stored.accessToken) : 'none — sign in'
  $('expiry').textContent = stored?.expiresAt ? `${Math.max(0, (stored.expiresAt - Date.now()) / 1000).toFixed(1)} s` : '—'
}

function renderTimeline() {
  const svg = $('timeline') as unknown as SVGSVGElement
  const now = performance.now()
  spans = spans.filter((span) => (span.end ?? now) > now - 15_000)
  // Zoom to what happened recently: between 2 s and 15 s of history across the chart.
  const earliest = Math.min(now - 2_000, ...spans.map((span) => span.start - 200))
  const windowMs = Math.min(15_000, now - earliest)
  const from = now - windowMs
  const x = (t: number) => ((t - from) / windowMs) * 600
  const requests = spans.filter((span) => span.kind === 'request')
  const lanes = 30
  const parts: string[] = []
  const step = windowMs > 8_000 ? 5_000 : windowMs > 3_000 ? 1_000 : 500
  for (let t = 0; t <= windowMs; t += step) parts.push(`<text x="${x(now - t) - 2}" y="176" font-size="9" fill="#98a2b3" text-anchor="end">-${t / 1000}s</text>`)
  for (const span of spans.filter((item) => item.kind === 'refresh')) {
    parts.push(`<rect x="${x(span.start)}" y="0" width="${Math.max(2, x(span.end ?? now) - x(span.start))}" height="165" fill="#7b4fd6" opacity="0.25"/><rect x="${x(span.start)}" y="0" width="2" height="165" fill="#7b4fd6"/>`)
  }
  requests.forEach((span, index) => {
    const color = span.outcome === 'failed' ? '#d6413a' : span.outcome === 'retried' ? '#d98a00' : span.outcome === 'ok' ? '#2e9d5b' : '#98a2b3'
    const y = 4 + (index % lanes) * 5.3
    parts.push(`<rect x="${x(span.start)}" y="${y}" width="${Math.max(2, x(span.end ?? now) - x(span.start))}" height="4" rx="1" fill="${color}"/>`)
  })
  svg.innerHTML = parts.join('')
}

$<HTMLSelectElement>('profile').onchange = async (event) => {
  profile = (event.target as HTMLSelectElement).value as Profile
  showBanner()
  await setup()
  await refreshState()
}
$<HTMLSelectElement>('storage').onchange = async (event) => {
  storageName = (event.target as HTMLSelectElement).value
  await setup()
}
$('ttl').onchange = async (event) => {
  await control('ttl', Number((event.target as HTMLInputElement).value))
  log('mock API restarted with the new lifetime: sign in again')
}
$('signin').onclick = async () => {
  showBanner()
  if (profile === 'stemp') {
    // Stands in for the OAuth authorization-code flow: the mock issues a session, the app stores it.
    const tokens = await (await fetch('/mock/_signin', { method: 'POST' })).json()
    await auth.setTokens(tokens)
  } else {
    await auth.getAccessToken({ forceRefresh: true }).catch((error) => log(`sign-in failed: ${error.code ?? error}`, 'error'))
  }
  log('signed in')
  await refreshState()
}
$('fire').onclick = () => fire(Math.max(1, Math.min(500, Number($<HTMLInputElement>('count').value) || 50)))
$('fire-one').onclick = () => fire(1)
$('expire').onclick = async () => {
  await control('expire')
  log('server: access tokens expired')
}
$('revoke').onclick = async () => {
  await control('revoke')
  log('server: session revoked')
}
$('forbid').onclick = async () => {
  await control('forbid')
  log('server: next API call answers 403')
}
$<HTMLSelectElement>('mode').onchange = async (event) => {
  await control('mode', (event.target as HTMLSelectElement).value)
  log(`server: token endpoint is now ${(event.target as HTMLSelectElement).value}`)
}
$('new-tab').onclick = () => window.open(location.href, '_blank')
$('logout').onclick = async () => {
  await auth.logout()
  showBanner('Logged out.')
  log('logged out')
}

await setup()
await refreshState()
setInterval(() => void renderToken(), 250)
setInterval(() => void refreshState(), 1000)
setInterval(renderTimeline, 100)
