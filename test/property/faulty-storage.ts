/**
 * One `memoryStorage()` shared by several engines (tabs / processes), each through its own view:
 * an adapter with the same interface (name, flags, get/set/delete/compareAndSet/withLock/watch)
 * whose every operation waits behind a scheduler gate and can be made to fail or hang.
 *
 * - Operations of one engine run in the order it issued them (one connection / one IndexedDB
 *   queue); operations of different engines interleave as the scheduler picks. Lock requests are
 *   gated too, but not queued behind the engine's data operations.
 * - An operation takes effect when its gate is released (its linearization point). A failing one
 *   takes no effect; a hanging one blocks its engine's queue until the end of the sequence, when
 *   it fails.
 * - `watch` tells the other views about every write and delete synchronously when it lands, like a
 *   BroadcastChannel that is never late: an engine can know about another's logout as soon as it
 *   happened.
 * - Every landed write/delete is reported to the checker (which session's tokens, which
 *   `logout()` of the engine was in progress when it issued it).
 */
import { memoryStorage, type StoredTokens, type TokenStorage } from '../../src/index.ts'
import type { Checker } from './invariants.ts'
import type { ModelServer } from './model-server.ts'
import type { Gate, Scheduler } from './scheduler.ts'

export type StorageOp = 'get' | 'set' | 'delete' | 'cas' | 'lock'
export const STORAGE_OPS: readonly StorageOp[] = ['get', 'set', 'delete', 'cas', 'lock']
export interface StorageFault {
  op: StorageOp
  mode: 'fail' | 'hang'
}

export class SharedStorage {
  readonly inner = memoryStorage()
  /** What storage holds, kept in step with `inner` at every landed operation. */
  readonly shadow = new Map<string, StoredTokens>()
  /** Faults for the next operations of a kind (first match wins). */
  readonly faults: StorageFault[] = []
  /** Per engine: the checker's indices of its logout() calls in progress (set by the harness). */
  readonly inLogout: number[][] = []
  private readonly listeners = new Map<number, Set<(key: string) => void>>()
  /** The engine holding the (single, shared) storage lock, and the writes it issued meanwhile. */
  private holder: { engine: number; pendingWrites: Set<number> } | undefined
  /** Per engine: reads issued so far, and callbacks waiting for the landing of read number n. */
  private readonly reads = new Map<number, { issued: number; onLanded: Map<number, (() => void)[]>; landed: Set<number> }>()

  private readonly scheduler: Scheduler
  private readonly checker: Checker
  private readonly server: ModelServer

  constructor(scheduler: Scheduler, checker: Checker, server: ModelServer) {
    this.scheduler = scheduler
    this.checker = checker
    this.server = server
  }

  familyOf(tokens: StoredTokens | undefined): string | undefined {
    if (!tokens) return undefined
    return this.server.familyOfRefresh(tokens.refreshToken) ?? this.server.familyOfAccess(tokens.accessToken)
  }

  /** The refresh token storage holds under `key` now. */
  stored(key: string): { family: string | undefined; rt: string | undefined } | undefined {
    const tokens = this.shadow.get(key)
    return tokens && { family: this.familyOf(tokens), rt: tokens.refreshToken }
  }

  private notify(engine: number, key: string): void {
    for (const [other, set] of this.listeners) {
      if (other === engine) continue
      for (const listener of set) {
        try {
          listener(key)
        } catch {}
      }
    }
  }

  private gated<T>(engine: number, op: StorageOp, label: string, run: () => Promise<T>, landed: (result: T) => void, failed: () => void = () => {}): Promise<T> {
    const index = this.faults.findIndex((fault) => fault.op === op)
    const fault = index === -1 ? undefined : this.faults.splice(index, 1)[0]
    return new Promise<T>((resolve, reject) => {
      const fail = () => {
        this.checker.note(`storage: engine ${engine} ${label} fails${fault ? ` (injected ${fault.mode})` : ''}`)
        failed()
        reject(new Error(`injected storage failure: ${op}`))
      }
      const gate: Gate = {
        id: this.scheduler.newId(),
        label: `e${engine} storage.${label}${fault ? ` [${fault.mode}]` : ''}`,
        queue: op === 'lock' ? undefined : `storage e${engine}`,
        hung: fault?.mode === 'hang',
        fire: () => {
          if (fault) return fail()
          run().then((result) => {
            landed(result)
            resolve(result)
          }, reject)
        },
        fail,
      }
      this.scheduler.add(gate)
    })
  }

  private writeCount = 0

  /**
   * A set or compare-and-set of `value`: reported when issued, when it lands (the session it
   * writes), when it fails, and when the engine lets go of the lock before it landed.
   */
  private write(engine: number, op: 'set' | 'cas', key: string, value: StoredTokens, run: (copy: StoredTokens) => Promise<boolean>): Promise<any> {
    const { checker } = this
    const copy = { ...value }
    const id = ++this.writeCount
    const what = `${op === 'set' ? 'set' : 'compare-and-set'} ${copy.refreshToken}`
    // A compare-and-set is a refresh commit: under the lock when its engine holds it.
    const hold = op === 'cas' && this.holder?.engine === engine ? this.holder : undefined
    hold?.pendingWrites.add(id)
    checker.writeIssued(id, engine, copy.refreshToken)
    return this.gated(
      engine,
      op,
      what,
      () => run(copy),
      (written) => {
        hold?.pendingWrites.delete(id)
        if (!written) return checker.note(`storage: engine ${engine} ${what} lost (storage changed since it read)`)
        this.shadow.set(key, copy)
        checker.storageWritten(engine, this.familyOf(copy), what, id)
        this.notify(engine, key)
      },
      () => {
        hold?.pendingWrites.delete(id)
        checker.writeFailed(id)
        const family = this.familyOf(copy)
        if (op === 'set' && family) checker.signInWriteFailed(family)
      },
    ).then((written) => (op === 'set' ? undefined : written))
  }

  /** Run `fn` holding the lock; writes still pending when it lets go were abandoned. */
  private async hold<T>(engine: number, fn: () => Promise<T>): Promise<T> {
    const hold = { engine, pendingWrites: new Set<number>() }
    this.holder = hold
    try {
      return await fn()
    } finally {
      if (this.holder === hold) this.holder = undefined
      for (const id of hold.pendingWrites) this.checker.writeAbandoned(id)
    }
  }

  /** How many reads engine `engine` has issued so far. */
  readsIssued(engine: number): number {
    return this.reads.get(engine)?.issued ?? 0
  }

  /** Run `callback` when read number `n` of engine `engine` lands (nothing if it already did). */
  onReadLanded(engine: number, n: number, callback: () => void): void {
    const reads = this.reads.get(engine)
    if (reads && n <= reads.issued && !reads.landed.has(n)) reads.onLanded.set(n, [...(reads.onLanded.get(n) ?? []), callback])
  }

  /** Whether read number `n` of engine `engine` is still in flight. */
  readPending(engine: number, n: number): boolean {
    const reads = this.reads.get(engine)
    return !!reads && n >= 1 && n <= reads.issued && !reads.landed.has(n)
  }

  /** The adapter engine `engine` uses. */
  view(engine: number): TokenStorage {
    const { inner, shadow, checker } = this
    this.inLogout[engine] = []
    return {
      name: 'faulty-memory',
      flags: { scope: 'origin', consistency: 'strong' },
      get: (key) => {
        const reads = this.reads.get(engine) ?? { issued: 0, onLanded: new Map(), landed: new Set<number>() }
        this.reads.set(engine, reads)
        const n = ++reads.issued
        return this.gated(engine, 'get', 'get', () => inner.get(key), (value) => {
          checker.note(`storage → engine ${engine} get: ${value ? `${this.checker.describeSession(this.familyOf(value))} ${value.refreshToken}` : 'empty'}`)
          reads.landed.add(n)
          for (const callback of reads.onLanded.get(n) ?? []) callback()
          reads.onLanded.delete(n)
        })
      },
      set: (key, value) => this.write(engine, 'set', key, value, (copy) => inner.set(key, copy).then(() => true)),
      delete: (key, expectedRev) => {
        // The logout() this delete was issued from, if any (the latest one in progress).
        const logout = this.inLogout[engine]?.at(-1)
        return this.gated(
          engine,
          'delete',
          'delete',
          () => inner.delete(key, expectedRev),
          () => {
            const before = shadow.get(key)
            // A conditional delete (the adapter contract) removes only the revision it names.
            if (expectedRev !== undefined && (before as { rev?: string } | undefined)?.rev !== expectedRev) return
            shadow.delete(key)
            checker.storageDeleted(engine, this.familyOf(before), logout)
            this.notify(engine, key)
          },
        )
      },
      compareAndSet: (key, expectedRev, next) => this.write(engine, 'cas', key, next, (copy) => inner.compareAndSet!(key, expectedRev, copy)),
      withLock: (key, fn, options) =>
        this.gated(engine, 'lock', 'lock', () => inner.withLock!(key, () => this.hold(engine, fn), options), () => {}),
      watch: (listener) => {
        const set = this.listeners.get(engine) ?? new Set()
        this.listeners.set(engine, set.add(listener))
        return () => set.delete(listener)
      },
    }
  }
}
