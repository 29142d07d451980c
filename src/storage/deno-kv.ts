/**
 * Deno KV token storage: strongly consistent, with atomic check-and-set, for Deno servers and
 * Deno Deploy.
 *
 * @module
 */
import { createLeaseLock } from '../coordination/lease-lock.js'
import type { StoredTokens, TokenStorage } from '../types.js'

const ADAPTER_NAME = 'deno-kv'

type Key = readonly (string | number)[]
interface Entry<T> { value: T | null; versionstamp: string | null }

/** The part of `Deno.Kv` this adapter uses (structural: no Deno types needed). */
export interface DenoKvLike {
  /** `Deno.Kv.get`: the value and its versionstamp. */
  get<T>(key: Key): Promise<Entry<T>>
  set(key: Key, value: unknown, options?: { expireIn?: number }): Promise<unknown>
  delete(key: Key): Promise<void>
  /**
   * `Deno.Kv.watch`: a stream of the watched entries, emitted on every change. Optional: with it,
   * lock waiters resume when the lease is released. (Deno Deploy delivers changes made anywhere;
   * a local SQLite database only delivers those made in the same process.)
   */
  watch?(keys: readonly Key[]): ReadableStream<Entry<unknown>[]>
  atomic(): {
    check(...checks: { key: Key; versionstamp: string | null }[]): ReturnType<DenoKvLike['atomic']>
    set(key: Key, value: unknown, options?: { expireIn?: number }): ReturnType<DenoKvLike['atomic']>
    delete(key: Key): ReturnType<DenoKvLike['atomic']>
    commit(): Promise<{ ok: boolean }>
  }
}

/** Options for {@link denoKVStorage}. */
export interface DenoKVStorageOptions {
  /** An open Deno KV database: `await Deno.openKv()`. */
  kv: DenoKvLike
  /** First part of every key. Default `"ky-token-refresh"`. */
  prefix?: string
  /** Lease length of the refresh lock (ms); extended while the holder works. Default 10000. */
  lockTtl?: number
  /**
   * How long a stored token set lives without being written again (ms, Deno KV `expireIn`), so
   * abandoned sessions expire. Set it to the refresh token's lifetime; every refresh renews it.
   * Default 2592000000 (30 days, stemp's refresh-token lifetime).
   */
  ttl?: number
}

/**
 * Keep tokens in Deno KV. Scope: every process that opens the same database (on Deno Deploy,
 * every isolate of the project); consistency: strong. Compare-and-set and the lease lock use KV's
 * atomic `check` on versionstamps, so rotating refresh tokens are safe across processes.
 *
 * @example
 * ```ts
 * const auth = createTokenAuth({ grant, storage: denoKVStorage({ kv: await Deno.openKv() }) })
 * ```
 */
export function denoKVStorage(options: DenoKVStorageOptions): TokenStorage {
  const { prefix = 'ky-token-refresh', lockTtl = 10_000, ttl = 2_592_000_000 } = options
  if (!Number.isFinite(ttl) || ttl <= 0) throw new TypeError('"ttl" must be a positive number of milliseconds.')
  const kv = busyRetrying(options.kv)
  const source = options.kv
  if (typeof options.kv?.atomic !== 'function') throw new TypeError('"kv" must be an open Deno KV database (await Deno.openKv()).')
  const tokens = (key: string): Key => [prefix, 'tokens', key]
  const lock = (key: string): Key => [prefix, 'lock', key]
  const swapLease = async (key: string, owner: string, ttl: number, mustOwn: boolean) => {
    const entry = await kv.get<{ owner: string; until: number }>(lock(key))
    const held = entry.value !== null && entry.value.until > Date.now()
    if (mustOwn ? entry.value?.owner !== owner || !held : held) return false
    return (await kv.atomic().check({ key: lock(key), versionstamp: entry.versionstamp }).set(lock(key), { owner, until: Date.now() + ttl }, { expireIn: ttl }).commit()).ok
  }
  return {
    name: ADAPTER_NAME,
    flags: { scope: 'global', consistency: 'strong' },
    async get(key) {
      return (await kv.get<StoredTokens>(tokens(key))).value ?? undefined
    },
    async set(key, value) {
      await kv.set(tokens(key), value, { expireIn: ttl })
    },
    async delete(key, expectedRev) {
      if (expectedRev === undefined) return kv.delete(tokens(key))
      const entry = await kv.get<StoredTokens>(tokens(key))
      if (entry.value?.rev === expectedRev) await kv.atomic().check({ key: tokens(key), versionstamp: entry.versionstamp }).delete(tokens(key)).commit()
    },
    async compareAndSet(key, expectedRev, next) {
      const entry = await kv.get<StoredTokens>(tokens(key))
      if ((entry.value?.rev ?? undefined) !== expectedRev) return false
      return (await kv.atomic().check({ key: tokens(key), versionstamp: entry.versionstamp }).set(tokens(key), next, { expireIn: ttl }).commit()).ok
    },
    withLock: createLeaseLock(
      {
        acquire: (key, owner, ttl) => swapLease(key, owner, ttl, false),
        extend: (key, owner, ttl) => swapLease(key, owner, ttl, true),
        async release(key, owner) {
          const entry = await kv.get<{ owner: string }>(lock(key))
          if (entry.value?.owner === owner) await kv.atomic().check({ key: lock(key), versionstamp: entry.versionstamp }).delete(lock(key)).commit()
        },
        ...(typeof source.watch === 'function' && {
          onRelease(key: string, wake: () => void) {
            // Wake on every change of the lease entry after the first (which is its current state).
            const reader = source.watch!([lock(key)]).getReader()
            let first = true
            void (async () => {
              try {
                for (;;) {
                  const { done } = await reader.read()
                  if (done) return
                  if (!first) wake()
                  first = false
                }
              } catch {} // a broken watch leaves the safety-net poll
            })()
            return () => void reader.cancel().catch(() => {})
          },
        }),
      },
      { ttl: lockTtl },
    ),
  }
}

// --- Internal helpers ---

// A local Deno KV database is one SQLite file; processes sharing it can meet "database is
// locked". Such an operation is retried (up to ~1 s) instead of failing the request.
function busyRetrying(kv: DenoKvLike): DenoKvLike {
  const retry = async <T>(operation: () => Promise<T>): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await operation()
      } catch (error) {
        if (attempt >= 20 || !/database is locked|busy/i.test(String((error as Error)?.message))) throw error
        await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 5 * attempt))
      }
    }
  }
  return {
    get: (key) => retry(() => kv.get(key)),
    set: (key, value, options) => retry(() => kv.set(key, value, options)),
    delete: (key) => retry(() => kv.delete(key)),
    atomic() {
      const steps: ((operation: ReturnType<DenoKvLike['atomic']>) => void)[] = []
      const builder: ReturnType<DenoKvLike['atomic']> = {
        check: (...checks) => (steps.push((operation) => void operation.check(...checks)), builder),
        set: (key, value, options) => (steps.push((operation) => void operation.set(key, value, options)), builder),
        delete: (key) => (steps.push((operation) => void operation.delete(key)), builder),
        commit: () =>
          retry(() => {
            const operation = kv.atomic()
            for (const step of steps) step(operation)
            return operation.commit()
          }),
      }
      return builder
    },
  }
}
