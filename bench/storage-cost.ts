// Storage operations per request on the hot path and per refresh, counted through each adapter.
import { existsSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import ky from 'ky'
import { build } from 'esbuild'
import { Miniflare } from 'miniflare'
import { createClient } from 'redis'
import { createTokenAuth, memoryStorage, refreshTokenGrant, type TokenStorage } from 'ky-token-refresh'
import { indexedDBStorage } from 'ky-token-refresh/storage/indexeddb'
import { redisStorage } from 'ky-token-refresh/storage/redis'
import { durableObjectStorage } from 'ky-token-refresh/storage/durable-object'
import { startRedis } from '../test/helpers/redis-server.ts'
import { BASE_URL, TOKEN_URL, world } from './world.ts'

function counting(storage: TokenStorage) {
  const ops = { get: 0, set: 0, compareAndSet: 0, withLock: 0, claim: 0, commit: 0, delete: 0 }
  const counted: TokenStorage = {
    ...storage,
    get: (key) => (ops.get++, storage.get(key)),
    set: (key, value) => (ops.set++, storage.set(key, value)),
    delete: (key, rev) => (ops.delete++, storage.delete(key, rev)),
    ...(storage.compareAndSet && { compareAndSet: (key: string, rev: string | undefined, next: any) => (ops.compareAndSet++, storage.compareAndSet!(key, rev, next)) }),
    ...(storage.withLock && { withLock: (key: string, fn: () => Promise<any>, options?: any) => (ops.withLock++, storage.withLock!(key, fn, options)) }),
    // A claim is one round trip; its commit (write + release) another.
    ...(storage.claim && {
      claim: async (key: string, stale: string | undefined, options?: any) => {
        ops.claim++
        const claimed = await storage.claim!(key, stale, options)
        const lease = claimed.lease
        return lease ? { ...claimed, lease: { commit: (next: any) => (ops.commit++, lease.commit(next)), release: lease.release } } : claimed
      },
    }),
  }
  const reset = () => Object.keys(ops).forEach((op) => (ops[op as keyof typeof ops] = 0))
  const describe = () => Object.entries(ops).filter(([, n]) => n > 0).map(([op, n]) => `${n} ${op}`).join(', ')
  return { ops, counted, reset, describe }
}

async function measure(name: string, storage: TokenStorage) {
  const { ops, counted, reset, describe } = counting(storage)
  const grant = refreshTokenGrant({ url: TOKEN_URL, body: 'json' })
  const auth = createTokenAuth({ grant, storage: counted })
  await auth.setTokens({ access_token: world.validToken, expires_in: 3600, refresh_token: world.refreshToken })
  const api = ky.create({ baseUrl: BASE_URL, hooks: auth.hooks })
  reset()
  for (let i = 0; i < 1_000; i++) await api.get('items').json()
  const hot = ops.get / 1_000
  // A second process/isolate starting cold on the same storage: one read, then cached.
  const cold = createTokenAuth({ grant, storage: counted })
  const coldApi = ky.create({ baseUrl: BASE_URL, hooks: cold.hooks })
  reset()
  for (let i = 0; i < 100; i++) await coldApi.get('items').json()
  const coldReads = ops.get
  reset()
  await auth.getAccessToken({ forceRefresh: true })
  return { storage: name, readsPerRequest: `${hot} (a cold engine: ${coldReads} read for its first 100 requests)`, perRefresh: describe() }
}

export async function storageCosts() {
  const rows = [await measure('memory', memoryStorage()), await measure('indexeddb (fake-indexeddb)', indexedDBStorage({ dbName: 'bench' }))]
  if (existsSync('/usr/bin/redis-server') || (() => { try { execFileSync('which', ['redis-server']); return true } catch { return false } })()) {
    const redis = await startRedis()
    const client = await createClient({ url: redis.url }).connect()
    rows.push(await measure('redis (redis-server)', redisStorage({ client: client as never })))
    await client.quit()
    await redis.stop()
  }
  const bundle = await build({ stdin: { contents: `export { TokenCoordinator } from 'ky-token-refresh/storage/durable-object'; export default { fetch: () => new Response('') }`, resolveDir: process.cwd() }, bundle: true, format: 'esm', write: false, logLevel: 'silent' })
  const mf = new Miniflare({ modules: true, script: bundle.outputFiles[0]!.text, compatibilityDate: '2025-06-01', kvNamespaces: ['TOKENS'], durableObjects: { COORD: 'TokenCoordinator' } })
  await mf.ready
  const namespace = (await mf.getDurableObjectNamespace('COORD')) as never
  const cache = (await mf.getKVNamespace('TOKENS')) as never
  rows.push(await measure('durable-object + KV cache (workerd)', durableObjectStorage({ namespace, cache })))
  await mf.dispose()
  return rows
}
