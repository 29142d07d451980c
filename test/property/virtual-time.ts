/**
 * Deterministic time for the property test: a virtual `setTimeout`/`clearTimeout` installed on
 * `globalThis` while one sequence runs, and `settle()`, which lets every microtask, every
 * `process.nextTick` and every due virtual timer run until nothing is left to do.
 *
 * Every timer the library and ky start (ky's 0 ms auth-retry delay and 10 s request timeout, the
 * grant's 10 s per-attempt timeout and its retry sleeps, lock and storage timeouts) is virtual, so
 * a sequence never waits for real time and runs the same way every time.
 */

const realSetImmediate = globalThis.setImmediate.bind(globalThis)
const realClearTimeout = globalThis.clearTimeout.bind(globalThis)

interface Timer {
  at: number
  seq: number
  run: () => void
}

// Virtual timer ids start far above anything Node hands out, so an unknown id is a real timer.
let nextId = 1_000_000_000

export class VirtualTimers {
  /** Virtual milliseconds since the sequence started. */
  now = 0
  /** Called whenever virtual time moves forward (before the timers due then run). */
  onAdvance: ((delta: number) => void) | undefined
  private seq = 0
  private readonly timers = new Map<number, Timer>()
  private saved: { setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout } | undefined

  readonly setTimeout = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const id = nextId++
    const delay = typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms : 0
    this.timers.set(id, { at: this.now + delay, seq: this.seq++, run: () => callback(...args) })
    return id
  }) as unknown as typeof setTimeout

  readonly clearTimeout = ((id: unknown) => {
    if (typeof id === 'number' && this.timers.delete(id)) return
    if (typeof id === 'number' && id >= 1_000_000_000) return // a virtual timer of an earlier sequence
    realClearTimeout(id as Parameters<typeof clearTimeout>[0])
  }) as typeof clearTimeout

  install(): void {
    this.saved = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout }
    globalThis.setTimeout = this.setTimeout
    globalThis.clearTimeout = this.clearTimeout
  }

  uninstall(): void {
    if (!this.saved) return
    globalThis.setTimeout = this.saved.setTimeout
    globalThis.clearTimeout = this.saved.clearTimeout
    this.saved = undefined
  }

  /** Pending virtual timers. */
  get size(): number {
    return this.timers.size
  }

  private nextDue(limit: number): [number, Timer] | undefined {
    let best: [number, Timer] | undefined
    for (const entry of this.timers) {
      const timer = entry[1]
      if (timer.at > limit) continue
      if (!best || timer.at < best[1].at || (timer.at === best[1].at && timer.seq < best[1].seq)) best = entry
    }
    return best
  }

  /** Move virtual time forward to `at` (never backwards). */
  moveTo(at: number): void {
    if (at <= this.now) return
    const delta = at - this.now
    this.now = at
    this.onAdvance?.(delta)
  }

  /** Run the earliest timer due at or before `limit` (moving `now` to it); `false` if none. */
  runOne(limit = this.now): boolean {
    const due = this.nextDue(limit)
    if (!due) return false
    this.timers.delete(due[0])
    this.moveTo(due[1].at)
    due[1].run()
    return true
  }
}

/** One macrotask turn: every queued microtask and nextTick has run when this resolves. */
export const turn = (): Promise<void> => new Promise((resolve) => realSetImmediate(resolve))

/** Let everything runnable run: microtasks, then due timers one by one, until nothing moves. */
export async function settle(timers: VirtualTimers): Promise<void> {
  for (let i = 0; i < 100_000; i++) {
    await turn()
    if (!timers.runOne()) return
  }
  throw new Error('settle(): timers kept firing (a 0 ms timer loop?)')
}

/** Move virtual time forward by `ms`, firing timers in order and settling after each. */
export async function advance(timers: VirtualTimers, ms: number): Promise<void> {
  const target = timers.now + ms
  await settle(timers)
  for (let i = 0; i < 100_000 && timers.runOne(target); i++) await settle(timers)
  timers.moveTo(target)
  await settle(timers)
}
