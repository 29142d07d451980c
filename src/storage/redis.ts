/**
 * Redis token storage for server fleets (backend-for-frontend nodes, workers): global scope,
 * strong consistency, compare-and-set in Lua, and a lease lock (`SET NX PX` + heartbeat +
 * owner-checked release).
 *
 * With a `subscriber` connection, every write and every lease release is published on one
 * channel: waiting processes resume the moment the refresh commits (instead of on their next
 * poll), and a logout or a new session in one process stops the others from serving the old
 * token at once. Token keys expire (`ttl`), so abandoned sessions do not pile up.
 *
 * @module
 */
import { createLeaseLock } from '../coordination/lease-lock.js'
import type { StoredTokens, TokenStorage } from '../types.js'
import { newRev } from '../utils/async.js'
import { TokenError } from '../errors.js'

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

/**
 * A Redis connection in subscriber mode (it can do nothing else while subscribed).
 *
 * - node-redis (v4, v5): `const subscriber = client.duplicate(); await subscriber.connect()`.
 * - ioredis: `{ subscribe: (channel, listener) => { sub.on('message', (c, m) => c === channel && listener(m)); return sub.subscribe(channel) } }`.
 */
export interface RedisSubscriberLike {
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>
}

/** Options for {@link redisStorage}. */
export interface RedisStorageOptions {
  /** A connected Redis client (see {@link RedisLike}). */
  client: RedisLike
  /**
   * A second connection for pub/sub (see {@link RedisSubscriberLike}). With it, waiters resume on
   * the commit and logouts reach every process at once; without it, waiters poll and other
   * processes notice a logout when their in-memory copy expires (`cache.ttl` of createTokenAuth).
   */
  subscriber?: RedisSubscriberLike
  /** Prefix for every key this adapter writes (and of its pub/sub channel). Default `"ky-token-refresh:"`. */
  prefix?: string
  /** Lease length of the refresh lock (ms); extended while the holder works. Default 10000. */
  lockTtl?: number
  /**
   * How long a stored token set lives without being written again (seconds), so abandoned
   * sessions expire. Set it to the refresh token's lifetime; every refresh renews it. Default
   * 2592000 (30 days, stemp's refresh-token lifetime).
   */
  ttl?: number
}

// KEYS[1] = token key; ARGV[1] = expected rev ('' = absent); ARGV[2] = new JSON value;
// ARGV[3] = TTL (s); ARGV[4] = channel; ARGV[5] = message ('' = publish nothing).
const CAS = `local v = redis.call('GET', KEYS[1])
local rev = ''
if v then rev = cjson.decode(v).rev or '' end
if rev == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
  return 1
end
return 0`
// KEYS[1] = token key, KEYS[2] = lease key; ARGV[1] = the caller's stale access token ('' = none),
// ARGV[2] = owner, ARGV[3] = lease ms. {0, tokens}: newer tokens, adopt; {1, tokens}: leased, refresh;
// {2}: another caller holds the lease.
const CLAIM = `local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).accessToken ~= ARGV[1] then return {0, v} end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {1, v or ''} end
return {2, ''}`
// KEYS[1] = token key, KEYS[2] = lease key; ARGV[1] = expected rev ('' = absent), ARGV[2] = value,
// ARGV[3] = TTL (s), ARGV[4] = owner, ARGV[5] = channel, ARGV[6] = message when written, ARGV[7] = otherwise.
const COMMIT = `local v = redis.call('GET', KEYS[1])
local rev = ''
if v then rev = cjson.decode(v).rev or '' end
local written = 0
if rev == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  written = 1
end
if redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
local message = ARGV[7]
if written == 1 then message = ARGV[6] end
if message ~= '' then redis.call('PUBLISH', ARGV[5], message) end
return written`
// KEYS[1] = token key; ARGV[1] = expected rev; ARGV[2] = channel; ARGV[3] = message ('' = none).
const DELETE_IF = `local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).rev == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
  return 1
end
return 0`
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`
// ARGV[2] = channel; ARGV[3] = message ('' = publish nothing).
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
  return 1
end
return 0`

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
  const { client, subscriber, prefix = 'ky-token-refresh:', lockTtl = 10_000, ttl = 2_592_000 } = options
  if (typeof client?.sendCommand !== 'function') throw new TypeError('"client" must have sendCommand(args): pass a node-redis client, or wrap ioredis as { sendCommand: ([c, ...a]) => redis.call(c, ...a) }.')
  if (subscriber !== undefined && typeof subscriber.subscribe !== 'function') throw new TypeError('"subscriber" must have subscribe(channel, listener): pass a duplicated node-redis client (client.duplicate(), connected).')
  if (!Number.isInteger(ttl) || ttl <= 0) throw new TypeError('"ttl" must be a positive whole number of seconds.')
  const send = (...args: string[]) => client.sendCommand(args)
  const tokenKey = (key: string) => `${prefix}tokens:${key}`
  const channel = `${prefix}events`
  // Messages: "t <writer> <rev or -> <key>" (tokens written or deleted) and "l <key>" (lease released).
  const writer = newRev()
  const announce = (kind: 't' | 'l', key: string, rev?: string) => (subscriber ? (kind === 't' ? `t ${writer} ${rev ?? '-'} ${key}` : `l ${key}`) : '')
  const events = subscriber && createEvents(subscriber, channel, writer)
  // The claim's lease: kept alive while the token endpoint works; committed (with the release) or given back.
  const lease = (key: string, owner: string, tokens: StoredTokens | undefined) => {
    const lockKey = `${prefix}lock:${key}`
    const heartbeat = setInterval(() => void send('EVAL', EXTEND, '1', lockKey, owner, String(lockTtl)).catch(() => {}), lockTtl / 3)
    return {
      async commit(next: StoredTokens) {
        clearInterval(heartbeat)
        return Number(await send('EVAL', COMMIT, '2', tokenKey(key), lockKey, tokens?.rev ?? '', JSON.stringify(next), String(ttl), owner, channel, announce('t', key, next.rev), announce('l', key))) === 1
      },
      async release() {
        clearInterval(heartbeat)
        await send('EVAL', RELEASE, '1', lockKey, owner, channel, announce('l', key))
      },
    }
  }
  return {
    name: ADAPTER_NAME,
    flags: { scope: 'global', consistency: 'strong' },
    async get(key) {
      const value = await send('GET', tokenKey(key))
      return typeof value === 'string' ? (JSON.parse(value) as StoredTokens) : undefined
    },
    async set(key, value) {
      await send('SET', tokenKey(key), JSON.stringify(value), 'EX', String(ttl))
      if (subscriber) await send('PUBLISH', channel, announce('t', key, value.rev))
    },
    async delete(key, expectedRev) {
      if (expectedRev !== undefined) return void (await send('EVAL', DELETE_IF, '1', tokenKey(key), expectedRev, channel, announce('t', key)))
      await send('DEL', tokenKey(key))
      if (subscriber) await send('PUBLISH', channel, announce('t', key))
    },
    async compareAndSet(key, expectedRev, next) {
      return Number(await send('EVAL', CAS, '1', tokenKey(key), expectedRev ?? '', JSON.stringify(next), String(ttl), channel, announce('t', key, next.rev))) === 1
    },
    // One script per attempt: newer tokens (adopt), or the lease with the current tokens; a waiter
    // resumes on the commit's message and adopts without taking the lease at all.
    async claim(key, stale, { timeout = 30_000 } = {}) {
      const owner = newRev()
      const deadline = Date.now() + timeout
      let woken = false
      let wake: (() => void) | undefined
      const stop = events?.onRelease(key, () => {
        woken = true
        wake?.()
      })
      try {
        for (let wait = 25; ; wait = Math.min(wait * 2, 250)) {
          woken = false
          const [state, value] = (await send('EVAL', CLAIM, '2', tokenKey(key), `${prefix}lock:${key}`, stale ?? '', owner, String(lockTtl))) as [number, string]
          const tokens = value ? (JSON.parse(value) as StoredTokens) : undefined
          if (Number(state) === 0) return { tokens }
          if (Number(state) === 1) return { tokens, lease: lease(key, owner, tokens) }
          const left = deadline - Date.now()
          if (left <= 0) throw new TokenError('ERR_LOCK_TIMEOUT', `Waited ${timeout} ms for the refresh of "${key}" held by another process; check the token endpoint's latency.`)
          if (woken) continue
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.min(stop ? 1_000 : wait + Math.random() * wait, left))
            wake = () => (clearTimeout(timer), resolve())
          })
          wake = undefined
        }
      } finally {
        stop?.()
      }
    },
    withLock: createLeaseLock(
      {
        acquire: async (key, owner, ttl) => (await send('SET', `${prefix}lock:${key}`, owner, 'NX', 'PX', String(ttl))) === 'OK',
        extend: async (key, owner, ttl) => Number(await send('EVAL', EXTEND, '1', `${prefix}lock:${key}`, owner, String(ttl))) === 1,
        release: async (key, owner) => void (await send('EVAL', RELEASE, '1', `${prefix}lock:${key}`, owner, channel, announce('l', key))),
        ...(events && { onRelease: events.onRelease }),
      },
      { ttl: lockTtl },
    ),
    ...(events && { watch: events.watch }),
  }
}

/** One subscription per adapter, fanned out to lease waiters and `watch` listeners. */
function createEvents(subscriber: RedisSubscriberLike, channel: string, writer: string) {
  const waiters = new Map<string, Set<() => void>>()
  const watchers = new Set<(key: string, rev?: string) => void>()
  let subscribed: Promise<unknown> | undefined
  const subscribe = () =>
    (subscribed ??= subscriber.subscribe(channel, (message) => {
      // A lease waiter wakes on a release or a commit of its key; watchers hear other writers only.
      const tokens = message.startsWith('t ')
      const [from = '', rev = '-'] = tokens ? message.slice(2).split(' ', 2) : []
      const key = tokens ? message.slice(4 + from.length + rev.length) : message.slice(2)
      for (const wake of waiters.get(key) ?? []) wake()
      if (tokens && from !== writer) for (const listener of watchers) listener(key, rev === '-' ? undefined : rev)
    }).catch(() => (subscribed = undefined))) // a failed subscribe falls back to polling; retried on next use
  return {
    onRelease(key: string, wake: () => void) {
      void subscribe()
      const set = waiters.get(key) ?? new Set()
      waiters.set(key, set.add(wake))
      return () => {
        set.delete(wake)
        if (!set.size) waiters.delete(key)
      }
    },
    watch(listener: (key: string, rev?: string) => void) {
      void subscribe()
      watchers.add(listener)
      return () => void watchers.delete(listener)
    },
  }
}
