/**
 * The ky-agnostic engine: read → fresh? → refresh once (single flight, storage lock, re-read) →
 * commit (compare-and-set) → hand out the token. The ky hooks and `getAccessToken()` both use it.
 *
 * @module
 */
import { TokenError, isTokenError } from './errors.js'
import { rescuedRefreshToken, toTokenSet } from './grants/token-response.js'
import { memoryStorage } from './storage/memory.js'
import type { Grant, GrantContext, StoredTokens, TokenResponseBody, TokenSet, TokenStorage } from './types.js'
import { abortable, newRev } from './utils/async.js'

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
  /** The transport for token-endpoint calls (never routed through the ky hooks). Default `globalThis.fetch`. */
  fetch?: typeof fetch
  /** Give up waiting for another caller's refresh lock after this many ms. Default 30000. */
  lockTimeout?: number
  /** The clock (epoch ms). Default `Date.now`; inject one to simulate time in tests. */
  now?: () => number
  /**
   * Let concurrent callers in this isolate await one shared refresh promise. Default `true`,
   * except on Cloudflare Workers, where a promise created while serving one request must not be
   * awaited by another: there each caller takes the storage lock in turn, and every caller after
   * the first adopts the tokens the first one stored (still one token-endpoint call).
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
  /** A failure that did not reach a caller (failed proactive refresh with a still-valid token, failed revocation). */
  error: { key: string; error: unknown }
}

/** Options for `auth.getAccessToken()`. */
export interface GetTokenOptions {
  /** The token set to use. Default: the `key` option. */
  key?: string
  /** Stop waiting (the shared refresh itself goes on for the other callers). */
  signal?: AbortSignal
  /** Refresh even if the stored token still looks valid. */
  forceRefresh?: boolean
}

/** @internal The engine object the hooks drive. */
export type Session = ReturnType<typeof createSession>

/** @internal Build the engine. */
export function createSession(options: SessionOptions) {
  const { grant, storage = memoryStorage(), key: defaultKey = 'default', refreshBefore = 60_000, lockTimeout = 30_000 } = options
  if (!grant || typeof grant.request !== 'function') throw new TypeError('"grant" is required, e.g. refreshTokenGrant({ url }).')
  if (!Number.isFinite(refreshBefore) || refreshBefore < 0) throw new TypeError('"refreshBefore" must be a non-negative number of milliseconds.')
  const now = options.now ?? Date.now
  const fetcher: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const share = options.shareRefreshes ?? (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent !== 'Cloudflare-Workers'
  if (grant.rotates && storage.flags.consistency === 'eventual' && !storage.withLock) {
    throw new TypeError(
      `The "${storage.name}" storage is eventually consistent and cannot coordinate refresh-token rotation: two callers would spend the same refresh token and the server would revoke the session. Use a coordinating storage (e.g. durableObjectStorage()) for this grant.`,
    )
  }
  const cache = new Map<string, StoredTokens>()
  const flights = new Map<string, Promise<StoredTokens>>()
  const aborters = new Map<string, Set<AbortController>>()
  const epochs = new Map<string, number>()
  const epochOf = (key: string) => epochs.get(key) ?? 0
  // Token sets the server issued but storage failed to save, with the revision they replace.
  const unsavedTokens = new Map<string, { base: string | undefined; tokens: StoredTokens }>()
  const listeners = new Map<keyof SessionEvents, Set<(event: any) => void>>()

  const emit = <E extends keyof SessionEvents>(type: E, event: SessionEvents[E]) => {
    for (const listener of listeners.get(type) ?? []) {
      try {
        listener(event)
      } catch {}
    }
  }
  const fresh = (tokens: TokenSet) =>
    tokens.expiresAt === undefined ||
    now() < tokens.expiresAt - Math.min(refreshBefore, (tokens.expiresAt - tokens.receivedAt) / 2)
  const expired = (tokens: TokenSet) => tokens.expiresAt !== undefined && now() >= tokens.expiresAt
  const context = (signal: AbortSignal): GrantContext => ({ fetch: fetcher, signal, now })

  const guard = async <T>(operation: () => Promise<T>): Promise<T> => {
    try {
      return await operation()
    } catch (error) {
      if (isTokenError(error)) throw error
      throw new TokenError('ERR_STORAGE', `The "${storage.name}" token storage failed; nothing was overwritten. Check the storage backend.`, { cause: error })
    }
  }
  const read = (key: string) => guard(() => storage.get(key))
  const remember = (key: string, tokens: StoredTokens, cause: SessionEvents['tokens']['cause']) => {
    if (cache.get(key)?.rev === tokens.rev) return tokens
    cache.set(key, tokens)
    emit('tokens', { key, cause, ...(tokens.expiresAt !== undefined && { expiresAt: tokens.expiresAt }) })
    return tokens
  }
  const current = async (key: string) => cache.get(key) ?? (await read(key).then((stored) => stored && remember(key, stored, 'adopt')))

  // Write `next` unless someone else wrote since we read `expected`; then adopt theirs.
  const commit = async (key: string, expected: StoredTokens | undefined, next: StoredTokens, cause: 'refresh' | 'set') => {
    if (storage.compareAndSet) {
      if (!(await guard(() => storage.compareAndSet!(key, expected?.rev, next)))) {
        const winner = await read(key)
        if (winner) return remember(key, winner, 'adopt')
        throw new TokenError('ERR_LOGGED_OUT', 'The tokens were deleted by another caller (logout) while this refresh ran. Sign in again.')
      }
    } else {
      await guard(() => storage.set(key, next))
    }
    return remember(key, next, cause)
  }

  const endSession = async (key: string, stored: StoredTokens | undefined, error: TokenError) => {
    cache.delete(key)
    const latest = await read(key)
    if (latest && latest.rev !== stored?.rev) return // someone else already has a new session
    if (latest) await guard(() => storage.delete(key))
    emit('tokens', { key, cause: 'session-ended' })
    emit('sessionEnded', { key, error })
  }

  // Another tab or worker wrote this key: forget our copy so the next request re-reads it.
  storage.watch?.((key) => {
    if (cache.delete(key)) emit('tokens', { key, cause: 'remote' })
  })

  const loggedOut = () => new TokenError('ERR_LOGGED_OUT', 'auth.logout() ran while tokens were being refreshed; the result was discarded. Sign in again.')

  const runRefresh = async (key: string, stale: string | undefined): Promise<StoredTokens> => {
    const epoch = epochOf(key)
    const controller = new AbortController()
    const running = aborters.get(key) ?? new Set()
    aborters.set(key, running.add(controller))
    const work = async () => {
      // Re-read under the lock: another tab, isolate or process may have refreshed already.
      const read0 = await read(key)
      // Tokens a failed write left only in memory are newer than what storage holds: use them.
      const unsaved = unsavedTokens.get(key)
      const stored = unsaved && read0?.rev === unsaved.base ? unsaved.tokens : read0
      if (stored && stored.accessToken !== stale && !expired(stored)) return remember(key, stored, 'adopt')
      let tokens: TokenSet
      try {
        tokens = await grant.request(stored, context(controller.signal))
      } catch (error) {
        const rotated = rescuedRefreshToken(error)
        // Never lose a rotated refresh token; a failed save must not hide the original error.
        if (rotated && stored && epochOf(key) === epoch) await commit(key, read0, { ...stored, refreshToken: rotated, rev: newRev() }, 'refresh').catch(() => {})
        if (isTokenError(error, 'ERR_SESSION_ENDED')) {
          unsavedTokens.delete(key)
          await endSession(key, read0, error)
        }
        throw error
      }
      if (epochOf(key) !== epoch) throw loggedOut()
      const refreshToken = tokens.refreshToken ?? stored?.refreshToken
      const next: StoredTokens = { ...tokens, rev: newRev() }
      if (refreshToken) next.refreshToken = refreshToken
      let committed: StoredTokens
      try {
        committed = await commit(key, read0, next, 'refresh')
        unsavedTokens.delete(key)
      } catch (error) {
        if (!isTokenError(error, 'ERR_STORAGE')) throw error
        // The server has rotated; storage refused the result. Keep the new tokens in memory
        // (this engine goes on, and saves them on its next refresh) rather than lose them.
        unsavedTokens.set(key, { base: read0?.rev, tokens: next })
        committed = remember(key, next, 'refresh')
        emit('error', { key, error })
      }
      if (epochOf(key) !== epoch) {
        await guard(() => storage.delete(key)) // logout raced our write: it wins
        cache.delete(key)
        throw loggedOut()
      }
      if (committed === next) emit('refresh', { key, rotated: !!tokens.refreshToken && tokens.refreshToken !== stored?.refreshToken, ...(next.expiresAt !== undefined && { expiresAt: next.expiresAt }) })
      return committed
    }
    // Failures of the lock itself (backend down) are storage errors; failures inside pass as they are.
    let inside = false
    const inner = () => ((inside = true), work())
    try {
      return await (storage.withLock ? storage.withLock(key, inner, { timeout: lockTimeout }) : inner())
    } catch (error) {
      if (inside || isTokenError(error)) throw error
      throw new TokenError('ERR_STORAGE', `The "${storage.name}" token storage could not take the refresh lock; stored tokens are unchanged. Check the storage backend.`, { cause: error })
    } finally {
      running.delete(controller)
    }
  }

  /** One refresh per key at a time: later callers join the flight in progress. */
  const refresh = (key: string, stale: string | undefined, signal?: AbortSignal) => {
    if (!share) return abortable(runRefresh(key, stale), signal)
    let flight = flights.get(key)
    if (!flight) {
      const started: Promise<StoredTokens> = runRefresh(key, stale).finally(() => {
        if (flights.get(key) === started) flights.delete(key)
      })
      flights.set(key, (flight = started))
    }
    return abortable(flight, signal)
  }

  return {
    defaultKey,
    refreshable: grant.refreshable !== false,
    storage,
    emit,

    /** The cached token for `key` when it is fresh, synchronously (the hot path); else `undefined`. */
    peek(key: string): string | undefined {
      const tokens = grant.refreshable === false ? undefined : cache.get(key)
      return tokens && fresh(tokens) ? tokens.accessToken : undefined
    },

    async getAccessToken({ key = defaultKey, signal, forceRefresh = false }: GetTokenOptions = {}): Promise<string> {
      if (grant.refreshable === false) return (await grant.request(undefined, context(new AbortController().signal))).accessToken
      const tokens = await current(key)
      if (tokens && !forceRefresh && fresh(tokens)) return tokens.accessToken
      try {
        return (await refresh(key, tokens?.accessToken, signal)).accessToken
      } catch (error) {
        // A token inside its early-refresh window is still valid: a transient failure should not break this request.
        const transient = isTokenError(error) && ['ERR_TOKEN_ENDPOINT', 'ERR_TOKEN_ENDPOINT_UNREACHABLE', 'ERR_LOCK_TIMEOUT', 'ERR_TOKEN_RESPONSE_INVALID'].includes(error.code)
        if (tokens && !forceRefresh && transient && !expired(tokens) && cache.get(key) === tokens) {
          emit('error', { key, error })
          return tokens.accessToken
        }
        throw error
      }
    },

    /** After a 401 for `stale`: use a token someone else already obtained, or refresh once. */
    async renew(key: string, stale: string, signal?: AbortSignal): Promise<string> {
      const cached = cache.get(key)
      if (!flights.has(key) && cached && cached.accessToken !== stale && !expired(cached)) return cached.accessToken
      return (await refresh(key, stale, signal)).accessToken
    },

    async setTokens(input: TokenResponseBody | TokenSet, key = defaultKey): Promise<void> {
      let tokens: TokenSet
      if ('access_token' in input) tokens = toTokenSet(input, now())
      else {
        const { accessToken, expiresAt } = input as Partial<TokenSet>
        if (typeof accessToken !== 'string' || !accessToken || (expiresAt !== undefined && !Number.isFinite(expiresAt))) {
          throw new TypeError('setTokens() needs a token response ({ access_token, expires_in, … }) or a TokenSet with a non-empty accessToken.')
        }
        tokens = { ...(input as TokenSet), receivedAt: (input as TokenSet).receivedAt ?? now() }
      }
      const next: StoredTokens = { ...tokens, rev: newRev() }
      await guard(() => storage.set(key, next))
      remember(key, next, 'set')
    },

    async logout(key = defaultKey, revoke = true): Promise<void> {
      epochs.set(key, epochOf(key) + 1)
      unsavedTokens.delete(key)
      for (const controller of aborters.get(key) ?? []) controller.abort(loggedOut())
      const stored = cache.get(key) ?? (await read(key).catch(() => undefined))
      cache.delete(key)
      await guard(() => storage.delete(key))
      emit('tokens', { key, cause: 'logout' })
      if (revoke && stored && grant.revoke) {
        await grant.revoke(stored, context(AbortSignal.timeout(5_000))).catch((error: unknown) => emit('error', { key, error }))
      }
    },

    on<E extends keyof SessionEvents>(type: E, listener: (event: SessionEvents[E]) => void): () => void {
      const set = listeners.get(type) ?? new Set()
      listeners.set(type, set.add(listener))
      return () => set.delete(listener)
    },
  }
}
