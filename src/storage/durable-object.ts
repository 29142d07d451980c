/**
 * A Durable Object that coordinates token refresh across every Workers isolate, and the storage
 * adapter that talks to it. One object per token-set key holds the tokens in strongly consistent
 * storage and hands out a refresh lease, so one refresh happens per expiry however many isolates
 * ask.
 *
 * @module
 */
import { createLeaseLock } from '../coordination/lease-lock.js'
import type { StoredTokens, TokenStorage } from '../types.js'
import type { KVNamespaceLike } from './cloudflare-kv.js'

const ADAPTER_NAME = 'durable-object'

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
  | { op: 'delete' }
  | { op: 'cas'; expected?: string; value: StoredTokens }
  | { op: 'acquire' | 'extend'; owner: string; ttl: number }
  | { op: 'release'; owner: string }

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
        await storage.delete('tokens')
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
    }
    return Response.json({ result: result ?? null })
  }
}

/** Options for {@link durableObjectStorage}. */
export interface DurableObjectStorageOptions {
  /** The {@link TokenCoordinator} namespace binding, e.g. `env.TOKEN_COORDINATOR`. */
  namespace: DurableObjectNamespaceLike
  /**
   * Optional Workers KV read cache: `get` outside the refresh lock reads KV first (cheap, global,
   * possibly stale); every read inside the lock and every write goes to the Durable Object, so a
   * stale KV entry can never make an isolate spend an old refresh token.
   */
  cache?: KVNamespaceLike
  /** Prefix for KV cache keys and Durable Object names. Default `"ky-token-refresh:"`. */
  prefix?: string
  /** Lease length of the refresh lock (ms); extended while the holder works. Default 10000. */
  lockTtl?: number
}

/**
 * Token storage backed by the {@link TokenCoordinator} Durable Object. Scope: global (every
 * isolate, every location); consistency: strong. Supports compare-and-set and a lease lock, so
 * rotating refresh tokens are safe across isolates. On Workers the engine does not share one
 * refresh promise between requests (a Workers rule); callers take the lease in turn and every
 * caller after the first adopts the stored tokens: still one token-endpoint call per expiry.
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
  const mirror = (key: string, value: StoredTokens | undefined) =>
    cache && (value ? cache.put(prefix + key, JSON.stringify(value)) : cache.delete(prefix + key))
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
    async get(key) {
      if (cache && !locked.get(key)) {
        const cached = await cache.get(prefix + key, 'text')
        if (cached !== null) return JSON.parse(cached) as StoredTokens
      }
      return (await call(key, { op: 'get' })) ?? undefined
    },
    async set(key, value) {
      await call(key, { op: 'set', value })
      await mirror(key, value)
    },
    async delete(key) {
      await call(key, { op: 'delete' })
      await mirror(key, undefined)
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
