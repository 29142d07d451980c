/**
 * A distributed lock built from a lease: acquire with a time-to-live, keep extending it while the
 * holder works (so a slow token endpoint never lets the lease lapse), release only if still the
 * owner. Used by the Redis and Durable Object adapters.
 *
 * @module
 */
import { TokenError } from '../errors.js'
import { newRev } from '../utils/async.js'
import type { WithLock } from './local-lock.js'

/** The three atomic operations a lease needs from a backend. */
export interface LeaseBackend {
  /** Take the lease if nobody holds it; `true` when taken. */
  acquire(name: string, owner: string, ttl: number): Promise<boolean>
  /** Extend the lease if `owner` still holds it; `false` when it was lost. */
  extend(name: string, owner: string, ttl: number): Promise<boolean>
  /** Give the lease back if `owner` still holds it. */
  release(name: string, owner: string): Promise<void>
  /**
   * Call `wake` when the lease on `name` may have become free (released, or the tokens behind it
   * committed); returns a function that stops listening. With it, waiters resume on the event and
   * poll only as a safety net; without it, they poll.
   */
  onRelease?(name: string, wake: () => void): () => void
}

/** Options for {@link createLeaseLock}. */
export interface LeaseLockOptions {
  /**
   * Lease length (ms). The holder extends it every third of this, so it lapses only when the
   * holder's process dies or stalls that long. Default 10000.
   */
  ttl?: number
  /** With `onRelease`: the longest wait between two attempts, in case an event is lost (ms). Default 1000. */
  safetyPoll?: number
}

/**
 * A `withLock` on a lease backend. Waiters resume when the backend announces a release
 * (`onRelease`), polling only as a safety net; a backend without events is polled (25 ms, backing
 * off to 250 ms). Either way a waiter gives up after `timeout` (`ERR_LOCK_TIMEOUT`). If a stalled
 * holder loses its lease anyway, the engine's compare-and-set commit still refuses to overwrite
 * newer tokens.
 */
export function createLeaseLock(backend: LeaseBackend, options: LeaseLockOptions = {}): WithLock {
  const { ttl = 10_000, safetyPoll = 1_000 } = options
  return async (key, fn, { timeout = 30_000 } = {}) => {
    const owner = newRev()
    const deadline = Date.now() + timeout
    let failures = 0
    // A backend error while competing for the lease (a busy database) is retried a few times.
    const tryAcquire = () => backend.acquire(key, owner, ttl).then((taken) => ((failures = 0), taken), (error: unknown) => {
      if (++failures > 5) throw error
      return false
    })
    // Listen before the first attempt, so a release between a failed attempt and the wait is not missed.
    let released = false
    let wake: (() => void) | undefined
    const stop = backend.onRelease?.(key, () => {
      released = true
      wake?.()
    })
    try {
      for (let wait = 25; ; wait = Math.min(wait * 2, 250)) {
        released = false
        if (await tryAcquire()) break
        const pause = stop ? safetyPoll : wait + Math.random() * wait
        const left = deadline - Date.now()
        if (left <= 0 || (!stop && pause > left)) {
          throw new TokenError('ERR_LOCK_TIMEOUT', `Waited ${timeout} ms for the refresh lock on "${key}". Another process holds it; check the token endpoint's latency.`)
        }
        if (released) continue
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(pause, left))
          wake = () => (clearTimeout(timer), resolve())
        })
        wake = undefined
      }
    } finally {
      stop?.()
    }
    const heartbeat = setInterval(() => void backend.extend(key, owner, ttl).catch(() => {}), ttl / 3)
    try {
      return await fn()
    } finally {
      clearInterval(heartbeat)
      await backend.release(key, owner).catch(() => {})
    }
  }
}
