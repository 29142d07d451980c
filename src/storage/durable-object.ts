/**
 * A Durable Object that coordinates token refresh across every Workers isolate, and the storage
 * adapter that talks to it. One object per token-set key holds the tokens in strongly consistent
 * storage and hands out a refresh lease, so one refresh happens per expiry however many isolates
 * ask. An optional Workers KV read cache holds access tokens only (never a refresh token), each
 * entry expiring with its token.
 *
 * @module
 */
import { createLeaseLock } from '../coordination/lease-lock.js'
import { TokenError } from '../errors.js'
import type { StoredTokens, TokenStorage } from '../types.js'
import { newRev } from '../utils/async.js'
import type { KVNamespaceLike } from './cloudflare-kv.js'

const ADAPTER_NAME = 'durable-object'
/** Workers KV refuses an `expirationTtl` below 60 seconds. */
const KV_MIN_TTL = 60
const CACHE_FORMAT = 1

/** What one KV cache entry holds: a token set without its refresh token. */
interface CacheEntry {
  v: typeof CACHE_FORMAT
  tokens: Omit<StoredTokens, 'refreshToken'>
}

/** The part of a Durable Object namespace binding this adapter uses (structural). */
export interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown
  get(id: any): { fetch(input: string, init?: RequestInit): Promise<Response> }
}

/** The part of `DurableObjectState` the coordinator uses (structural). */
export interface DurableObjectStateLike {
  storage: {
    get<T>(key: string): Promise<T | undefined>
    put<T>(key: string, value: T): Promise<void>
    delete(key: string): Promise<boolean>
  }
}

type Command =
  | { op: 'get' }
  | { op: 'set'; value: StoredTokens }
  | { op: 'delete'; expected?: string }
  | { op: 'cas'; expected?: string; value: StoredTokens }
  | { op: 'acquire' | 'extend'; owner: string; ttl: number }
  | { op: 'release'; owner: string }
  | { op: 'claim'; stale?: string; owner: string; ttl: number; wait: number }
  | { op: 'commit'; owner: string; expected?: string; value: StoredTokens }

/**
 * The coordinator Durable Object. Export it from your Worker and bind it (e.g. `TOKEN_COORDINATOR`);
 * use one object per token-set key through {@link durableObjectStorage}. Each command runs to
 * completion before the next (the object's input gate), so compare-and-set and the lease are atomic.
 *
 * @example
 * ```ts
 * // worker.ts
 * export { TokenCoordinator } from 'ky-token-refresh/storage/durable-object'
 * // wrangler.toml
 * // [[durable_objects.bindings]]
 * // name = "TOKEN_COORDINATOR"
 * // class_name = "TokenCoordinator"
 * ```
 */
export class TokenCoordinator {
  #storage: DurableObjectStateLike['storage']
  /** Callers held by `claim` while another caller refreshes; woken by every write and release. */
  #waiters = new Set<() => void>()
  #wake() {
    for (const wake of this.#waiters) wake()
    this.#waiters.clear()
  }
  /** Called by the Workers runtime. */
  constructor(state: DurableObjectStateLike, _env?: unknown) {
    this.#storage = state.storage
  }

  /** Answers the adapter's commands (JSON over `fetch`). */
  async fetch(request: Request): Promise<Response> {
    const command = (await request.json()) as Command
    const storage = this.#storage
    const lease = await storage.get<{ owner: string; until: number }>('lease')
    const held = lease !== undefined && lease.until > Date.now()
    let result: unknown
    switch (command.op) {
      case 'get':
        result = (await storage.get<StoredTokens>('tokens')) ?? null
        break
      case 'set':
        await storage.put('tokens', command.value)
        break
      case 'delete':
        if (command.expected === undefined || (await storage.get<StoredTokens>('tokens'))?.rev === command.expected) await storage.delete('tokens')
        break
      case 'cas': {
        const current = await storage.get<StoredTokens>('tokens')
        result = current?.rev === (command.expected ?? undefined)
        if (result) await storage.put('tokens', command.value)
        break
      }
      case 'acquire':
      case 'extend':
        result = command.op === 'acquire' ? !held : held && lease.owner === command.owner
        if (result) await storage.put('lease', { owner: command.owner, until: Date.now() + command.ttl })
        break
      case 'release':
        if (lease?.owner === command.owner) await storage.delete('lease')
        break
      case 'commit': {
        // Compare-and-set over the claimed revision, and give the lease back, in one command.
        const current = await storage.get<StoredTokens>('tokens')
        result = current?.rev === (command.expected ?? undefined)
        if (result) await storage.put('tokens', command.value)
        if (lease?.owner === command.owner) await storage.delete('lease')
        break
      }
      case 'claim':
        result = await this.#claim(command)
        break
    }
    if (command.op !== 'get' && command.op !== 'extend' && command.op !== 'acquire' && command.op !== 'claim') this.#wake()
    return Response.json({ result: result ?? null })
  }

  // Tokens newer than the caller's stale one: hand them back. Else the lease, if free. Else hold
  // the caller here until a write or release (or the lease lapses), then look again.
  async #claim(command: Extract<Command, { op: 'claim' }>): Promise<{ tokens: StoredTokens | null; leased: boolean } | { timeout: true }> {
    const storage = this.#storage
    const deadline = Date.now() + command.wait
    for (;;) {
      const tokens = (await storage.get<StoredTokens>('tokens')) ?? null
      if (tokens && tokens.accessToken !== command.stale) return { tokens, leased: false }
      const lease = await storage.get<{ owner: string; until: number }>('lease')
      if (!lease || lease.until <= Date.now()) {
        await storage.put('lease', { owner: command.owner, until: Date.now() + command.ttl })
        return { tokens, leased: true }
      }
      const left = Math.min(deadline, lease.until) - Date.now()
      if (deadline <= Date.now()) return { timeout: true }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => (this.#waiters.delete(done), resolve()), Math.max(1, left))
        const done = () => (clearTimeout(timer), resolve())
        this.#waiters.add(done)
      })
    }
  }
}

/** Options for {@link durableObjectStorage}. */
export interface DurableObjectStorageOptions {
  /** The {@link TokenCoordinator} namespace binding, e.g. `env.TOKEN_COORDINATOR`. */
  namespace: DurableObjectNamespaceLike
  /**
   * Optional Workers KV read cache for the access token. `get` outside the refresh lock reads KV
   * first (cheap, global, possibly stale); every read inside the lock and every write goes to the
   * Durable Object, so a stale KV entry can never make an isolate spend an old refresh token.
   *
   * What KV holds: the access token, its expiry, scope and revision, and **never the refresh
   * token**, which stays in the Durable Object only. Each entry carries its expiry and is written
   * with `expirationTtl` set to the access token's remaining lifetime (rounded down), so KV drops
   * it no later than the token expires; a read that finds an entry whose expiry has passed treats
   * it as absent. Workers KV cannot expire anything sooner than 60 s, so a token with less than
   * 60 s left, or with no known expiry, is not cached at all (its reads go to the Durable Object).
   */
  cache?: KVNamespaceLike
  /** Prefix for KV cache keys and Durable Object names. Default `"ky-token-refresh:"`. */
  prefix?: string
  /** Lease length of the refresh lock (ms); extended while the holder works. Default 10000. */
  lockTtl?: number
}

/**
 * Token storage backed by the {@link TokenCoordinator} Durable Object. Scope: global (every
 * isolate, every location); consistency: strong. Supports compare-and-set, a lease lock and a
 * claim, so rotating refresh tokens are safe across isolates. On Workers the engine does not share
 * one refresh promise between requests (a Workers rule): each caller claims once, the first is
 * granted the refresh and the coordinator holds the others until it commits, then hands them the
 * new tokens. One token-endpoint call per expiry, about one Durable Object round trip per caller.
 *
 * @example
 * ```ts
 * const auth = createTokenAuth({
 *   grant: refreshTokenGrant({ url, body: 'json' }),
 *   storage: durableObjectStorage({ namespace: env.TOKEN_COORDINATOR, cache: env.TOKENS }),
 * })
 * ```
 */
export function durableObjectStorage(options: DurableObjectStorageOptions): TokenStorage {
  const { namespace, cache, prefix = 'ky-token-refresh:', lockTtl = 10_000 } = options
  if (typeof namespace?.idFromName !== 'function') throw new TypeError('"namespace" must be the TokenCoordinator Durable Object binding (env.TOKEN_COORDINATOR).')
  const locked = new Map<string, number>()
  const call = async (key: string, command: Command): Promise<any> => {
    const response = await namespace.get(namespace.idFromName(prefix + key)).fetch('https://token-coordinator/', { method: 'POST', body: JSON.stringify(command) })
    if (!response.ok) throw new Error(`The TokenCoordinator answered ${response.status}`)
    return ((await response.json()) as { result: unknown }).result
  }
  // The KV copy: never the refresh token; expires with the access token (see `cache`).
  const mirror = async (key: string, value: StoredTokens | undefined) => {
    if (!cache) return
    const ttl = value?.expiresAt === undefined ? 0 : Math.floor((value.expiresAt - Date.now()) / 1000)
    if (!value || ttl < KV_MIN_TTL) return cache.delete(prefix + key)
    const { refreshToken: _, ...withoutRefreshToken } = value
    const entry: CacheEntry = { v: CACHE_FORMAT, tokens: withoutRefreshToken }
    await cache.put(prefix + key, JSON.stringify(entry), { expirationTtl: ttl })
  }
  const cached = async (key: string): Promise<StoredTokens | undefined> => {
    const text = await cache!.get(prefix + key, 'text')
    if (text === null) return undefined
    try {
      const { v, tokens } = JSON.parse(text) as Partial<CacheEntry>
      // Anything else (an older format, a hand-written value, an expired entry) is treated as absent.
      if (v !== CACHE_FORMAT || typeof tokens?.accessToken !== 'string' || typeof tokens.rev !== 'string') return undefined
      if (typeof tokens.expiresAt !== 'number' || tokens.expiresAt <= Date.now()) return undefined
      const { refreshToken: _, ...withoutRefreshToken } = tokens as StoredTokens
      return withoutRefreshToken
    } catch {
      return undefined
    }
  }
  const lease = createLeaseLock(
    {
      acquire: (key, owner, ttl) => call(key, { op: 'acquire', owner, ttl }),
      extend: (key, owner, ttl) => call(key, { op: 'extend', owner, ttl }),
      release: (key, owner) => call(key, { op: 'release', owner }),
    },
    { ttl: lockTtl },
  )
  return {
    name: ADAPTER_NAME,
    flags: { scope: 'global', consistency: 'strong' },
    // One round trip per caller at expiry: the coordinator hands back tokens someone else already
    // refreshed, or grants this caller the refresh and holds the others until it commits.
    async claim(key, stale, { timeout = 30_000 } = {}) {
      const owner = newRev()
      const answer = await call(key, { op: 'claim', ...(stale !== undefined && { stale }), owner, ttl: lockTtl, wait: timeout })
      if (answer?.timeout) throw new TokenError('ERR_LOCK_TIMEOUT', `Waited ${timeout} ms for the refresh of "${key}" held by another isolate; the token endpoint may be slow. Try again.`)
      const tokens: StoredTokens | undefined = answer.tokens ?? undefined
      if (!answer.leased) return { tokens }
      // Keep the lease while the token endpoint works, as the lease lock does.
      const heartbeat = setInterval(() => void call(key, { op: 'extend', owner, ttl: lockTtl }).catch(() => {}), lockTtl / 3)
      return {
        tokens,
        lease: {
          async commit(next) {
            clearInterval(heartbeat)
            const written = (await call(key, { op: 'commit', owner, ...(tokens && { expected: tokens.rev }), value: next })) === true
            if (written) await mirror(key, next)
            return written
          },
          async release() {
            clearInterval(heartbeat)
            await call(key, { op: 'release', owner })
          },
        },
      }
    },
    async get(key) {
      // Inside the lease (the engine re-reading before it refreshes) only the Durable Object will
      // do: it alone holds the refresh token, and it is never stale.
      if (cache && !locked.get(key)) {
        const hit = await cached(key)
        if (hit) return hit
      }
      return (await call(key, { op: 'get' })) ?? undefined
    },
    async set(key, value) {
      await call(key, { op: 'set', value })
      await mirror(key, value)
    },
    async delete(key, expectedRev) {
      await call(key, { op: 'delete', ...(expectedRev !== undefined && { expected: expectedRev }) })
      if (expectedRev === undefined || (await call(key, { op: 'get' })) === null) await mirror(key, undefined)
    },
    async compareAndSet(key, expected, value) {
      const written = (await call(key, { op: 'cas', ...(expected !== undefined && { expected }), value })) === true
      if (written) await mirror(key, value)
      return written
    },
    withLock: (key, fn, lockOptions) =>
      lease(
        key,
        async () => {
          locked.set(key, (locked.get(key) ?? 0) + 1)
          try {
            return await fn()
          } finally {
            locked.set(key, locked.get(key)! - 1)
          }
        },
        lockOptions,
      ),
  }
}
