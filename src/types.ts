/**
 * The shared vocabulary of ky-token-refresh: what a token set is, what a grant and a storage
 * adapter must do. The TSDoc lives here; implementations stay short.
 *
 * @module
 */

/**
 * A validated set of tokens, as the library keeps it. Times are epoch milliseconds of the local
 * clock, computed from `expires_in` and the moment the response arrived, so a skewed server clock
 * does not matter.
 */
export interface TokenSet {
  /** The bearer access token sent in `Authorization: Bearer …`. Never logged by this library. */
  accessToken: string
  /** The refresh token, when the grant has one. A rotated one replaces the old one on refresh. */
  refreshToken?: string
  /** When the access token stops being valid (epoch ms, local clock). Absent: unknown, 401-driven. */
  expiresAt?: number
  /** When the token response was received (epoch ms, local clock). */
  receivedAt: number
  /** Space-separated scopes the server granted, when it said so. */
  scope?: string
}

/** A {@link TokenSet} as persisted by a {@link TokenStorage}, with a revision for compare-and-set. */
export interface StoredTokens extends TokenSet {
  /** Opaque revision; a new value on every write. Compared by {@link TokenStorage.compareAndSet}. */
  rev: string
  /**
   * Which sign-in this token set descends from: new on every `auth.setTokens()`, kept by every
   * refresh. A call is only handed tokens of the session it started in, so a request that waited
   * through a logout and another user's sign-in fails instead of carrying their token. Adapters
   * store it like any other field.
   */
  sid?: string
}

/**
 * A token response body as servers send it (RFC 6749 §5.1 and the vendor variants). Passed to
 * `auth.setTokens()` after a sign-in that happened outside this library.
 */
export interface TokenResponseBody {
  /** The access token (required, non-empty). */
  access_token: string
  /** `Bearer` in any case, or absent (Starship omits it); anything else is refused. */
  token_type?: string
  /** Lifetime in seconds (a number or numeric string, > 0); absent: the JWT's `exp`, else unknown. */
  expires_in?: number | string
  /** A new refresh token (rotation); `null` or absent keeps the one already stored. */
  refresh_token?: string | null
  /** Space-separated granted scopes. */
  scope?: string
  /** Vendor extras are accepted and ignored. */
  [extra: string]: unknown
}

/** What a grant receives from the engine for one token-endpoint call. */
export interface GrantContext {
  /** The transport: the `fetch` option of `createTokenAuth`, never routed through the ky hooks. */
  fetch: typeof fetch
  /** Aborts the token-endpoint call (logout, timeout). Callers that stop waiting do not abort it. */
  signal: AbortSignal
  /** The clock (epoch ms) used to stamp `receivedAt`. */
  now: () => number
}

/**
 * Where tokens come from. Implement this to support a credential shape the built-in grants do
 * not cover; see `refreshTokenGrant()` for a full example.
 *
 * @example
 * ```ts
 * const myGrant: Grant = {
 *   name: 'my-api',
 *   url: 'https://auth.example.com/token',
 *   async request(current, { fetch, signal, now }) {
 *     const response = await fetch('https://auth.example.com/token', { method: 'POST', signal })
 *     return readTokenResponse(response, { now })
 *   },
 * }
 * ```
 */
export interface Grant {
  /** A short name used in error messages, e.g. `"refresh_token"`. */
  readonly name: string
  /** The token endpoint URL; its origin is the default allow-list for attaching tokens. */
  readonly url?: string
  /** `false` for tokens that can never be renewed (static API tokens): a 401 is then final. */
  readonly refreshable?: boolean
  /**
   * Obtain a new token set. `current` is what storage holds now (read under the refresh lock),
   * `undefined` when nothing is stored. Return the new tokens: a `refreshToken` left out means
   * "keep the current one". Throw a `TokenError` to fail; throw one with code
   * `ERR_SESSION_ENDED` only when the server said the session is dead, which deletes storage.
   */
  request(current: StoredTokens | undefined, context: GrantContext): Promise<TokenSet>
  /** Best-effort revocation at logout (RFC 7009). Failures are reported as `error` events. */
  revoke?(tokens: StoredTokens, context: GrantContext): Promise<void>
  /** Values this grant holds that must never appear in an error message (secrets, passwords). */
  readonly secrets?: readonly string[]
  /**
   * `true` when the grant spends a refresh token that the server may rotate. Such a grant needs
   * storage that can coordinate (strong consistency or a lock); eventually consistent storage
   * alone (Cloudflare KV) is refused at setup.
   */
  readonly rotates?: boolean
}

/** What {@link TokenStorage.claim} hands back. */
export interface Claim {
  /** What storage holds now (read inside the claim, so never stale). */
  tokens: StoredTokens | undefined
  /** Present when this caller must refresh. */
  lease?: {
    /** Compare-and-set `next` over the claimed tokens' revision, and release; `false` when another writer came first. */
    commit(next: StoredTokens): Promise<boolean>
    /** Give the claim back without writing (the refresh failed). */
    release(): Promise<void>
  }
}

/** Options for {@link TokenStorage.withLock}. */
export interface LockOptions {
  /** Give up waiting for the lock after this many milliseconds (`ERR_LOCK_TIMEOUT`). */
  timeout?: number
}

/**
 * Where tokens live. An adapter is a plain object; compare-and-set and locking are optional
 * capabilities that the engine uses when present: with `withLock` the engine re-reads storage
 * inside the lock and adopts tokens another caller already refreshed; with `compareAndSet` a
 * write that lost a race is detected and the winner's tokens are adopted instead.
 */
export interface TokenStorage {
  /** Stable adapter name used in error messages, e.g. `"memory"`. */
  readonly name: string
  /** Which callers see the same data and how fast. */
  readonly flags: {
    /** `isolate`: one JS realm; `origin`: every tab of an origin; `global`: every process. */
    scope: 'isolate' | 'origin' | 'global'
    /** `eventual` when a write may take time to be seen elsewhere (Cloudflare KV: 60 s or more). */
    consistency: 'strong' | 'eventual'
  }
  /** Read the token set stored under `key`, or `undefined`. */
  get(key: string): Promise<StoredTokens | undefined>
  /** Write `value` under `key`, replacing what is there. */
  set(key: string, value: StoredTokens): Promise<void>
  /**
   * Remove what is stored under `key`. With `expectedRev`, only if the stored revision equals it
   * (atomically, where the backend can): the engine uses that to clean up a dead session without
   * deleting a sign-in that landed meanwhile. An adapter that ignores `expectedRev` deletes
   * unconditionally (every built-in adapter with `compareAndSet` honours it).
   */
  delete(key: string, expectedRev?: string): Promise<void>
  /**
   * Atomically write `next` only if the stored revision equals `expectedRev` (`undefined` means
   * "nothing stored"). Resolves `true` when written, `false` when another writer got there first.
   */
  compareAndSet?(key: string, expectedRev: string | undefined, next: StoredTokens): Promise<boolean>
  /** Run `fn` while holding an exclusive lock for `key`, shared by every caller within `flags.scope`. */
  withLock?<T>(key: string, fn: () => Promise<T>, options?: LockOptions): Promise<T>
  /**
   * One round trip in place of lock, re-read, commit and release, for a backend that can hold
   * callers itself (the Durable Object coordinator). Resolves with the tokens stored now and:
   * no `lease` when they are not the `stale` access token any more (someone refreshed: adopt
   * them); or a `lease` when this caller must refresh, other callers being held in the backend
   * until it commits or releases. Rejects with `ERR_LOCK_TIMEOUT` when held past `timeout`.
   */
  claim?(key: string, stale: string | undefined, options?: LockOptions): Promise<Claim>
  /**
   * Subscribe to writes made by other contexts (tabs, workers) to any key, with the revision
   * written (`undefined` for a delete, or when the backend does not say). The engine drops its
   * in-memory copy of that key, so the next request re-reads it; a read that already returned that
   * revision is kept. Returns an unsubscribe function.
   */
  watch?(listener: (key: string, rev?: string) => void): () => void
}
