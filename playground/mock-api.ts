/**
 * The playground's mock API: every profile of the page served from this Vite dev server under
 * /mock/<profile>/…, with controls under /mock/_control and the server's view under /mock/_state.
 * Lifetimes are short (20 s by default) so expiry happens while you watch.
 *
 * Every call the page makes is recorded (./recorder.ts): /mock/_calls?action=<tab.action> returns
 * what the server received and answered for one action, tokens masked. The page counts a burst
 * from that, never from cumulative counters.
 */
import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Plugin } from 'vite'
import { createApi, type ApiKind, type Fault, type MockApi } from '../test/fixtures/apis.ts'
import { createDPoPApi, type DPoPMock } from './dpop-mock.ts'
import { renderMarkdown } from './readme.ts'
import { CallLog, Ledger, TAG_HEADER, record, type CallRecord } from './recorder.ts'

const KINDS: ApiKind[] = ['stemp', 'stenn', 'dokstamp', 'starship']
/** The four APIs of the fixtures, plus the playground's own DPoP API (./dpop-mock.ts). */
type Kind = ApiKind | 'dpop'
/** What the page's controls need from an API, whichever mock serves it. */
type PlaygroundApi = Pick<MockApi, 'handle' | 'generation' | 'expireAccessTokens' | 'revokeAll' | 'forbidNext' | 'resetCounts' | 'credentials' | 'apiTokens'> & {
  counts: { reuse: number }
  fault(route: 'token' | 'api', fault: Fault): void
}
const TOKEN_PATHS = ['/api/v1/apps/oauth2/refresh', '/auth/v1/token', '/oauth/token', '/auth/login', '/auth/refresh']
type TokenMode = 'normal' | '5xx' | 'html' | 'slow'
const ROOT = new URL('../', import.meta.url)

const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(',') : (value ?? ''))

export function mockApiPlugin(): Plugin {
  let ttl = 20
  /** Bumped whenever the mock restarts (a new lifetime): every token issued before is unknown. */
  let epoch = 1
  let apis = new Map<Kind, PlaygroundApi>()
  let dpop: DPoPMock
  let stemp: MockApi
  let ledgers = new Map<Kind, Ledger>()
  const modes = new Map<Kind, TokenMode>()
  const calls = new CallLog()
  const reset = () => {
    dpop = createDPoPApi({ accessTtl: ttl })
    const fixtures = KINDS.map((kind): [Kind, MockApi] => [kind, createApi(kind, { accessTtl: ttl })])
    stemp = fixtures[0]![1]
    apis = new Map<Kind, PlaygroundApi>([...fixtures, ['dpop', dpop]])
    ledgers = new Map([...apis].map(([kind, api]) => [kind, new Ledger(api.apiTokens)]))
  }
  reset()
  const kindOf = (profile: string): Kind | undefined => (profile === 'static' ? 'stemp' : profile === 'dpop' || (KINDS as string[]).includes(profile) ? (profile as Kind) : undefined)
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    res.end(JSON.stringify(body))
  }
  const readJSON = (req: IncomingMessage) =>
    new Promise<Record<string, any>>((resolve) => {
      let text = ''
      req.on('data', (chunk) => (text += chunk))
      req.on('end', () => {
        try {
          resolve(JSON.parse(text || '{}'))
        } catch {
          resolve({})
        }
      })
    })

  const faultFor = (mode: TokenMode): Fault | undefined =>
    mode === '5xx' ? { kind: 'status', status: 503 }
    : mode === 'html' ? { kind: 'html' }
    : mode === 'slow' ? { kind: 'slow', ms: 3000 }
    : undefined

  const recordContext = (kind: Kind, callKind: CallRecord['kind']) => {
    const api = apis.get(kind)!
    return { kind: callKind, ledger: ledgers.get(kind)!, log: calls, generation: () => api.generation(), reuseCount: () => api.counts.reuse }
  }

  return {
    name: 'ky-token-refresh-mock-api',
    configureServer(server) {
      // The README, rendered, so the page's "README.md#…" links work without GitHub.
      server.middlewares.use(async (req, res, next) => {
        const path = new URL(req.url ?? '/', 'http://localhost').pathname
        const doc = path === '/README.md' ? 'README.md' : path === '/BENCHMARKS.md' ? 'BENCHMARKS.md' : undefined
        if (doc) {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
          return res.end(renderMarkdown(await readFile(new URL(doc, ROOT), 'utf8'), doc))
        }
        const image = path.match(/^\/docs\/([\w.-]+\.(png|svg))$/)
        if (image) {
          const body = await readFile(new URL(`docs/${image[1]}`, ROOT)).catch(() => undefined)
          if (!body) return next()
          res.writeHead(200, { 'content-type': image[2] === 'png' ? 'image/png' : 'image/svg+xml' })
          return res.end(body)
        }
        next()
      })

      server.middlewares.use('/mock', async (req, res) => {
        const url = new URL(req.url ?? '/', 'http://localhost')
        const [, first = '', ...rest] = url.pathname.split('/')
        if (first === '_state') {
          // The server's view of the page's tokens (identified by their masked tails).
          const kind = kindOf(url.searchParams.get('profile') ?? 'stemp') ?? 'stemp'
          const api = apis.get(kind)!
          const ledger = ledgers.get(kind)!
          const access = url.searchParams.get('access')
          const refresh = url.searchParams.get('refresh')
          return json(res, 200, {
            ttl,
            epoch,
            mode: modes.get(kind) ?? 'normal',
            generation: api.generation(),
            access: access ? (ledger.accessStatus(access) ?? { status: 'unknown' }) : null,
            refresh: refresh ? (ledger.refreshStatus(refresh) ?? { status: 'unknown' }) : null,
            ...(kind === 'dpop' && { nonce: dpop.nonce().number }),
          })
        }
        if (first === '_calls') {
          return json(res, 200, { calls: calls.get(url.searchParams.get('action') ?? '') })
        }
        if (first === '_config') {
          // Demo only: server-side credentials handed to the page so every profile runs in the browser.
          const kind = kindOf(url.searchParams.get('profile') ?? 'stemp') ?? 'stemp'
          const api = apis.get(kind)!
          return json(res, 200, { credentials: api.credentials, apiToken: [...api.apiTokens][0], epoch, ttl })
        }
        if (first === '_signin' && req.method === 'POST') {
          // Stands in for stemp's OAuth authorization-code flow: a new session, refresh token generation 1.
          record(req, res, '/mock/_signin', recordContext('stemp', 'signin'))
          return json(res, 200, stemp.signIn())
        }
        if (first === '_control' && req.method === 'POST') {
          const body = await readJSON(req)
          const kind = kindOf(String(body.profile)) ?? 'stemp'
          const api = apis.get(kind)!
          switch (body.action) {
            case 'expire':
              api.expireAccessTokens()
              ledgers.get(kind)!.expireAll()
              break
            case 'revoke':
              api.revokeAll()
              ledgers.get(kind)!.revokeAll()
              break
            case 'forbid': api.forbidNext(1); break
            case 'mode': modes.set(kind, body.value as TokenMode); break
            case 'reset-counts': api.resetCounts(); break
            case 'rotate-nonce':
              if (kind !== 'dpop') return json(res, 400, { error: 'only the DPoP API has nonces' })
              return json(res, 200, { ok: true, ttl, epoch, nonce: dpop.rotateNonce().number })
            case 'ttl':
              ttl = Math.max(5, Math.min(3600, Number(body.value) || 20))
              epoch++
              reset()
              break
            default: return json(res, 400, { error: 'unknown action' })
          }
          return json(res, 200, { ok: true, ttl, epoch })
        }
        const kind = kindOf(first)
        if (!kind) return json(res, 404, { error: 'not_found' })
        const path = `/${rest.join('/')}`
        const api = apis.get(kind)!
        const tokenCall = req.method === 'POST' && (kind === 'dpop' ? path === '/token' : TOKEN_PATHS.includes(path))
        const fault = tokenCall ? faultFor(modes.get(kind) ?? 'normal') : undefined
        if (fault) api.fault('token', fault)
        // DPoP's sign-in (the code exchange) goes to the same token endpoint as its refreshes: the page's tag tells them apart.
        const signin = tokenCall && headerValue(req.headers[TAG_HEADER]).endsWith('.signin')
        if (req.headers[TAG_HEADER]) record(req, res, `/mock${url.pathname}`, recordContext(kind, signin ? 'signin' : tokenCall ? 'token' : path === '/oauth2/revoke' ? 'revoke' : 'api'))
        await api.handle(req, res, path)
      })
    },
  }
}
