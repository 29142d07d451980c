/**
 * Cloudflare Workers KV token storage: a global, eventually consistent cache of token sets.
 *
 * @module
 */
import type { StoredTokens, TokenStorage } from '../types.js'

const ADAPTER_NAME = 'cloudflare-kv'

/** The part of a Workers KV binding this adapter uses (structural: no Workers types needed). */
export interface KVNamespaceLike {
  get(key: string, type: 'text'): Promise<string | null>
  put(key: string, value: string, options?: { expirationTtl?: number }): Promise<void>
  delete(key: string): Promise<void>
}

/** Options for {@link cloudflareKVStorage}. */
export interface CloudflareKVStorageOptions {
  /** The KV namespace binding, e.g. `env.TOKENS`. */
  namespace: KVNamespaceLike
  /** Prefix for every key. Default `"ky-token-refresh:"`. */
  prefix?: string
}

/**
 * Keep token sets in Workers KV. Scope: global; consistency: **eventual** — a write can take 60 s
 * or more to be seen in other locations, and KV allows about one write per second per key. It has
 * no compare-and-set and no lock, so it cannot coordinate refresh-token rotation.
 *
 * > [!WARNING]
 * > `createTokenAuth` refuses this adapter (a `TypeError` at setup) for grants that rotate refresh
 * > tokens (`refreshTokenGrant`, `jsonLoginGrant` with `refreshUrl`): two isolates would spend the
 * > same refresh token and the server would revoke the session. Use it alone for client
 * > credentials (a stale read costs at most an extra token call), or as the `cache` of
 * > `durableObjectStorage()`, which keeps refresh tokens in strongly consistent storage.
 *
 * @example
 * ```ts
 * const auth = createTokenAuth({ grant: clientCredentialsGrant({ … }), storage: cloudflareKVStorage({ namespace: env.TOKENS }) })
 * ```
 */
export function cloudflareKVStorage(options: CloudflareKVStorageOptions): TokenStorage {
  const { namespace, prefix = 'ky-token-refresh:' } = options
  if (typeof namespace?.get !== 'function' || typeof namespace.put !== 'function') throw new TypeError('"namespace" must be a Workers KV binding (env.YOUR_NAMESPACE).')
  return {
    name: ADAPTER_NAME,
    flags: { scope: 'global', consistency: 'eventual' },
    async get(key) {
      const value = await namespace.get(prefix + key, 'text')
      return value === null ? undefined : (JSON.parse(value) as StoredTokens)
    },
    async set(key, value) {
      // Let KV drop the entry a day after the access token expires (refresh tokens outlive it, so
      // only when there is none).
      const ttl = !value.refreshToken && value.expiresAt ? Math.max(60, Math.ceil((value.expiresAt - Date.now()) / 1000) + 86_400) : undefined
      await namespace.put(prefix + key, JSON.stringify(value), ttl ? { expirationTtl: ttl } : undefined)
    },
    delete: (key) => namespace.delete(prefix + key),
  }
}
