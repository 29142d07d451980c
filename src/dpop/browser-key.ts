/**
 * The browser's DPoP key: a non-extractable ES256 `CryptoKey` pair generated once and kept in
 * IndexedDB, so every tab of the origin and every reload signs with the same key.
 *
 * Why IndexedDB: it stores `CryptoKey` objects by structured clone, so the private key is kept
 * without ever being exported (it is non-extractable: no script, not even ours, can read its
 * bytes; an XSS can use it while it runs, but cannot take it away). `localStorage` would need an
 * extractable key. Why one transaction for "read or create": two tabs opening at once must end up
 * with one key, or one tab's tokens would be bound to a key the other cannot use.
 *
 * idb-keyval is loaded on first use (it is an optional peer dependency), so importing
 * `ky-token-refresh/dpop` on a server does not need it.
 *
 * @module
 */
import { localFailure } from '../grants/sender.js'
import { generateDPoPKey, type SigningAlgorithm } from './keys.js'

/** Options for {@link browserDPoPKey}. */
export interface BrowserDPoPKeyOptions {
  /** The IndexedDB database. Default `"ky-token-refresh-dpop"` (its own database: idb-keyval keeps one store per database). */
  dbName?: string
  /** The object store. Default `"keys"`. */
  storeName?: string
  /** The entry, e.g. one per user or per app. Default `"default"`. */
  key?: string
  /** The algorithm of a newly generated key. Default `ES256`. */
  alg?: Extract<SigningAlgorithm, 'ES256' | 'ES384' | 'ES512' | 'EdDSA' | 'Ed25519'>
}

/**
 * The origin's DPoP key pair from IndexedDB, generated (non-extractable) and stored on first use.
 * Pass it to `dpop({ key: browserDPoPKey() })`. Needs the `idb-keyval` peer dependency.
 *
 * The key survives reloads and is shared by the origin's tabs and workers. If it is lost (site
 * data cleared, a private window closed) a new one is generated: tokens bound to the old key stop
 * working, and for a public client the refresh fails with `ERR_SESSION_ENDED`: sign in again.
 * Delete it on sign-out with {@link deleteBrowserDPoPKey} if a new session should get a new key.
 */
export async function browserDPoPKey(options: BrowserDPoPKeyOptions = {}): Promise<CryptoKeyPair> {
  const { dbName = 'ky-token-refresh-dpop', storeName = 'keys', key = 'default', alg = 'ES256' } = options
  try {
    const { createStore, get, update } = await import('idb-keyval')
    const store = createStore(dbName, storeName)
    const existing = await get<unknown>(key, store)
    if (isKeyPair(existing)) return existing
    // Generate outside the transaction (it would close while we await WebCrypto), then keep
    // whichever pair got stored first: another tab may have won the race.
    const candidate = await generateDPoPKey(alg)
    let winner: CryptoKeyPair = candidate
    await update<unknown>(key, (stored) => (winner = isKeyPair(stored) ? stored : candidate), store)
    return winner
  } catch (error) {
    throw localFailure(new TypeError(`The DPoP key could not be read from or stored in IndexedDB (${(error as Error)?.message ?? String(error)}). Nothing was sent. Check that IndexedDB is available (not blocked, not a restricted private window), or pass a key of your own to dpop().`, { cause: error }))
  }
}

/** Delete the stored DPoP key (e.g. at sign-out): the next {@link browserDPoPKey} generates a new one. */
export async function deleteBrowserDPoPKey(options: Omit<BrowserDPoPKeyOptions, 'alg'> = {}): Promise<void> {
  const { dbName = 'ky-token-refresh-dpop', storeName = 'keys', key = 'default' } = options
  const { createStore, del } = await import('idb-keyval')
  await del(key, createStore(dbName, storeName))
}

function isKeyPair(value: unknown): value is CryptoKeyPair {
  const pair = value as Partial<CryptoKeyPair> | undefined
  return typeof pair === 'object' && pair !== null && typeof CryptoKey !== 'undefined' && pair.privateKey instanceof CryptoKey && pair.publicKey instanceof CryptoKey
}
