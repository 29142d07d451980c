/**
 * Web Locks (`navigator.locks`): an exclusive lock shared by every tab and worker of an origin.
 * The browser releases a lock when its holder's tab closes or crashes, so a dead tab cannot
 * deadlock the others.
 *
 * @module
 */
import { TokenError } from '../errors.js'
import type { WithLock } from './local-lock.js'

/** The part of `navigator.locks` we use (structural, so no DOM lib version is required). */
export interface LockManagerLike {
  request<T>(name: string, options: { signal?: AbortSignal }, callback: () => Promise<T>): Promise<T>
}

/** `navigator.locks` when this runtime has Web Locks, else `undefined`. */
export function webLocks(): LockManagerLike | undefined {
  return (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks
}

/**
 * A `withLock` backed by Web Locks under `prefix + key`. A waiter gives up after `timeout` ms
 * (default 30000) with `ERR_LOCK_TIMEOUT`; once granted, the lock is held until `fn` settles.
 */
export function createWebLock(locks: LockManagerLike, prefix: string): WithLock {
  return async (key, fn, { timeout = 30_000 } = {}) => {
    const signal = AbortSignal.timeout(timeout)
    try {
      return await locks.request(prefix + key, { signal }, fn)
    } catch (error) {
      if (signal.aborted && (error as Error)?.name !== 'TokenError' && error === signal.reason) {
        throw new TokenError('ERR_LOCK_TIMEOUT', `Waited ${timeout} ms for the cross-tab refresh lock on "${key}". Another tab is refreshing slowly or hung; try again.`, { cause: error })
      }
      throw error
    }
  }
}
