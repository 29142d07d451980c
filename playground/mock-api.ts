/**
 * The playground's mock API: every profile of the page served from this Vite dev server under
 * /mock/<profile>/…, with controls under /mock/_control and counters under /mock/_state.
 * Lifetimes are short (20 s by default) so expiry happens while you watch.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Plugin } from 'vite'
import { createApi, type ApiKind, type Fault, type MockApi } from '../test/fixtures/apis.ts'

const KINDS: ApiKind[] = ['stemp', 'stenn', 'dokstamp', 'starship']
const TOKEN_PATHS = ['/api/v1/apps/oauth2/refresh', '/auth/v1/token', '/oauth/token', '/auth/login', '/auth/refresh']
type TokenMode = 'normal' | '5xx' | 'html' | 'slow'

export function mockApiPlugin(): Plugin {
  let ttl = 20
  let apis = new Map<ApiKind, MockApi>()
  const modes = new Map<ApiKind, TokenMode>()
  const reset = () => {
    apis = new Map(KINDS.map((kind) => [kind, createApi(kind, { accessTtl: ttl })]))
  }
  reset()
  const kindOf = (profile: string): ApiKind | undefined => (profile === 'static' ? 'stemp' : (KINDS as string[]).includes(profile) ? (profile as ApiKind) : undefined)
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

  return {
    name: 'ky-token-refresh-mock-api',
    configureServer(server) {
      server.middlewares.use('/mock', async (req, res) => {
        const url = new URL(req.url ?? '/', 'http://localhost')
        const [, first = '', ...rest] = url.pathname.split('/')
        if (first === '_state') {
          const kind = kindOf(url.searchParams.get('profile') ?? 'stemp') ?? 'stemp'
          const api = apis.get(kind)!
          return json(res, 200, { counts: api.counts, generation: api.generation(), ttl, mode: modes.get(kind) ?? 'normal' })
        }
        if (first === '_config') {
          // Demo only: server-side credentials handed to the page so every profile runs in the browser.
          const kind = kindOf(url.searchParams.get('profile') ?? 'stemp') ?? 'stemp'
          const api = apis.get(kind)!
          return json(res, 200, { credentials: api.credentials, apiToken: [...api.apiTokens][0] })
        }
        if (first === '_signin' && req.method === 'POST') {
          return json(res, 200, apis.get('stemp')!.signIn())
        }
        if (first === '_control' && req.method === 'POST') {
          const body = await readJSON(req)
          const kind = kindOf(String(body.profile)) ?? 'stemp'
          const api = apis.get(kind)!
          switch (body.action) {
            case 'expire': api.expireAccessTokens(); break
            case 'revoke': api.revokeAll(); break
            case 'forbid': api.forbidNext(1); break
            case 'mode': modes.set(kind, body.value as TokenMode); break
            case 'reset-counts': api.resetCounts(); break
            case 'ttl':
              ttl = Math.max(5, Math.min(3600, Number(body.value) || 20))
              reset()
              break
            default: return json(res, 400, { error: 'unknown action' })
          }
          return json(res, 200, { ok: true })
        }
        const kind = kindOf(first)
        if (!kind) return json(res, 404, { error: 'not_found' })
        const path = `/${rest.join('/')}`
        const api = apis.get(kind)!
        const fault = req.method === 'POST' && TOKEN_PATHS.includes(path) ? faultFor(modes.get(kind) ?? 'normal') : undefined
        if (fault) api.fault('token', fault)
        await api.handle(req, res, path)
      })
    },
  }
}
