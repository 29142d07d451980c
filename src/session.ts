/**
 * The ky-agnostic engine: read → fresh? → refresh once (single flight, storage lock, re-read) →
 * commit (compare-and-set) → hand out the token. The ky hooks and `getAccessToken()` both use it.
 *
 * Everything the engine knows about one token set lives in one {@link Slot}, created on first use
 * and dropped whole (logout, dispose). Every call carries a {@link Fence}: the slot's epoch and the
 * session id (`sid`) it started with. A call is only ever handed tokens of that same session; if
 * the session was logged out or replaced while it waited (on a lock, a storage read, another
 * caller's refresh), it ends with `ERR_LOGGED_OUT` instead.
 *
 * @module
 */
import { TokenError, isTokenError } from './errors.js'
import { rescuedRefreshToken, toTokenSet } from './grants/token-response.js'
import { memoryStorage } from './storage/memory.js'
import type { Grant, GrantContext, StoredTokens, TokenResponseBody, TokenSet, TokenStorage } from './types.js'
import { abortable, newRev } from './utils/async.js'
import { isAccessToken, isRefreshToken } from './utils/token-syntax.js'

/** Options shared by `createTokenAuth()` and the engine. */
export interface SessionOptions {
  /** Where tokens come from: `refreshTokenGrant()`, `clientCredentialsGrant()`, `jsonLoginGrant()`, `staticToken()` or your own. */
  grant: Grant
  /**
   * Where tokens live. Default: a new `memoryStorage()` (one isolate, lost on reload).
   * > [!WARNING]
   * > Browser storage is readable by any script on the origin; an XSS can read what it holds.
   */
  storage?: TokenStorage
  /** Which token set to use when a request does not name one (`context.authKey`). Default `"default"`. */
  key?: string
  /**
   * Refresh this many milliseconds before the access token expires. Default 60000 (60 seconds,
   * DokStamp's advice); Starship Rewards asks for 300000 (5 minutes). Never more than half the
   * token's lifetime, so short-lived tokens are not refreshed on every request.
   */
  refreshBefore?: number
  /**
   * The transport for token-endpoint calls (never routed through the ky hooks). Default
   * `globalThis.fetch`. Token calls pass `redirect: 'manual'` and treat any redirect as an error;
   * a custom fetch must honour that option.
   */
  fetch?: typeof fetch
  /** Give up waiting for another caller's refresh lock after this many ms. Default 30000. */
  lockTimeout?: number
  /**
   * Give up on one storage operation (read, write, delete, compare-and-set) after this many ms
   * (`ERR_STORAGE`). A storage call that never settles then fails this call only: later calls
   * try again. Default 10000.
   */
  storageTimeout?: number
  /** The clock (epoch ms). Default `Date.now`; inject one to simulate time in tests. */
  now?: () => number
  /**
   * How much of storage this engine keeps in memory. A backend-for-frontend holds one token set per
   * user session; memory stays bounded however many sessions pass through.
   */
  cache?: {
    /**
     * Token sets kept in memory at most (least recently used are dropped first, and re-read from
     * storage on their next use). A set with a refresh in flight, or holding a rotated refresh
     * token that storage failed to save, is never dropped. Default 10000.
     */
    maxKeys?: number
    /**
     * Serve a token set from memory for at most this many ms before reading storage again, so a
     * session deleted or replaced elsewhere stops being served even where storage cannot
     * announce it (`watch`). Default 60000 (1 minute).
     */
    ttl?: number
  }
  /**
   * Let concurrent callers in this isolate await one shared refresh promise. Default `true`,
   * except on Cloudflare Workers, where a promise created while serving one request must not be
   * awaited by another: there each caller goes to storage itself (a claim, or the lock in turn),
   * and every caller after the first adopts the tokens the first one stored (still one
   * token-endpoint call). Callers that find nothing in memory share one storage read only when
   * this is `true`.
   */
  shareRefreshes?: boolean
}

/** The events a session emits. Payloads never contain token values. */
export interface SessionEvents {
  /** The stored token set changed: set by the app, refreshed, adopted from another caller, or removed. */
  tokens: { key: string; cause: 'set' | 'refresh' | 'adopt' | 'logout' | 'session-ended' | 'remote'; expiresAt?: number }
  /** One token-endpoint call succeeded; `rotated` says whether a new refresh token was issued. */
  refresh: { key: string; rotated: boolean; expiresAt?: number }
  /** The server said the session is dead; stored tokens were deleted. Fired once per session. */
  sessionEnded: { key: string; error: TokenError }
  /** A failure that did not reach a caller (failed proactive refresh with a still-valid token, failed revocation, a failed write). */
  error: { key: string; error: unknown }
}

/** Options for `auth.getAccessToken()`. */
export interface GetTokenOptions {
  /** The token set to use. Default: the `key` option. */
  key?: string
  /** Stop waiting (the shared refresh itself goes on for the other callers). */
  signal?: AbortSignal
  /** Refresh even if the stored token still looks valid; also skips the backoff after a failed refresh. */
  forceRefresh?: boolean
}

/** Token-endpoint failures that start a backoff: callers share them instead of calling again. */
const ENDPOINT_FAILURES = new Set(['ERR_TOKEN_ENDPOINT', 'ERR_TOKEN_ENDPOINT_UNREACHABLE', 'ERR_TOKEN_RESPONSE_INVALID', 'ERR_INVALID_CLIENT'])
/** Backoff after consecutive failed refreshes: 1 s, 2 s, 4 s … up to 60 s; `Retry-After` up to 15 min wins. */
const BACKOFF_BASE = 1_000
const BACKOFF_MAX = 60_000
const RETRY_AFTER_MAX = 900_000
/** The `sid` of token sets a grant obtained from nothing (client credentials, a password login): the app's own identity. */
const GRANT_SESSION = 'grant'

/** @internal Everything the engine knows about one token set. */
export interface Slot {
  readonly key: string
  /** The last token set read or written: the in-memory copy the hot path serves. */
  tokens: StoredTokens | undefined
  /** The cached ticket for `tokens` (allocated once per token set, not per request). */
  ticket: Ticket | undefined
  /** This engine's refresh in flight, joined by callers of the same session. */
  flight: { sid: string | undefined; promise: Promise<StoredTokens> } | undefined
  /** Token-endpoint calls in flight; logout aborts them. */
  calls: Set<AbortController>
  /** Bumped by logout and setTokens: work begun under an older epoch hands out and stores nothing. */
  epoch: number
  /** What bumped the epoch last: a logout removes a refresh that committed after it; a new sign-in overwrites it. */
  closedBy?: 'logout' | 'replaced'
  /** Tokens the server issued that storage failed to save, with the revision they replace. */
  unsaved: { base: string | undefined; tokens: StoredTokens } | undefined
  /** When `tokens` was last read from or written to storage (epoch ms): the cache TTL counts from it. */
  readAt: number
  /** Counts `watch` notices for this key: a read that began before one may be stale, and is not cached. */
  seen: number
  /** The revision the last notice announced: a read that returned exactly it is current. */
  noticed?: string | undefined
  /** The session ended and its cleanup succeeded: the slot is dropped once idle. */
  ended?: boolean
  /** Why the session ended (the server's word): what later callers of that session get. */
  endedBy?: TokenError | undefined
  /** The storage read in flight for this key, shared by callers that find nothing in memory. */
  reading?: Promise<StoredTokens | undefined> | undefined
  /** The last failed refresh, shared by callers until `until` (epoch ms). */
  failure: { error: unknown; until: number; streak: number } | undefined
  /** A token set whose refresh token the server declared dead, while its storage cleanup is pending. */
  dead: { rev: string; refreshToken: string | undefined; error: TokenError } | undefined
}

/** @internal What a call started with: only tokens of this session may be handed to it. */
export interface Fence {
  readonly slot: Slot
  readonly epoch: number
  /** The session id of the tokens the call started with. */
  readonly sid: string | undefined
  /** Whether any tokens were stored when the call started. */
  readonly had: boolean
}

/** @internal Exclusive access for one refresh (see `hold`). */
interface Held {
  /** What storage held when access was granted. */
  read0: StoredTokens | undefined
  /** `false`: someone else refreshed meanwhile; adopt `read0`, never call the grant. */
  owned: boolean
  /** Commit through the claim (compare-and-set and release in one), when storage offers one. */
  commit?: (next: StoredTokens) => Promise<boolean>
}

/** @internal A token and the fence of the session it belongs to. */
export interface Ticket {
  readonly token: string
  readonly fence: Fence
}

/** @internal The engine object the hooks drive. */
export type Session = ReturnType<typeof createSession>

/** @internal Build the engine. */
export function createSession(options: SessionOptions) {
  const { grant, storage = memoryStorage(), key: defaultKey = 'default', refreshBefore = 60_000, lockTimeout = 30_000, storageTimeout = 10_000 } = options
  const { maxKeys = 10_000, ttl: cacheTtl = 60_000 } = options.cache ?? {}
  if (!grant || typeof grant.request !== 'function') throw new TypeError('"grant" is required, e.g. refreshTokenGrant({ url }).')
  if (!Number.isFinite(refreshBefore) || refreshBefore < 0) throw new TypeError('"refreshBefore" must be a non-negative number of milliseconds.')
  for (const [name, value] of [['lockTimeout', lockTimeout], ['storageTimeout', storageTimeout], ['cache.maxKeys', maxKeys], ['cache.ttl', cacheTtl]] as const) {
    if (!Number.isFinite(value) || value <= 0) throw new TypeError(`"${name}" must be a positive number${name === 'cache.maxKeys' ? '' : ' of milliseconds'}.`)
  }
  const now = options.now ?? Date.now
  const fetcher: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const share = options.shareRefreshes ?? (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent !== 'Cloudflare-Workers'
  const refreshable = grant.refreshable !== false
  if (grant.rotates && storage.flags.consistency === 'eventual' && !storage.withLock && !storage.claim) {
    throw new TypeError(
      `The "${storage.name}" storage is eventually consistent and cannot coordinate refresh-token rotation: two callers would spend the same refresh token and the server would revoke the session. Use a coordinating storage (e.g. durableObjectStorage()) for this grant.`,
    )
  }
  if (grant.rotates && storage.flags.scope !== 'isolate' && !storage.withLock && !storage.claim) {
    throw new TypeError(
      `The "${storage.name}" storage is shared (scope "${storage.flags.scope}") but has neither withLock() nor claim(): two tabs or processes would spend the same refresh token and the server would revoke the session. Give the adapter a lock (see TokenStorage.withLock) for this grant.`,
    )
  }
  const slots = new Map<string, Slot>()
  const listeners = new Map<keyof SessionEvents, Set<(event: any) => void>>()
  let disposed = false

  // ---- small pieces --------------------------------------------------------------------------
  // `slots` is kept in least-recently-used order (a used slot moves to the end); past `maxKeys`
  // the oldest idle ones are dropped whole and re-read from storage when next used.
  let lastUsed: Slot | undefined
  const touch = (slot: Slot) => {
    if (lastUsed === slot) return
    lastUsed = slot
    if (slots.get(slot.key) === slot) (slots.delete(slot.key), slots.set(slot.key, slot))
  }
  const idle = (slot: Slot) => !slot.flight && slot.calls.size === 0 && !slot.unsaved && !slot.dead
  const slotOf = (key: string): Slot => {
    let slot = slots.get(key)
    if (!slot) {
      slots.set(key, (slot = { key, tokens: undefined, ticket: undefined, flight: undefined, calls: new Set(), epoch: 0, unsaved: undefined, failure: undefined, dead: undefined, readAt: 0, seen: 0 }))
      if (slots.size > maxKeys) {
        for (const [oldKey, old] of slots) {
          if (slots.size <= maxKeys) break
          if (old !== slot && idle(old)) slots.delete(oldKey)
        }
      }
    }
    touch(slot)
    return slot
  }
  /** Drop `slot` from memory if it is still the one for its key (logout, session end). */
  const release = (slot: Slot) => {
    if (slots.get(slot.key) === slot) slots.delete(slot.key)
    if (lastUsed === slot) lastUsed = undefined
  }
  const emit = <E extends keyof SessionEvents>(type: E, event: SessionEvents[E]) => {
    for (const listener of listeners.get(type) ?? []) {
      try {
        listener(event)
      } catch {}
    }
  }
  const fresh = (tokens: TokenSet) =>
    tokens.expiresAt === undefined ||
    now() < tokens.expiresAt - Math.min(refreshBefore, Math.max(0, (tokens.expiresAt - (tokens.receivedAt ?? tokens.expiresAt)) / 2))
  const expired = (tokens: TokenSet) => tokens.expiresAt !== undefined && now() >= tokens.expiresAt
  const context = (signal: AbortSignal): GrantContext => ({ fetch: fetcher, signal, now })
  const loggedOut = (key: string) =>
    new TokenError('ERR_LOGGED_OUT', `The session this call started in ended while it waited (auth.logout() or a new sign-in for "${key}", here or in another tab or process); nothing was sent with another session's token. Sign in again.`)
  const assertLive = () => {
    if (disposed) throw new TokenError('ERR_DISPOSED', 'This auth instance was disposed (auth.dispose()); create a new one with createTokenAuth().')
  }

  // Every storage call is bounded: one that never settles fails this call, not the key forever.
  const bounded = <T>(what: string, operation: () => Promise<T>, ms = storageTimeout): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined
    return Promise.race([
      Promise.resolve().then(operation),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TokenError('ERR_STORAGE', `The "${storage.name}" token storage did not answer a ${what} within ${ms} ms; nothing was overwritten. Check the storage backend (or raise "storageTimeout").`)), ms)
      }),
    ]).then(
      (value) => (clearTimeout(timer), value),
      (error: unknown) => {
        clearTimeout(timer)
        if (isTokenError(error)) throw error
        throw new TokenError('ERR_STORAGE', `The "${storage.name}" token storage failed (${what}); nothing was overwritten. Check the storage backend.`, { cause: error })
      },
    )
  }
  const read = async (key: string) => validate(await bounded('read', () => storage.get(key)), storage.name)
  const remember = (slot: Slot, tokens: StoredTokens, cause: SessionEvents['tokens']['cause'], seen?: number) => {
    // Another context wrote this key after our read began: hand the value to this call only.
    if (seen !== undefined && slot.seen !== seen && tokens.rev !== slot.noticed) return tokens
    slot.readAt = now()
    slot.ended = false
    slot.endedBy = undefined
    if (slot.tokens?.rev === tokens.rev) return slot.tokens // the same revision: keep one object (identity is compared)
    slot.tokens = tokens
    slot.ticket = undefined
    emit('tokens', { key: slot.key, cause, ...(tokens.expiresAt !== undefined && { expiresAt: tokens.expiresAt }) })
    return tokens
  }
  const forget = (slot: Slot) => {
    slot.tokens = undefined
    slot.ticket = undefined
  }
  const ticketOf = (slot: Slot, tokens: StoredTokens): Ticket => {
    if (slot.tokens === tokens && slot.ticket) return slot.ticket
    const ticket: Ticket = { token: tokens.accessToken, fence: { slot, epoch: slot.epoch, sid: tokens.sid, had: true } }
    if (slot.tokens === tokens) slot.ticket = ticket
    return ticket
  }

  /** Refuse tokens that do not belong to the session `fence` started in. */
  const admit = (fence: Fence, tokens: StoredTokens | undefined): StoredTokens => {
    if (fence.slot.epoch !== fence.epoch) throw loggedOut(fence.slot.key)
    if (!tokens) throw fence.had ? loggedOut(fence.slot.key) : missing()
    if (fence.had ? tokens.sid !== fence.sid : tokens.sid !== GRANT_SESSION) throw fence.had ? loggedOut(fence.slot.key) : missing()
    return tokens
  }
  const missing = () => new TokenError('ERR_TOKEN_MISSING', 'No tokens were stored for this key when this call began. Sign the user in, then call auth.setTokens() with the token response.')

  // ---- storage steps ---------------------------------------------------------------------------
  /** The slot's tokens: the in-memory copy, else storage (validated; a known-dead set is refused). */
  const current = async (slot: Slot): Promise<StoredTokens | undefined> => {
    if (slot.tokens && now() - slot.readAt < cacheTtl) return slot.tokens
    // Callers of this isolate that find nothing in memory at once share one read (not on Workers).
    if (share && slot.reading) return slot.reading
    const reading = (async () => {
      const { epoch, seen } = slot
      const read0 = await read(slot.key)
      if (slot.epoch !== epoch) throw loggedOut(slot.key)
      const stored = await usable(slot, read0)
      if (!stored && slot.seen === seen) forget(slot)
      return stored && remember(slot, stored, 'adopt', seen)
    })()
    if (share) {
      slot.reading = reading
      void reading.then(() => {}, () => {}).then(() => {
        if (slot.reading === reading) slot.reading = undefined
      })
    }
    return reading
  }

  // Write `next` unless someone else wrote since we read `expected`; then adopt theirs.
  const commit = async (slot: Slot, expected: StoredTokens | undefined, next: StoredTokens, cause: 'refresh' | 'set', held?: Held) => {
    const cas = held?.commit ?? (storage.compareAndSet && ((value: StoredTokens) => storage.compareAndSet!(slot.key, expected?.rev, value)))
    if (cas) {
      if (!(await bounded('compare-and-set', () => cas(next)))) {
        const winner = await read(slot.key)
        if (winner) return remember(slot, winner, 'adopt')
        throw loggedOut(slot.key)
      }
    } else {
      await bounded('write', () => storage.set(slot.key, next))
    }
    return remember(slot, next, cause)
  }

  /** Save tokens the server issued; if storage refuses, keep them in memory (never lost) and report. */
  const keep = async (slot: Slot, base: StoredTokens | undefined, next: StoredTokens, held?: Held, seen?: number): Promise<StoredTokens> => {
    try {
      const committed = await commit(slot, base, next, 'refresh', held)
      slot.unsaved = undefined
      return committed
    } catch (error) {
      if (!isTokenError(error, 'ERR_STORAGE')) throw error
      slot.unsaved = { base: base?.rev, tokens: next }
      emit('error', { key: slot.key, error })
      // Served from memory only while nobody else wrote the key meanwhile (a new sign-in elsewhere).
      return remember(slot, next, 'refresh', seen)
    }
  }

  const isDead = (slot: Slot, tokens: StoredTokens) =>
    !!slot.dead && (tokens.rev === slot.dead.rev || (!!tokens.refreshToken && tokens.refreshToken === slot.dead.refreshToken))

  /** The server said the refresh token is dead: forget, delete, announce. A failed cleanup is retried on next access. */
  const endSession = async (slot: Slot, presented: StoredTokens | undefined, inStorage: StoredTokens | undefined, error: TokenError) => {
    forget(slot)
    slot.unsaved = undefined
    slot.dead = { rev: inStorage?.rev ?? '', refreshToken: presented?.refreshToken, error }
    slot.endedBy = error
    try {
      const latest = await read(slot.key)
      // Only the dead set: a sign-in that landed meanwhile (here or elsewhere) stays.
      if (latest && isDead(slot, latest)) await bounded('delete', () => storage.delete(slot.key, latest.rev))
      slot.dead = undefined // deleted, or storage already holds another session
      slot.ended = true // nothing left to remember: dropped once its refresh settles
    } catch (cleanup) {
      emit('error', { key: slot.key, error: cleanup })
    }
    emit('tokens', { key: slot.key, cause: 'session-ended' })
    emit('sessionEnded', { key: slot.key, error })
  }
  /**
   * What storage returned, as the engine may use it: tokens a failed write left only in memory are
   * newer than what storage holds (use them); a set the server declared dead is refused (again).
   */
  const usable = async (slot: Slot, read0: StoredTokens | undefined): Promise<StoredTokens | undefined> => {
    const stored = slot.unsaved && read0?.rev === slot.unsaved.base ? slot.unsaved.tokens : read0
    if (stored && isDead(slot, stored)) throw await buryAgain(slot, stored)
    return stored
  }
  const buryAgain = async (slot: Slot, stored: StoredTokens): Promise<TokenError> => {
    const dead = slot.dead!
    try {
      await bounded('delete', () => storage.delete(slot.key, stored.rev))
      slot.dead = undefined
    } catch (cleanup) {
      emit('error', { key: slot.key, error: cleanup })
    }
    return dead.error
  }

  /** Hold the storage lock (bounded even if the backend never answers) while `work` runs. */
  const locked = <T>(slot: Slot, work: () => Promise<T>): Promise<T> => {
    if (!storage.withLock) return work()
    let started = false
    let abandoned = false
    let timer: ReturnType<typeof setTimeout> | undefined
    let settled!: (outcome: Promise<T>) => void
    const inside = new Promise<T>((resolve) => (settled = resolve as never))
    const held = storage.withLock(slot.key, () => {
      if (abandoned) return Promise.reject(new Error('abandoned'))
      started = true
      clearTimeout(timer)
      const running = work()
      settled(running) // the caller resumes when the work is done, not when a slow release finishes
      return running
    }, { timeout: lockTimeout })
    const giveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (started) return
        abandoned = true
        reject(new TokenError('ERR_LOCK_TIMEOUT', `The "${storage.name}" storage did not grant the refresh lock on "${slot.key}" within ${lockTimeout + storageTimeout} ms; stored tokens are unchanged. Check the storage backend.`))
      }, lockTimeout + storageTimeout)
    })
    return Promise.race([
      inside,
      giveUp,
      held.catch((error: unknown) => {
        clearTimeout(timer)
        if (started || isTokenError(error)) throw error
        throw new TokenError('ERR_STORAGE', `The "${storage.name}" token storage could not take the refresh lock; stored tokens are unchanged. Check the storage backend.`, { cause: error })
      }),
    ])
  }

  /**
   * Exclusive access for one refresh: the storage lock and a re-read inside it, or, where the
   * backend can hold callers (`claim`), one round trip that either hands back tokens someone else
   * already refreshed (`owned: false`) or grants the refresh and commits it with the release.
   */
  const hold = <T>(slot: Slot, stale: string | undefined, work: (held: Held) => Promise<T>): Promise<T> => {
    if (!storage.claim) return locked(slot, async () => work({ read0: await read(slot.key), owned: true }))
    return (async () => {
      const claim = await bounded('claim', () => storage.claim!(slot.key, stale, { timeout: lockTimeout }), lockTimeout + storageTimeout)
      const { lease } = claim
      let released = !lease
      try {
        const read0 = validate(claim.tokens, storage.name)
        if (!lease) return await work({ read0, owned: false })
        return await work({ read0, owned: true, commit: (next) => ((released = true), lease.commit(next)) })
      } finally {
        if (!released) await bounded('release', () => lease!.release()).catch(() => {})
      }
    })()
  }

  // ---- the refresh -----------------------------------------------------------------------------
  /** Under the lock: re-read, adopt what someone else already got, or call the grant and commit. */
  const runRefresh = (fence: Fence, stale: string | undefined): Promise<StoredTokens> => {
    const { slot, epoch } = fence
    const { seen } = slot
    const fenced = () => {
      if (slot.epoch !== epoch) throw loggedOut(slot.key)
    }
    fenced()
    return hold(slot, stale, async (held) => {
      const { read0 } = held
      fenced()
      const stored = await usable(slot, read0)
      // Someone else's session now (logout + sign-in elsewhere): not ours to refresh.
      if (stored && fence.had && stored.sid !== fence.sid) return stored
      // Nothing stored any more: the session this call started in ended (the server said so) or was logged out.
      if (!stored && fence.had) throw slot.endedBy && slot.epoch === fence.epoch ? slot.endedBy : loggedOut(slot.key)
      if (stored && ((stored.accessToken !== stale && !expired(stored)) || !held.owned)) return remember(slot, stored, 'adopt', seen)
      if (!held.owned) throw missing()
      const controller = new AbortController()
      slot.calls.add(controller)
      let tokens: TokenSet
      try {
        tokens = await grant.request(stored, context(controller.signal))
      } catch (error) {
        await afterFailure(slot, epoch, read0, stored, error, held, seen)
        throw error
      } finally {
        slot.calls.delete(controller)
      }
      fenced()
      const next: StoredTokens = { ...tokens, rev: newRev() }
      const sid = stored ? stored.sid : GRANT_SESSION
      if (sid !== undefined) next.sid = sid
      const refreshToken = tokens.refreshToken ?? stored?.refreshToken
      if (refreshToken) next.refreshToken = refreshToken
      const committed = await keep(slot, read0, next, held, seen)
      if (slot.epoch !== epoch) {
        // A logout raced our write: it wins (only our write is removed, never a sign-in that followed
        // it). A new sign-in overwrites it by itself, and if that write fails the session goes on.
        if (slot.closedBy === 'logout') await bounded('delete', () => storage.delete(slot.key, committed.rev)).catch(() => {})
        throw loggedOut(slot.key)
      }
      slot.failure = undefined
      if (committed === next) emit('refresh', { key: slot.key, rotated: !!tokens.refreshToken && tokens.refreshToken !== stored?.refreshToken, ...(next.expiresAt !== undefined && { expiresAt: next.expiresAt }) })
      return committed
    })
  }

  /** A failed grant call: save a rotated refresh token it carried, end a dead session, start the backoff. */
  const afterFailure = async (slot: Slot, epoch: number, read0: StoredTokens | undefined, stored: StoredTokens | undefined, error: unknown, held: Held, seen: number) => {
    if (slot.epoch !== epoch) return
    const rotated = rescuedRefreshToken(error)
    let inStorage = read0
    if (rotated && stored) {
      const rescued = await keep(slot, read0, { ...stored, refreshToken: rotated, rev: newRev() }, held, seen).catch(() => undefined)
      if (rescued && !slot.unsaved) inStorage = rescued
    }
    if (isTokenError(error, 'ERR_SESSION_ENDED')) return endSession(slot, stored, inStorage, error)
    if (isTokenError(error) && ENDPOINT_FAILURES.has(error.code)) {
      const streak = (slot.failure?.streak ?? 0) + 1
      const backoff = Math.min(BACKOFF_BASE * 2 ** (streak - 1), BACKOFF_MAX)
      const asked = error.retryAfter !== undefined ? Math.min(error.retryAfter * 1000, RETRY_AFTER_MAX) : 0
      slot.failure = { error, until: now() + Math.max(backoff, asked), streak }
    }
  }

  /** One refresh per session at a time: later callers of the same session join the flight in progress. */
  const refresh = async (fence: Fence, stale: string | undefined, signal: AbortSignal | undefined, force: boolean): Promise<Ticket> => {
    const { slot } = fence
    if (slot.failure && !force && now() < slot.failure.until) throw slot.failure.error
    if (slot.epoch !== fence.epoch) throw loggedOut(slot.key)
    // A session that ended (or was logged out) leaves nothing behind in memory once idle.
    const settle = () => {
      if (slot.ended && !slot.tokens && idle(slot)) release(slot)
    }
    let promise: Promise<StoredTokens>
    if (!share) promise = runRefresh(fence, stale).finally(settle)
    else if (slot.flight && slot.flight.sid === fence.sid) promise = slot.flight.promise
    else {
      const flight: NonNullable<Slot['flight']> = {
        sid: fence.sid,
        promise: runRefresh(fence, stale).finally(() => {
          if (slot.flight === flight) slot.flight = undefined
          settle()
        }),
      }
      slot.flight = flight
      promise = flight.promise
    }
    const tokens = admit(fence, await abortable(promise, signal))
    return ticketOf(slot, tokens)
  }

  /** Start a call: the slot and what it holds now. */
  // setTokens() and logout() of one key take effect in call order, and a call that starts while one
  // is under way waits for it: storage and memory never disagree about which session is current.
  const writes = new Map<string, Promise<void>>()
  const logouts = new Map<string, number>()
  /** The session id of the latest sign-in of each key still under way. */
  const signIns = new Map<string, string>()
  const serial = <T>(key: string, operation: () => Promise<T>): Promise<T> => {
    const run = (writes.get(key) ?? Promise.resolve()).then(operation)
    const tail = run.then(() => {}, () => {})
    writes.set(key, tail)
    void tail.then(() => {
      if (writes.get(key) === tail) writes.delete(key)
    })
    return run
  }

  const begin = async (key: string): Promise<{ fence: Fence; tokens: StoredTokens | undefined }> => {
    assertLive()
    const pending = writes.get(key)
    // A call that starts while its session is being logged out belongs to that session: it ends
    // with it, rather than picking up whatever sign-in comes next. One that starts during a
    // sign-in belongs to that sign-in: if it failed, the call fails too.
    const loggingOut = pending !== undefined && (logouts.get(key) ?? 0) > 0
    const signingIn = pending === undefined ? undefined : signIns.get(key)
    if (pending) await pending
    if (loggingOut) throw loggedOut(key)
    const slot = slotOf(key)
    const epoch = slot.epoch
    const tokens = await current(slot)
    if (slot.epoch !== epoch || (signingIn !== undefined && tokens?.sid !== signingIn)) throw loggedOut(key)
    return { fence: { slot, epoch, sid: tokens?.sid, had: !!tokens }, tokens }
  }

  // Another tab or worker wrote this key: forget our copy so the next request re-reads it.
  const unwatch = storage.watch?.((key, rev) => {
    const slot = slots.get(key)
    if (!slot || (rev !== undefined && slot.tokens?.rev === rev)) return // we already hold what was written
    slot.seen++
    slot.noticed = rev
    if (slot.tokens) {
      forget(slot)
      emit('tokens', { key, cause: 'remote' })
    }
  })
  // Errors already reported as `error` events (a shared backoff failure is reported once).
  const reported = new WeakSet<object>()

  // ---- the engine's surface ------------------------------------------------------------------
  return {
    defaultKey,
    refreshable,
    storage,
    emit,

    /**
     * A fresh cached ticket for `key`, synchronously (the hot path); else `undefined`. While a
     * refresh of that key is in flight there is none: the caller waits for the new token instead
     * of sending the one being replaced (and collecting a 401 of its own).
     */
    peek(key: string): Ticket | undefined {
      if (!refreshable || disposed) return undefined
      const slot = slots.get(key)
      const tokens = slot?.tokens
      if (!tokens || slot.flight || !fresh(tokens) || now() - slot.readAt >= cacheTtl) return undefined
      touch(slot)
      return ticketOf(slot, tokens)
    },

    /** A valid token and the session it belongs to; refreshes (once, shared) when needed. */
    async obtain({ key = defaultKey, signal, forceRefresh = false }: GetTokenOptions = {}): Promise<Ticket> {
      if (!refreshable) {
        assertLive()
        const slot = slotOf(key)
        const { accessToken } = await grant.request(undefined, context(new AbortController().signal))
        return { token: accessToken, fence: { slot, epoch: slot.epoch, sid: undefined, had: true } }
      }
      const { fence, tokens } = await begin(key)
      const inFlight = fence.slot.flight?.sid === fence.sid && share
      if (tokens && !forceRefresh && fresh(tokens) && !inFlight) return ticketOf(fence.slot, tokens)
      try {
        return await refresh(fence, tokens?.accessToken, signal, forceRefresh)
      } catch (error) {
        // A token inside its early-refresh window is still valid: a transient failure should not break this request.
        const transient = isTokenError(error) && (ENDPOINT_FAILURES.has(error.code) || error.code === 'ERR_LOCK_TIMEOUT') && error.code !== 'ERR_INVALID_CLIENT'
        if (tokens && !forceRefresh && transient && !expired(tokens) && fence.slot.tokens?.rev === tokens.rev && fence.slot.epoch === fence.epoch) {
          if (!reported.has(error)) (reported.add(error), emit('error', { key, error }))
          return ticketOf(fence.slot, tokens)
        }
        throw error
      }
    },

    /** After a 401 for the token of `ticket`: use a token someone else already obtained, or refresh once. */
    async renew(ticket: Ticket, signal?: AbortSignal): Promise<Ticket> {
      assertLive()
      const { fence } = ticket
      const { slot } = fence
      if (slot.epoch !== fence.epoch) throw loggedOut(slot.key)
      const cached = slot.tokens
      if (!slot.flight && cached && cached.accessToken !== ticket.token && !expired(cached)) return ticketOf(slot, admit(fence, cached))
      return refresh(fence, ticket.token, signal, false)
    },

    async setTokens(input: TokenResponseBody | TokenSet, key = defaultKey): Promise<void> {
      assertLive()
      let tokens: TokenSet
      if ('access_token' in input) tokens = toTokenSet(input, now())
      else {
        const { accessToken, refreshToken, expiresAt, receivedAt } = input as Partial<TokenSet>
        if (
          !isAccessToken(accessToken) ||
          (refreshToken !== undefined && !isRefreshToken(refreshToken)) ||
          (expiresAt !== undefined && !Number.isFinite(expiresAt)) ||
          (receivedAt !== undefined && !Number.isFinite(receivedAt))
        ) {
          throw new TypeError('setTokens() needs a token response ({ access_token, expires_in, … }) or a TokenSet with a valid accessToken (RFC 6750 token characters), if any a printable refreshToken, and epoch-ms numbers for expiresAt and receivedAt.')
        }
        tokens = { ...(input as TokenSet), receivedAt: (input as TokenSet).receivedAt ?? now() }
      }
      // A sign-in starts a new session: calls still waiting on the old one end with ERR_LOGGED_OUT.
      const sid = newRev()
      const next: StoredTokens = { ...tokens, rev: newRev(), sid }
      close(slotOf(key), 'replaced')
      signIns.set(key, sid)
      const done = () => {
        if (signIns.get(key) === sid) signIns.delete(key)
      }
      return serial(key, async () => {
        const slot = slotOf(key)
        close(slot, 'replaced')
        slot.failure = undefined
        slot.dead = undefined
        slot.unsaved = undefined
        try {
          await bounded('write', () => storage.set(key, next))
          remember(slot, next, 'set')
        } finally {
          done()
        }
      })
    },

    async logout(key = defaultKey, revoke = true): Promise<void> {
      assertLive()
      // Fence at once: every call begun before this one ends with ERR_LOGGED_OUT.
      const first = slotOf(key)
      const known = first.unsaved?.tokens ?? first.tokens
      close(first, 'logout')
      logouts.set(key, (logouts.get(key) ?? 0) + 1)
      const done = () => (logouts.get(key) === 1 ? logouts.delete(key) : logouts.set(key, logouts.get(key)! - 1))
      const stored = await serial(key, async () => {
        const slot = slotOf(key)
        const cached = slot.unsaved?.tokens ?? slot.tokens ?? known
        close(slot, 'logout')
        release(slot) // dropped whole; waiting calls hold the old slot and see its epoch move
        let stored = cached ?? (await read(key).catch(() => undefined))
        // A copy without its refresh token (a read cache keeps none) cannot be revoked: read the
        // full set where the adapter keeps it, under its lock.
        if (revoke && grant.revoke && stored && !stored.refreshToken) stored = await locked(slot, () => read(key)).catch(() => stored)
        try {
          await bounded('delete', () => storage.delete(key))
        } finally {
          done()
        }
        emit('tokens', { key, cause: 'logout' })
        return stored
      })
      // Revocation is best-effort and runs after the key is free again: calls and sign-ins that
      // come next do not wait for the authorization server.
      if (revoke && stored && grant.revoke) {
        await grant.revoke(stored, context(AbortSignal.timeout(5_000))).catch((error: unknown) => emit('error', { key, error }))
      }
    },

    on<E extends keyof SessionEvents>(type: E, listener: (event: SessionEvents[E]) => void): () => void {
      const set = listeners.get(type) ?? new Set()
      listeners.set(type, set.add(listener))
      return () => set.delete(listener)
    },

    /** Stop listening to storage and drop every slot; refreshes in flight finish and commit. Idempotent. */
    dispose(): void {
      if (disposed) return
      disposed = true
      unwatch?.()
      // Refreshes in flight finish and commit: the server may already have rotated, and a refresh
      // token lost to a shutdown would end the session everywhere. Nothing new starts.
      slots.clear()
      lastUsed = undefined
      listeners.clear()
    },
  }

  /** End everything in flight for `slot`: bump the epoch, abort token calls, forget the tokens. */
  function close(slot: Slot, why: NonNullable<Slot['closedBy']>) {
    slot.epoch++
    slot.closedBy = why
    for (const controller of slot.calls) controller.abort(loggedOut(slot.key))
    slot.calls.clear()
    slot.flight = undefined
    slot.reading = undefined
    forget(slot)
  }

}

/**
 * @internal A stored value as the engine may use it, or `ERR_STORAGE` naming what is wrong.
 * Anything that is not a token set (a string, `{}`, a null or numeric token, a token that is not a
 * valid header value) is refused, never sent.
 */
export function validate(value: unknown, storageName: string): StoredTokens | undefined {
  if (value === undefined || value === null) return undefined
  const record = value as Partial<Record<keyof StoredTokens, unknown>>
  const problem =
    typeof value !== 'object' || Array.isArray(value) ? `a ${Array.isArray(value) ? 'array' : typeof value}`
    : !isAccessToken(record.accessToken) ? 'no valid "accessToken"'
    : typeof record.rev !== 'string' ? 'no "rev"'
    : record.refreshToken !== undefined && !isRefreshToken(record.refreshToken) ? 'an invalid "refreshToken"'
    : record.expiresAt !== undefined && !Number.isFinite(record.expiresAt) ? 'a non-numeric "expiresAt"'
    : record.receivedAt !== undefined && !Number.isFinite(record.receivedAt) ? 'a non-numeric "receivedAt"'
    : record.sid !== undefined && typeof record.sid !== 'string' ? 'a non-string "sid"'
    : undefined
  if (problem) {
    throw new TokenError('ERR_STORAGE', `The "${storageName}" token storage returned something that is not a token set (${problem}); it was not used. Check what else writes to this key, or replace it with auth.setTokens() or auth.logout().`)
  }
  return value as StoredTokens
}
