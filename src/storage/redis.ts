/**
 * Redis token storage for server fleets (backend-for-frontend nodes, workers): global scope,
 * strong consistency, compare-and-set in Lua, and a lease lock (`SET NX PX` + heartbeat +
 * owner-checked release).
 *
 * @module
 */
import { createLeaseLock } from '../coordination/lease-lock.js'
import type { StoredTokens, TokenStorage } from '../types.js'

const ADAPTER_NAME = 'redis'

/**
 * The one method this adapter needs from a Redis client: send a command, get the reply.
 *
 * - node-redis (v4, v5): pass the client as is (`client.sendCommand(['GET', key])`).
 * - ioredis: `{ sendCommand: ([command, ...args]) => redis.call(command, ...args) }`.
 */
export interface RedisLike {
  sendCommand(args: string[]): Promise<unknown>
}

/** Options for {@link redisStorage}. */
export interface RedisStorageOptions {
  /** A connected Redis client (see {@link RedisLike}). */
  client: RedisLike
  /** Prefix for every key this adapter writes. Default `"ky-token-refresh:"`. */
  prefix?: string
  /** Lease length of the refresh lock (ms); extended while the holder works. Default 10000. */
  lockTtl?: number
}

// KEYS[1] = token key; ARGV[1] = expected rev ('' = absent); ARGV[2] = new JSON value.
const CAS = `local v = redis.call('GET', KEYS[1])
local rev = ''
if v then rev = cjson.decode(v).rev or '' end
if rev == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0`
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`

/**
 * Keep tokens in Redis. Scope: every process that reaches this Redis; consistency: strong.
 * With it, any number of Node processes sharing a session make one refresh per expiry, and a
 * holder whose lease lapsed (a long GC pause) cannot overwrite newer tokens: commits are
 * compare-and-set on the stored revision. Each process keeps the valid token in memory, so the
 * hot path reads Redis once per process per token, not per request.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * const client = await createClient({ url: process.env.REDIS_URL }).connect()
 * const auth = createTokenAuth({ grant, storage: redisStorage({ client }) })
 * ```
 */
export function redisStorage(options: RedisStorageOptions): TokenStorage {
  const { client, prefix = 'ky-token-refresh:', lockTtl = 10_000 } = options
  if (typeof client?.sendCommand !== 'function') throw new TypeError('"client" must have sendCommand(args): pass a node-redis client, or wrap ioredis as { sendCommand: ([c, ...a]) => redis.call(c, ...a) }.')
  const send = (...args: string[]) => client.sendCommand(args)
  const tokenKey = (key: string) => `${prefix}tokens:${key}`
  return {
    name: ADAPTER_NAME,
    flags: { scope: 'global', consistency: 'strong' },
    async get(key) {
      const value = await send('GET', tokenKey(key))
      return typeof value === 'string' ? (JSON.parse(value) as StoredTokens) : undefined
    },
    async set(key, value) {
      await send('SET', tokenKey(key), JSON.stringify(value))
    },
    async delete(key) {
      await send('DEL', tokenKey(key))
    },
    async compareAndSet(key, expectedRev, next) {
      return Number(await send('EVAL', CAS, '1', tokenKey(key), expectedRev ?? '', JSON.stringify(next))) === 1
    },
    withLock: createLeaseLock(
      {
        acquire: async (key, owner, ttl) => (await send('SET', `${prefix}lock:${key}`, owner, 'NX', 'PX', String(ttl))) === 'OK',
        extend: async (key, owner, ttl) => Number(await send('EVAL', EXTEND, '1', `${prefix}lock:${key}`, owner, String(ttl))) === 1,
        release: async (key, owner) => void (await send('EVAL', RELEASE, '1', `${prefix}lock:${key}`, owner)),
      },
      { ttl: lockTtl },
    ),
  }
}
