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

// Read the token set straight from the TokenCoordinator (the source of truth), bypassing the adapter.
async function coordinatorTokens(key: string, prefix = 'ky-token-refresh:') {
  const namespace: any = await mf.getDurableObjectNamespace('COORD', 'a')
  const response = await namespace.get(namespace.idFromName(prefix + key)).fetch('https://token-coordinator/', { method: 'POST', body: JSON.stringify({ op: 'get' }) })
  return ((await response.json()) as { result: { accessToken: string; refreshToken?: string; expiresAt: number } }).result
}
// Every refresh token the fixture issued before the current one: signed in with, or presented to it.
const signedIn: string[] = []
function issuedRefreshTokens(): string[] {
  return [...signedIn, ...api.tokenRequests.map((request) => String(JSON.parse(request.body).refresh_token))]
}
function signIn(overrides: Record<string, unknown> = {}) {
  const body = { ...api.signIn(), ...overrides }
  signedIn.push(String(body.refresh_token))
  return JSON.stringify(body)
}

describe('storage contracts on real workerd bindings', () => {
  let n = 0
  testTokenStorage('durableObjectStorage() on workerd', async () => durableObjectStorage({ namespace: (await mf.getDurableObjectNamespace('COORD', 'a')) as never, prefix: `contract-do-${n++}:`, lockTtl: 1_000 }), { compareAndSet: true, withLock: true })
  testTokenStorage('cloudflareKVStorage() on workerd', async () => cloudflareKVStorage({ namespace: (await mf.getKVNamespace('TOKENS', 'a')) as never, prefix: `contract-${n++}:` }), { compareAndSet: false, withLock: false })
})

describe('durableObjectStorage() with a KV cache, on real workerd bindings', () => {
  it('reads outside the lock may come from KV and never carry the refresh token; reads inside it come from the Durable Object', async () => {
    const storage = durableObjectStorage({ namespace: (await mf.getDurableObjectNamespace('COORD', 'a')) as never, cache: (await mf.getKVNamespace('TOKENS', 'a')) as never, prefix: 'cache-split:' })
    const kv: any = await mf.getKVNamespace('TOKENS', 'a')
    const now = Date.now()
    await storage.set('k', { accessToken: 'at-1', refreshToken: 'rt-1', receivedAt: now, expiresAt: now + 3_600_000, scope: 's', rev: 'r1' })
    expect(await kv.get('cache-split:k', 'text')).not.toContain('rt-1')
    expect(await storage.get('k')).toEqual({ accessToken: 'at-1', receivedAt: now, expiresAt: now + 3_600_000, scope: 's', rev: 'r1' })
    expect(await storage.withLock!('k', () => storage.get('k'))).toMatchObject({ accessToken: 'at-1', refreshToken: 'rt-1', rev: 'r1' })
    // compare-and-set mirrors the same way; delete removes both copies
    expect(await storage.compareAndSet!('k', 'r1', { accessToken: 'at-2', refreshToken: 'rt-2', receivedAt: now, expiresAt: now + 3_600_000, rev: 'r2' })).toBe(true)
    expect(await kv.get('cache-split:k', 'text')).not.toContain('rt-2')
    expect((await storage.get('k'))?.accessToken).toBe('at-2')
    await storage.delete('k')
    expect(await kv.get('cache-split:k', 'text')).toBeNull()
    expect(await storage.get('k')).toBeUndefined()
  })
})

describe('three isolates, one Durable Object, one KV namespace', () => {
  it('hammering at expiry: exactly 1 refresh per generation, 0 reuse detections', async () => {
    await call('a', '/seed', { method: 'POST', body: signIn() })
    for (let generation = 1; generation <= 2; generation++) {
      api.expireAccessTokens()
      // 3 isolates × 3 concurrent requests to each × 10 API calls per request
      const results = await Promise.all(WORKERS.flatMap((name) => [1, 2, 3].map(() => call(name, '/hammer?n=10'))))
      expect(results.map((result) => result.ok)).toEqual(Array(9).fill(10))
      expect(results[0].userAgent).toBe('Cloudflare-Workers')
      expect(api.counts).toMatchObject({ token: generation, reuse: 0, concurrentRefresh: 0 })
    }
  }, 60_000)

  it('at expiry, the Durable Object holds the waiters: at most about one round trip per request, not a lease queue', async () => {
    api.expireAccessTokens()
    const before = api.counts.token
    const callsBefore = await Promise.all(WORKERS.map((name) => call(name, '/stats')))
    // 3 isolates × 4 concurrent invocations × 25 API calls each, all with the expired token (401s)
    const results = await Promise.all(WORKERS.flatMap((name) => [1, 2, 3, 4].map(() => call(name, '/hammer?n=25'))))
    expect(results.map((result) => result.ok)).toEqual(Array(12).fill(25))
    expect(api.counts.token).toBe(before + 1)
    expect(api.counts).toMatchObject({ reuse: 0, concurrentRefresh: 0 })
    const callsAfter = await Promise.all(WORKERS.map((name) => call(name, '/stats')))
    const calls = callsAfter.reduce((sum, after, i) => sum + after.coordinatorCalls - callsBefore[i].coordinatorCalls, 0)
    // 300 requests: each 401'd request claims once (the claim answers with the new tokens, or
    // grants the one refresh); later requests of an isolate reuse its fresh copy. The holder adds
    // its commit. The old lease queue took ~6 round trips per request.
    expect(calls).toBeLessThanOrEqual(300 + 3)
    console.info(`[workerd] ${calls} Durable Object round trips for 300 requests at expiry`)
  }, 60_000)

  it('the Workers KV read cache holds no refresh token, and every entry expires with its access token', async () => {
    const kv: any = await mf.getKVNamespace('TOKENS', 'a')
    // (the contract suites above share the namespace under their own prefixes)
    const { keys } = (await kv.list({ prefix: 'ky-token-refresh:' })) as { keys: { name: string; expiration?: number }[] }
    const entries = await Promise.all(keys.map(async (key) => ({ ...key, text: String(await kv.get(key.name, 'text')) })))
    expect(entries.map((entry) => entry.name)).toEqual(['ky-token-refresh:default'])
    // Every refresh token this session ever had: the sign-in one, each one presented, the current one.
    const current = await coordinatorTokens('default')
    const refreshTokens = [...issuedRefreshTokens(), current.refreshToken]
    expect(refreshTokens.length).toBeGreaterThanOrEqual(3)
    for (const entry of entries) {
      expect(entry.text).not.toMatch(/srt_|refresh/i)
      for (const token of refreshTokens) expect(entry.text).not.toContain(token)
      // KV drops the entry no later than the access token in it expires.
      expect(entry.expiration, entry.name).toBeTypeOf('number')
      expect(entry.expiration! * 1000).toBeLessThanOrEqual(current.expiresAt)
      expect(entry.expiration! * 1000).toBeGreaterThan(Date.now())
    }
  })

  it('a stale KV read does not cause a refresh with an old refresh token', async () => {
    const before = { ...api.counts }
    const kv: any = await mf.getKVNamespace('TOKENS', 'a')
    const current = JSON.parse((await kv.get('ky-token-refresh:default', 'text'))!)
    // A KV location that has not seen the last writes serves an older token set to cold isolates.
    const staleKV = (tokens: object) => kv.put('ky-token-refresh:default', JSON.stringify({ ...current, tokens: { ...current.tokens, rev: 'stale', ...tokens } }))
    // (1) it is inside its early-refresh window: the cold isolate refreshes proactively, under the
    //     lease, re-reading the Durable Object, which has newer tokens → adopt
    await staleKV({ accessToken: 'stale-1', receivedAt: Date.now() - 1_800_000, expiresAt: Date.now() + 20_000 })
    const proactive = await Promise.all(WORKERS.map((name) => call(name, '/hammer?n=5&cold')))
    // (2) it looks valid but the API rejects it: 401 → the lease → the Durable Object has newer tokens → adopt
    await staleKV({ accessToken: 'stale-2', expiresAt: Date.now() + 600_000 })
    const reactive = await Promise.all(WORKERS.map((name) => call(name, '/hammer?n=5&cold')))
    // (3) its own expiry has passed (KV may serve an entry up to 60 s past its expirationTtl): absent
    await staleKV({ accessToken: 'stale-3', expiresAt: Date.now() - 1_000 })
    const expired = await Promise.all(WORKERS.map((name) => call(name, '/hammer?n=5&cold')))
    // (4) a full token set written by an older version, refresh token and all: not a cache entry, absent
    await kv.put('ky-token-refresh:default', JSON.stringify({ ...current.tokens, accessToken: 'stale-4', refreshToken: 'srt_spent_long_ago', expiresAt: Date.now() + 600_000 }))
    const legacy = await Promise.all(WORKERS.map((name) => call(name, '/hammer?n=5&cold')))
    expect([...proactive, ...reactive, ...expired, ...legacy].map((result) => result.ok)).toEqual(Array(12).fill(5))
    expect(api.counts.unauthorized - before.unauthorized).toBe(15) // the stale-2 attempts, each replayed once
    expect(api.counts.token).toBe(before.token) // nobody called the token endpoint, least of all with srt_spent_long_ago
    expect(api.counts.reuse).toBe(0)
  })

  it('a token with less than 60 s to live is not cached (KV cannot expire it in time); reads go to the Durable Object', async () => {
    const kv: any = await mf.getKVNamespace('TOKENS', 'a')
    await call('a', '/seed', { method: 'POST', body: signIn({ expires_in: 50 }) })
    expect(await kv.get('ky-token-refresh:default', 'text')).toBeNull()
    const before = { ...api.counts }
    const results = await Promise.all(WORKERS.map((name) => call(name, '/hammer?n=5&cold')))
    expect(results.map((result) => result.ok)).toEqual([5, 5, 5])
    expect(api.counts.token).toBe(before.token)
    expect(api.counts.unauthorized).toBe(before.unauthorized)
    // A long-lived one is cached again, without its refresh token.
    await call('a', '/seed', { method: 'POST', body: signIn() })
    const entry = JSON.parse((await kv.get('ky-token-refresh:default', 'text'))!)
    expect(entry.tokens.accessToken).toBe((await coordinatorTokens('default')).accessToken)
    expect(Object.keys(entry.tokens)).not.toContain('refreshToken')
  })

  it('logout in an isolate whose copy came from the KV cache still revokes the refresh token (RFC 7009)', async () => {
    await call('a', '/seed', { method: 'POST', body: signIn() })
    const { refreshToken } = await coordinatorTokens('default')
    const before = api.counts.revoked
    // the set is in the KV cache (without its refresh token); a cold isolate reads it from there and logs out
    const kv: any = await mf.getKVNamespace('TOKENS', 'a')
    expect(await kv.get('ky-token-refresh:default', 'text')).not.toBeNull()
    const isolate = await worker('b')
    const result = (await (await isolate.fetch('http://worker/logout?cold')).json()) as { errors: string[] }
    expect(result.errors).toEqual([])
    expect(await coordinatorTokens('default')).toBeNull()
    expect(api.counts.revoked - before).toBe(1)
    // the server no longer accepts it
    const direct = await fetch(api.url('/api/v1/apps/oauth2/refresh'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: refreshToken }) })
    expect(direct.status).toBe(400)
  })

  it('KV alone is refused at setup for a rotating grant, with an explanation', async () => {
    const result = await call('b', '/kv-alone')
    expect(result.refused).toBe(true)
    expect(result.message).toContain('eventually consistent')
  })
})
