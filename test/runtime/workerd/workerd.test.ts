// Real workerd (Miniflare): three Worker scripts (three isolates) sharing one KV namespace and one
// TokenCoordinator Durable Object, hammering the stemp fixture (strict rotation, reuse detection).
import { build } from 'esbuild'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cloudflareKVStorage } from '../../../src/storage/cloudflare-kv.ts'
import { durableObjectStorage } from '../../../src/storage/durable-object.ts'
import { startFixture, type Fixture } from '../../fixtures/apis.ts'
import { testTokenStorage } from '../../storage/contract.ts'

let mf: Miniflare
let api: Fixture
const WORKERS = ['a', 'b', 'c']

beforeAll(async () => {
  api = await startFixture('stemp')
  const bundle = await build({ entryPoints: ['test/runtime/workerd/worker.ts'], bundle: true, format: 'esm', platform: 'browser', conditions: ['workerd', 'worker', 'browser'], write: false, logLevel: 'error' })
  const script = bundle.outputFiles[0]!.text
  mf = new Miniflare({
    // Outbound fetches (to the fixture on 127.0.0.1) go through Node.
    outboundService: (request: Request) => fetch(request),
    workers: WORKERS.map((name, index) => ({
      name,
      modules: true,
      script,
      compatibilityDate: '2025-06-01',
      bindings: { API_ORIGIN: api.origin },
      kvNamespaces: { TOKENS: 'tokens' },
      durableObjects: { COORD: index === 0 ? 'TokenCoordinator' : { className: 'TokenCoordinator', scriptName: 'a' } },
    })),
  })
  await mf.ready
}, 120_000)

afterAll(async () => {
  await mf?.dispose()
  await api?.close()
})

const worker = async (name: string): Promise<{ fetch(url: string, init?: unknown): Promise<Response> }> => (await mf.getWorker(name)) as any
async function call(name: string, path: string, init?: RequestInit) {
  const response = await (await worker(name)).fetch(`http://worker${path}`, init as never)
  return response.json() as Promise<any>
}

describe('storage contracts on real workerd bindings', () => {
  let n = 0
  testTokenStorage('durableObjectStorage() on workerd', async () => durableObjectStorage({ namespace: (await mf.getDurableObjectNamespace('COORD', 'a')) as never, prefix: `contract-do-${n++}:`, lockTtl: 1_000 }), { compareAndSet: true, withLock: true })
  testTokenStorage('cloudflareKVStorage() on workerd', async () => cloudflareKVStorage({ namespace: (await mf.getKVNamespace('TOKENS', 'a')) as never, prefix: `contract-${n++}:` }), { compareAndSet: false, withLock: false })
})

describe('three isolates, one Durable Object, one KV namespace', () => {
  it('hammering at expiry: exactly 1 refresh per generation, 0 reuse detections', async () => {
    await call('a', '/seed', { method: 'POST', body: JSON.stringify(api.signIn()) })
    for (let generation = 1; generation <= 2; generation++) {
      api.expireAccessTokens()
      // 3 isolates × 3 concurrent requests to each × 10 API calls per request
      const results = await Promise.all(WORKERS.flatMap((name) => [1, 2, 3].map(() => call(name, '/hammer?n=10'))))
      expect(results.map((result) => result.ok)).toEqual(Array(9).fill(10))
      expect(results[0].userAgent).toBe('Cloudflare-Workers')
      expect(api.counts).toMatchObject({ token: generation, reuse: 0, concurrentRefresh: 0 })
    }
  }, 60_000)

  it('a stale KV read does not cause a refresh with an old refresh token', async () => {
    const before = { ...api.counts }
    const kv: any = await mf.getKVNamespace('TOKENS', 'a')
    const current = JSON.parse((await kv.get('ky-token-refresh:default', 'text'))!)
    // A KV location that has not seen the last writes serves an older token set to cold isolates.
    const staleKV = (extra: object) => kv.put('ky-token-refresh:default', JSON.stringify({ ...current, refreshToken: 'srt_spent_long_ago', rev: 'stale', ...extra }))
    // (1) it looks expired: the cold isolate refreshes proactively, under the lease, re-reading the Durable Object
    await staleKV({ accessToken: 'stale-1', expiresAt: Date.now() - 1_000 })
    const proactive = await Promise.all(WORKERS.map((name) => call(name, '/hammer?n=5&cold')))
    // (2) it looks valid but the API rejects it: 401 → the lease → the Durable Object has newer tokens → adopt
    await staleKV({ accessToken: 'stale-2', expiresAt: Date.now() + 600_000 })
    const reactive = await Promise.all(WORKERS.map((name) => call(name, '/hammer?n=5&cold')))
    expect([...proactive, ...reactive].map((result) => result.ok)).toEqual(Array(6).fill(5))
    expect(api.counts.unauthorized - before.unauthorized).toBe(15) // the stale-2 attempts, each replayed once
    expect(api.counts.token).toBe(before.token) // nobody called the token endpoint, least of all with srt_spent_long_ago
    expect(api.counts.reuse).toBe(0)
  })

  it('KV alone is refused at setup for a rotating grant, with an explanation', async () => {
    const result = await call('b', '/kv-alone')
    expect(result.refused).toBe(true)
    expect(result.message).toContain('eventually consistent')
  })
})
