/**
 * An exclusive lock per key within one JavaScript realm: a promise queue with a wait timeout.
 *
 * @module
 */
import { TokenError } from '../errors.js'
import type { LockOptions } from '../types.js'

/** A `withLock` function as {@link TokenStorage.withLock} describes it. */
export type WithLock = <T>(key: string, fn: () => Promise<T>, options?: LockOptions) => Promise<T>

/**
 * Create an in-realm lock: callers for the same key run one at a time, in arrival order.
 * A waiter that exceeds `timeout` (default 30000 ms) rejects with `ERR_LOCK_TIMEOUT` and
 * leaves the queue intact.
 */
export function createLocalLock(): WithLock {
  const tails = new Map<string, Promise<unknown>>()
  return async (key, fn, { timeout = 30_000 } = {}) => {
    const previous = tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>((resolve) => (release = resolve))
    const tail = previous.then(() => mine)
    tails.set(key, tail)
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      await Promise.race([
        previous,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new TokenError('ERR_LOCK_TIMEOUT', `Waited ${timeout} ms for the refresh lock on "${key}". Another refresh is stuck; check the token endpoint's latency.`)), timeout)
        }),
      ])
      return await fn()
    } finally {
      clearTimeout(timer)
      release()
      if (tails.get(key) === tail) tails.delete(key)
    }
  }
}
