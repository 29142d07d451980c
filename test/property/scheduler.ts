/**
 * The interleaving scheduler: every server response and every storage operation waits behind a
 * gate until the test releases it. Which gate is released next is chosen by the generated
 * sequence (a pick index), so an interleaving is a plain list of numbers: reproducible from the
 * seed, and shrinkable by fast-check.
 */

export interface Gate {
  readonly id: number
  /** e.g. `e1 storage.get`, `e0 POST /oauth2/refresh rt_3`. */
  readonly label: string
  /** Storage ops of one engine run in order: only the head of an engine's queue is releasable. */
  readonly queue: string | undefined
  /** A hung gate is never picked; it ends when aborted, or when `releaseHung()` fails it. */
  hung: boolean
  /** Perform the operation (or its injected failure) and settle the caller's promise. */
  fire(): void
  /** End it as a failure (a hung storage op whose backend finally errors out). */
  fail(): void
}

export class Scheduler {
  private nextId = 1
  private readonly gates: Gate[] = []
  /** Released gates, in order (for the counterexample log). */
  readonly released: string[] = []

  newId(): number {
    return this.nextId++
  }

  add(gate: Gate): void {
    this.gates.push(gate)
  }

  /** Take a gate out without firing it (its caller aborted). */
  remove(gate: Gate): void {
    const index = this.gates.indexOf(gate)
    if (index !== -1) this.gates.splice(index, 1)
  }

  /** Gates that may be released now: not hung, and first of their queue. */
  releasable(): Gate[] {
    const seen = new Set<string>()
    const out: Gate[] = []
    for (const gate of this.gates) {
      if (gate.queue !== undefined) {
        if (seen.has(gate.queue)) continue
        seen.add(gate.queue)
      }
      if (!gate.hung) out.push(gate)
    }
    return out
  }

  get pending(): number {
    return this.gates.length
  }

  hungCount(): number {
    return this.gates.filter((gate) => gate.hung).length
  }

  /** Release the `pick`-th releasable gate (modulo their number); `undefined` when none is. */
  release(pick: number): Gate | undefined {
    const ready = this.releasable()
    if (ready.length === 0) return undefined
    const gate = ready[pick % ready.length]!
    this.remove(gate)
    this.released.push(gate.label)
    gate.fire()
    return gate
  }

  /** Fail every hung gate (storage hangs end with an error). Returns how many. */
  releaseHung(filter: (gate: Gate) => boolean = () => true): number {
    const hung = this.gates.filter((gate) => gate.hung && filter(gate))
    for (const gate of hung) {
      this.remove(gate)
      this.released.push(`${gate.label} (hung → failed)`)
      gate.fail()
    }
    return hung.length
  }

  describe(): string[] {
    return this.gates.map((gate) => `${gate.label}${gate.hung ? ' [hung]' : ''}`)
  }
}
