/**
 * In-memory token storage: one JavaScript realm (a tab, an isolate, a Node process).
 *
 * @module
 */
import { createLocalLock } from '../coordination/local-lock.js'
import type { StoredTokens, TokenStorage } from '../types.js'

const ADAPTER_NAME = 'memory'

/**
 * Keep tokens in a `Map`. Scope: one isolate; consistency: strong. Supports compare-and-set and
 * a per-key lock, so concurrent callers in this realm share one refresh. Tokens are lost when the
 * realm ends: pair with a persistent adapter when sessions must survive a reload or restart.
 *
 * > [!NOTE]
 * > On Cloudflare Workers an isolate serves many requests, and its lock would make one request
 * > await a promise created by another, which Workers forbids: use `durableObjectStorage()` there.
 *
 * @example
 * ```ts
 * const auth = createTokenAuth({ grant, storage: memoryStorage() })
 * ```
 */
export function memoryStorage(): TokenStorage {
  const map = new Map<string, StoredTokens>()
  return {
    name: ADAPTER_NAME,
    flags: { scope: 'isolate', consistency: 'strong' },
    async get(key) {
      const value = map.get(key)
      return value && { ...value }
    },
    async set(key, value) {
      map.set(key, { ...value })
    },
    async delete(key, expectedRev) {
      if (expectedRev === undefined || map.get(key)?.rev === expectedRev) map.delete(key)
    },
    async compareAndSet(key, expectedRev, next) {
      if (map.get(key)?.rev !== expectedRev) return false
      map.set(key, { ...next })
      return true
    },
    withLock: createLocalLock(),
  }
}
