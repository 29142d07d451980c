/**
 * Runs one generated sequence (a {@link Scenario}) against several engines sharing one faulty
 * storage and the model server, then settles everything and probes the end state. Everything
 * goes through the public API (`src/index.ts`): `createTokenAuth`, its ky hooks,
 * `getAccessToken`, `setTokens`, `logout`, `on`.
 */
import ky, { type KyInstance } from 'ky'
import { createTokenAuth, isTokenError, refreshTokenGrant, type TokenAuth } from '../../src/index.ts'
import { SharedStorage, type StorageOp } from './faulty-storage.ts'
import { Checker, type CallKind, type CallOutcome } from './invariants.ts'
import { API_URL, ModelServer, postBody, REVOKE_URL, TOKEN_URL, type TokenOutcome } from './model-server.ts'
import { Scheduler } from './scheduler.ts'
import { advance, settle, VirtualTimers } from './virtual-time.ts'

export type User = 'A' | 'B'
export type Step =
  /** A ky request from engine `engine` (GET, or POST with a JSON body); `abortable` gives it a signal. */
  | { k: 'get' | 'post'; engine: number; abortable: boolean }
  /** `auth.getAccessToken()` on engine `engine`, optionally with `forceRefresh`. */
  | { k: 'token'; engine: number; force: boolean; abortable: boolean }
  /** Release gates (server answers, storage operations) one by one: `pick` modulo the releasable ones. */
  | { k: 'run'; picks: number[] }
  /** Release every releasable gate (in generated order) until none is left. */
  | { k: 'drain' }
  /** The server expires every access token issued so far. */
  | { k: 'expire' }
  /** The clock jumps forward (token expiry), without firing timers. */
  | { k: 'clock'; ms: number }
  /** Time passes: timers fire (ky/grant/lock/storage timeouts, retry sleeps) and the clock moves. */
  | { k: 'tick'; ms: number }
  | { k: 'logout'; engine: number; revoke: boolean }
  /** A sign-in of `user` completed elsewhere; engine `engine` stores its token response. */
  | { k: 'signIn'; engine: number; user: User }
  /** Abort one of the pending abortable calls. */
  | { k: 'abort'; pick: number }
  /** The next token-endpoint call gets this outcome. */
  | { k: 'outcome'; outcome: TokenOutcome }
  /** The next storage operation of this kind fails or hangs. */
  | { k: 'storageFault'; op: StorageOp; mode: 'fail' | 'hang' }

export interface Scenario {
  /** How many engines share the storage (2 or 3). */
  engines: number
  steps: Step[]
  /** Seeds the order in which `drain` steps and the final settling release gates. */
  drainSeed: number
}

export interface RunResult {
  violations: string[]
  log: string[]
  stats: { tokenCalls: number; apiCalls: number; reuse: number; rotated: number; calls: number; gates: number; outcomes: Record<string, number> }
}

const KEY = 'default'
const ACCESS_TTL = 600 // seconds

class UserAbort extends Error {
  override name = 'UserAbort'
}

/** A small deterministic PRNG (mulberry32) for the drain order. */
function prng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) % 1_000_003
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return `${error.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message.slice(0, 160)}`
  }
  return `non-error ${String(error)}`
}

export interface RunOptions {
  /** Keep a readable event log (for printing a counterexample). */
  verbose?: boolean
  /**
   * Deliberately break the setup, for the self-check that the invariants can fail end to end:
   * `no-lock` hides the storage lock from the engines, so engines cannot coordinate refreshes.
   */
  sabotage?: 'no-lock'
}

export async function runScenario(scenario: Scenario, { verbose = false, sabotage }: RunOptions = {}): Promise<RunResult> {
  const timers = new VirtualTimers()
  const checker = new Checker()
  checker.verbose = verbose
  const scheduler = new Scheduler()
  let clockExtra = 0
  const clockBase = 1_750_000_000_000
  const clock = () => clockBase + timers.now + clockExtra
  const server = new ModelServer({ scheduler, checker, clock, accessTtl: ACCESS_TTL })
  const storage = new SharedStorage(scheduler, checker, server)
  const pendingOps: { label: string; settled: boolean }[] = []
  const abortables: { id: string; controller: AbortController; settled: () => boolean }[] = []
  let callCount = 0
  /** How calls ended: `ok`, or the error code / name (coverage statistics). */
  const outcomes: Record<string, number> = {}
  const random = prng(scenario.drainSeed)

  timers.install()
  try {
    const engines: { auth: TokenAuth; api: KyInstance }[] = []
    for (let i = 0; i < scenario.engines; i++) {
      const view = storage.view(i)
      // (claiming "isolate" scope, or createTokenAuth refuses a shared storage that cannot lock)
      if (sabotage === 'no-lock') Object.assign(view, { withLock: undefined, flags: { ...view.flags, scope: 'isolate' } })
      const auth = createTokenAuth({
        grant: refreshTokenGrant({ url: TOKEN_URL, body: 'json', revocationUrl: REVOKE_URL }),
        storage: view,
        fetch: server.fetchFor(i),
        now: clock,
        key: KEY,
      })
      auth.on('sessionEnded', () => checker.sessionEndedEvent(i))
      engines.push({ auth, api: ky.create({ fetch: server.fetchFor(i), hooks: auth.hooks }) })
    }
    const engine = (index: number) => engines[index % engines.length]!
    const engineIndex = (index: number) => index % engines.length

    const track = (label: string, promise: Promise<unknown>, onSettled?: (result: string) => void) => {
      const op = { label, settled: false }
      pendingOps.push(op)
      promise.then(
        () => {
          op.settled = true
          onSettled?.('resolved')
        },
        (error) => {
          op.settled = true
          onSettled?.(`rejected (${describeError(error)})`)
        },
      )
    }

    /**
     * Start a call and let it run until it waits for a gate. A storage read its engine issued in
     * that moment is the call's own first read (nothing else runs then): when it lands, the call
     * is bound to the sessions live at that point too (an engine with nothing in memory cannot
     * know its session earlier).
     */
    const startCall = async (index: number, kind: CallKind, abortable: boolean) => {
      const e = engineIndex(index)
      const id = `c${++callCount}`
      checker.callStarted(id, e, kind)
      const controller = abortable ? new AbortController() : undefined
      const signal = controller?.signal
      const { auth, api } = engine(e)
      const readsBefore = storage.readsIssued(e)
      let result: Promise<CallOutcome>
      if (kind === 'get' || kind === 'post' || kind === 'probe-get') {
        const options = { headers: { 'x-call': id }, ...(signal && { signal }) }
        const response = kind === 'post' ? api.post(API_URL, { ...options, json: postBody(id) }) : api.get(API_URL, options)
        result = response.json<{ session: string }>().then((body) => ({ ok: true, family: body.session }))
      } else {
        const force = kind === 'force' || kind === 'probe-force'
        result = auth.getAccessToken({ ...(signal && { signal }), forceRefresh: force }).then((token) => ({ ok: true, family: server.familyOfAccess(token), token }))
      }
      let settled = false
      result
        .catch((error: unknown): CallOutcome => {
          const abortReason = controller?.signal.aborted ? controller.signal.reason : undefined
          const acceptable =
            isTokenError(error) ||
            (abortReason !== undefined && (error === abortReason || (error as { cause?: unknown })?.cause === abortReason)) ||
            (error instanceof Error && error.name === 'TimeoutError')
          return { ok: false, acceptable, error: describeError(error) }
        })
        .then((outcome) => {
          settled = true
          const label = outcome.ok ? 'ok' : outcome.error.split(':')[0]!
          outcomes[label] = (outcomes[label] ?? 0) + 1
          checker.callSettled(id, outcome)
        })
      if (controller) abortables.push({ id, controller, settled: () => settled })
      await settle(timers)
      // The call learns its session from its first read, or from the read it joined (an engine's
      // callers with nothing in memory share one read in flight).
      if (storage.readsIssued(e) > readsBefore) storage.onReadLanded(e, readsBefore + 1, () => checker.callRead(id))
      else if (storage.readPending(e, readsBefore)) storage.onReadLanded(e, readsBefore, () => checker.callRead(id))
    }

    const signIn = (index: number, user: User) => {
      const e = engineIndex(index)
      const { family, body } = server.signIn(user)
      checker.signInBegan(e, family, user)
      track(`engine ${e} setTokens(${user}/${family})`, engine(e).auth.setTokens(body), (result) => checker.note(`engine ${e}: setTokens(${family}) ${result}`))
    }

    const logout = (index: number, revoke: boolean) => {
      const e = engineIndex(index)
      const entry = checker.logoutInvoked(e)
      // inLogout covers every storage operation logout() issues, synchronously or later.
      storage.inLogout[e]!.push(entry)
      const promise = engine(e).auth.logout({ revoke })
      track(`engine ${e} logout()`, promise, (result) => {
        storage.inLogout[e]!.splice(storage.inLogout[e]!.indexOf(entry), 1)
        checker.logoutSettled(entry, result)
      })
    }

    /** Release gates in a generated order until nothing is releasable (bounded). */
    const drain = async () => {
      for (let i = 0; i < 5_000; i++) {
        await settle(timers)
        if (!scheduler.release(random())) return
      }
      checker.violate('the system never went quiet: 5,000 releases and more work keeps coming (livelock)')
    }

    const checkQuiet = () => {
      if (scheduler.pending === 0 && pendingOps.every((op) => op.settled) && checker.unsettled().length === 0) {
        checker.checkStored(storage.stored(KEY), (family) => server.newest(family), false)
      }
    }

    // The session every sequence starts from: user A, signed in on engine 0.
    checker.step = 0
    signIn(0, 'A')
    await drain()

    for (let index = 0; index < scenario.steps.length; index++) {
      const step = scenario.steps[index]!
      checker.step = index + 1
      checker.note(`STEP ${JSON.stringify(step)}`)
      switch (step.k) {
        case 'get':
        case 'post':
          await startCall(step.engine, step.k, step.abortable)
          break
        case 'token':
          await startCall(step.engine, step.force ? 'force' : 'token', step.abortable)
          break
        case 'run':
          for (const pick of step.picks) {
            await settle(timers)
            const gate = scheduler.release(pick)
            if (gate) checker.note(`release ${gate.label}`)
          }
          break
        case 'drain':
          await drain()
          break
        case 'expire':
          server.expireAccessTokens()
          break
        case 'clock':
          clockExtra += step.ms
          break
        case 'tick':
          await advance(timers, step.ms)
          break
        case 'logout':
          logout(step.engine, step.revoke)
          break
        case 'signIn':
          signIn(step.engine, step.user)
          break
        case 'abort': {
          const open = abortables.filter((entry) => !entry.settled() && !entry.controller.signal.aborted)
          const target = open[step.pick % Math.max(open.length, 1)]
          if (target) {
            checker.note(`abort call ${target.id}`)
            target.controller.abort(new UserAbort(`call ${target.id} aborted by the user`))
          }
          break
        }
        case 'outcome':
          server.outcomes.push(step.outcome)
          break
        case 'storageFault':
          storage.faults.push({ op: step.op, mode: step.mode })
          break
      }
      await settle(timers)
      checkQuiet()
      if (checker.violations.length) return finish()
    }

    // ---- settle: drain, let timeouts fire, end storage hangs, repeat -------------------------------
    checker.step = scenario.steps.length + 1
    checker.note('SETTLE')
    await drain()
    // Timeouts fire (ky, grant, lock, storage); then storage hangs end with an error, which may
    // let work go on and hit another injected hang: repeat until no hang is left.
    for (let round = 0; round < 20; round++) {
      for (const ms of [10_001, 10_001, 30_001, 60_001]) {
        await advance(timers, ms)
        await drain()
      }
      if (!scheduler.releaseHung((gate) => gate.label.includes('storage.'))) break
      await drain()
    }
    const stuck = checker.unsettled().map((call) => `call ${call.id} (engine ${call.engine}, ${call.kind})`)
    stuck.push(...pendingOps.filter((op) => !op.settled).map((op) => op.label))
    if (stuck.length) {
      checker.violate(`after draining every gate, ending every storage hang and letting the timeouts fire, these never settled: ${stuck.join('; ')} (still pending: ${scheduler.describe().join('; ') || 'no gate'})`)
      return finish()
    }
    checker.checkStored(storage.stored(KEY), (family) => server.newest(family), false)
    if (checker.violations.length) return finish()

    // ---- probe: no faults; each engine forces a refresh, then sends one request ------------------
    checker.step = scenario.steps.length + 2
    checker.note('PROBE')
    server.outcomes.length = 0
    storage.faults.length = 0
    await advance(timers, 300_000) // any backoff after failed refreshes is over
    // Engines holding a rotated refresh token that never reached storage go first: their next
    // refresh must present it (and save it), as the library promises.
    const holders = checker.unsavedHolders()
    const order = [...holders, ...engines.keys()].filter((e, i, all) => all.indexOf(e) === i)
    checker.note(`probe order: engines ${order.join(', ')}${holders.length ? ` (holding unsaved tokens: ${holders.join(', ')})` : ''}`)
    for (const e of order) {
      await startCall(e, 'probe-force', false)
      await drain()
    }
    for (let e = 0; e < engines.length; e++) {
      await startCall(e, 'probe-get', false)
      await drain()
    }
    await advance(timers, 60_001)
    await drain()
    const stuckInProbe = checker.unsettled().map((call) => `call ${call.id} (engine ${call.engine}, ${call.kind})`)
    if (stuckInProbe.length) checker.violate(`probe calls never settled: ${stuckInProbe.join('; ')}`)
    checker.checkStored(storage.stored(KEY), (family) => server.newest(family), true)
    return finish()
  } finally {
    timers.uninstall()
  }

  function finish(): RunResult {
    if (verbose) {
      checker.log.push(`storage holds: ${JSON.stringify(storage.stored(KEY) ?? null)}`)
      checker.log.push(`gates still pending: ${scheduler.describe().join('; ') || 'none'}`)
    }
    return {
      violations: [...checker.violations],
      log: checker.log,
      stats: {
        tokenCalls: server.counts.token,
        apiCalls: server.counts.api,
        reuse: server.counts.reuse,
        rotated: server.counts.rotated,
        calls: callCount,
        gates: scheduler.released.length,
        outcomes,
      },
    }
  }
}
