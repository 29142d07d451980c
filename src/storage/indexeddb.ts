/**
 * IndexedDB token storage (via idb-keyval) for browsers: shared by every tab of an origin,
 * coordinated with Web Locks, kept coherent with BroadcastChannel.
 *
 * @module
 */
import { createStore, del, get, promisifyRequest, set } from 'idb-keyval'
import { createLocalLock } from '../coordination/local-lock.js'
import { createWebLock, webLocks } from '../coordination/web-locks.js'
import type { StoredTokens, TokenStorage } from '../types.js'

const ADAPTER_NAME = 'indexeddb'

/** Options for {@link indexedDBStorage}. */
export interface IndexedDBStorageOptions {
  /** The IndexedDB database name. Default `"ky-token-refresh"`. */
  dbName?: string
  /** The object store name. Default `"tokens"`. */
  storeName?: string
  /**
   * The BroadcastChannel that tells other tabs a key changed, so they drop their in-memory copy
   * at once (logout in one tab signs out all). Default `"ky-token-refresh:<dbName>/<storeName>"`;
   * `false` disables it (other tabs then notice changes only on their next refresh or 401).
   */
  channel?: string | false
}

/**
 * Keep tokens in IndexedDB. Scope: every tab and worker of one origin; consistency: strong.
 * Compare-and-set runs inside one readwrite transaction. The refresh lock is a Web Lock, shared
 * across tabs and released by the browser when a tab dies; where Web Locks is missing (very old
 * browsers) the lock covers this tab only and two tabs could refresh at once.
 *
 * The engine keeps the valid token in memory, so a request with a fresh token reads nothing from
 * IndexedDB; other tabs' writes arrive over BroadcastChannel and invalidate that copy.
 *
 * > [!WARNING]
 * > Any script running on the origin can read IndexedDB: an XSS can steal these tokens. Prefer a
 * > backend-for-frontend (see `examples/bff`) when that risk matters.
 *
 * @example
 * ```ts
 * const auth = createTokenAuth({ grant, storage: indexedDBStorage({ dbName: 'stemp' }) })
 * ```
 */
export function indexedDBStorage(options: IndexedDBStorageOptions = {}): TokenStorage {
  const { dbName = 'ky-token-refresh', storeName = 'tokens' } = options
  const store = createStore(dbName, storeName)
  const channelName = options.channel ?? `ky-token-refresh:${dbName}/${storeName}`
  const channel = channelName !== false && typeof BroadcastChannel !== 'undefined' ? new BroadcastChannel(channelName) : undefined
  const listeners = new Set<(key: string, rev?: string) => void>()
  if (channel) {
    channel.onmessage = ({ data }: MessageEvent<{ key?: unknown; rev?: unknown }>) => {
      if (typeof data?.key === 'string') for (const listener of listeners) listener(data.key, typeof data.rev === 'string' ? data.rev : undefined)
    }
  }
  // Only the key and the opaque revision travel over the channel: never a token.
  const announce = (key: string, rev?: string) => channel?.postMessage(rev === undefined ? { key } : { key, rev })
  const locks = webLocks()
  return {
    name: ADAPTER_NAME,
    flags: { scope: 'origin', consistency: 'strong' },
    get: (key) => get<StoredTokens>(key, store),
    async set(key, value) {
      await set(key, value, store)
      announce(key, value.rev)
    },
    async delete(key, expectedRev) {
      if (expectedRev === undefined) await del(key, store)
      else {
        let deleted = false
        await store('readwrite', (objectStore) => {
          const request = objectStore.get(key)
          request.onsuccess = () => {
            if ((request.result as StoredTokens | undefined)?.rev === expectedRev) (objectStore.delete(key), (deleted = true))
          }
          return promisifyRequest(objectStore.transaction)
        })
        if (!deleted) return
      }
      announce(key)
    },
    async compareAndSet(key, expectedRev, next) {
      let written = false
      await store('readwrite', (objectStore) => {
        const request = objectStore.get(key)
        request.onsuccess = () => {
          if ((request.result as StoredTokens | undefined)?.rev === expectedRev) {
            objectStore.put(next, key)
            written = true
          }
        }
        return promisifyRequest(objectStore.transaction)
      })
      if (written) announce(key, next.rev)
      return written
    },
    withLock: locks ? createWebLock(locks, `ky-token-refresh:${dbName}/${storeName}:`) : createLocalLock(),
    watch(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
  }
}
