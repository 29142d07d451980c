// One Deno process of the Deno KV scenario: the built package, the `denoKVStorage` adapter on a
// KV database file shared with the other processes. Prints one JSON line.
import ky from 'ky'
import { createTokenAuth, isTokenError, refreshTokenGrant } from '../../../dist/index.js'
import { denoKVStorage } from '../../../dist/storage/deno-kv.js'

declare const Deno: { args: string[]; openKv(path?: string): Promise<any>; exit(code: number): never }

const [mode, api, kvPath, arg1, arg2] = Deno.args
const kv = await Deno.openKv(kvPath)
const storage = denoKVStorage({ kv, lockTtl: 1_000 })

if (mode === 'events') {
  // Two engines in this process share the database; one holds the lease through a slow refresh.
  // With Deno KV's watch the other resumes on the release: count its lease attempts. Also record
  // the expireIn every token write carries (the TTL).
  let attempts = 0
  const expiries: unknown[] = []
  const spy = {
    ...kv,
    get: (key: unknown[]) => (key[1] === 'lock' && attempts++, kv.get(key)),
    set: (key: unknown[], value: unknown, options?: { expireIn?: number }) => (expiries.push(options?.expireIn), kv.set(key, value, options)),
    watch: (keys: unknown[][]) => kv.watch(keys),
    atomic: () => {
      const op = kv.atomic()
      const wrapped: any = {
        check: (...a: unknown[]) => (op.check(...a), wrapped),
        set: (key: unknown[], value: unknown, options?: { expireIn?: number }) => (key[1] === 'tokens' && expiries.push(options?.expireIn), op.set(key, value, options), wrapped),
        delete: (key: unknown[]) => (op.delete(key), wrapped),
        commit: () => op.commit(),
      }
      return wrapped
    },
  }
  const grant = refreshTokenGrant({ url: `${api}/api/v1/apps/oauth2/refresh`, body: 'json' })
  const one = createTokenAuth({ grant, storage: denoKVStorage({ kv, ttl: 86_400_000 }) })
  const two = createTokenAuth({ grant, storage: denoKVStorage({ kv: spy, ttl: 86_400_000 }) })
  await two.setTokens(JSON.parse(arg1!))
  await one.getAccessToken()
  const first = one.getAccessToken({ forceRefresh: true })
  await new Promise((resolve) => setTimeout(resolve, 150)) // one holds the lease; the endpoint is slow
  attempts = 0
  const [a, b] = await Promise.all([first, two.getAccessToken({ forceRefresh: true })])
  console.log(JSON.stringify({ same: a === b, lockReads: attempts, expiries: [...new Set(expiries)] }))
} else if (mode === 'contract') {
  // The contract's core promises, on real Deno KV: copies, CAS (one winner of 20), an exclusive lock.
  const sample = (rev: string) => ({ accessToken: `at-${rev}`, refreshToken: `rt-${rev}`, receivedAt: 1, expiresAt: 2, rev })
  const results: Record<string, unknown> = {}
  results.absent = (await storage.get('c')) === undefined
  results.casFromNothing = await storage.compareAndSet!('c', undefined, sample('a'))
  results.casWrongRev = await storage.compareAndSet!('c', 'nope', sample('x'))
  const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => storage.compareAndSet!('c', 'a', sample(`w${i}`))))
  results.concurrentWinners = wins.filter(Boolean).length
  let holders = 0
  let maxHolders = 0
  await Promise.all(Array.from({ length: 5 }, () => storage.withLock!('c', async () => {
    maxHolders = Math.max(maxHolders, ++holders)
    await new Promise((resolve) => setTimeout(resolve, 20))
    holders--
  })))
  results.maxHolders = maxHolders
  await storage.delete('c')
  results.deleted = (await storage.get('c')) === undefined
  console.log(JSON.stringify(results))
} else {
  const auth = createTokenAuth({ grant: refreshTokenGrant({ url: `${api}/api/v1/apps/oauth2/refresh`, body: 'json' }), storage })
  if (mode === 'seed') {
    await auth.setTokens(JSON.parse(arg1!))
    console.log(JSON.stringify({ seeded: true }))
  } else {
    let refreshes = 0
    auth.on('refresh', () => refreshes++)
    const client = ky.create({ baseUrl: `${api}/api/v1/`, hooks: auth.hooks })
    await auth.getAccessToken()
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(arg2) - Date.now())))
    const settled = await Promise.allSettled(Array.from({ length: Number(arg1) }, () => client.get('passes').json()))
    const codes = settled.map((result) => (result.status === 'fulfilled' ? 'ok' : isTokenError(result.reason) ? result.reason.code : String(result.reason)))
    console.log(JSON.stringify({ ok: codes.filter((code) => code === 'ok').length, codes: [...new Set(codes)], refreshes }))
  }
}
kv.close()
