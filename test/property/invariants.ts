/**
 * The invariant checker of the property test. It is fed events (by the model server, the faulty
 * storage and the harness, or by a hand-written fake trace in the self-check) and records a
 * violation the moment one happens. It knows nothing about the library: only what a server, a
 * storage backend and the application can observe.
 *
 * Sessions: every sign-in creates a refresh-token family at the server; that family *is* the
 * session (user + sign-in generation). A session is `pending` from the moment its sign-in starts
 * until its first write lands in storage, then `live` until a storage delete or another session's
 * sign-in write replaces it (`ended`). A call may only ever carry / receive tokens of the sessions
 * that were live or pending when it started.
 */

export type SessionState = 'pending' | 'live' | 'ended' | 'aborted'
export type EndReason = 'logout' | 'revoked' | 'superseded' | 'unclean'

export interface SessionInfo {
  family: string
  user: string
  state: SessionState
  beganAt: number
  liveAt?: number
  endedAt?: number
  endReason?: EndReason
}

export type CallKind = 'get' | 'post' | 'token' | 'force' | 'probe-force' | 'probe-get'

export interface CallInfo {
  id: string
  engine: number
  kind: CallKind
  /** Sessions live or pending when the call started: the only ones whose tokens it may carry. */
  allowed: Set<string>
  startedAt: number
  /** Its own first storage read landed (and widened `allowed`). */
  boundByRead: boolean
  settled: boolean
  arrivals: number
  statuses: number[]
}

export interface TokenCallInfo {
  id: number
  engine: number
  rt: string
  family: string | undefined
  arrivedAt: number
  settledAt?: number
  how?: 'delivered' | 'lost' | 'failed' | 'aborted'
  rotatedTo?: string
}

export type CallOutcome =
  | { ok: true; family: string | undefined; token?: string }
  | { ok: false; acceptable: boolean; error: string }

export class Checker {
  /** Logical time: one tick per event. */
  seq = 0
  /** The harness step being executed (for messages). */
  step = -1
  readonly log: string[] = []
  readonly violations: string[] = []
  readonly sessions = new Map<string, SessionInfo>()
  readonly calls = new Map<string, CallInfo>()
  readonly tokenCalls = new Map<number, TokenCallInfo>()
  /** family → token-endpoint calls in flight for it. */
  readonly inFlight = new Map<string, Set<number>>()
  /** refresh token → the token call that spent (rotated) it. */
  readonly spentBy = new Map<string, number>()
  /** family → when the server revoked it. */
  readonly revokedAt = new Map<string, number>()
  /** Every write an engine asked storage for, by id. */
  readonly writes = new Map<number, { engine: number; rt: string | undefined; state: 'pending' | 'landed' | 'failed' | 'abandoned' }>()
  /** Refresh tokens that ever landed in storage. */
  readonly landed = new Set<string>()
  readonly logouts: { engine: number; at: number; settledAt?: number; rejected?: boolean }[] = []
  readonly signIns: { engine: number; at: number }[] = []
  readonly sessionEndedEvents: { engine: number; at: number }[] = []
  /** Token calls that presented an already spent refresh token, with the verdict. */
  readonly replays: { call: number; rt: string; explained: string | undefined }[] = []
  /** Keep a human-readable log (costly; the harness turns it on to print a counterexample). */
  verbose = false

  note(message: string): void {
    this.seq++
    if (this.verbose) this.log.push(`#${this.seq} [step ${this.step}] ${message}`)
  }

  violate(message: string): void {
    const line = `step ${this.step}: ${message}`
    this.violations.push(line)
    if (this.verbose) this.log.push(`#${this.seq} !!! VIOLATION ${line}`)
  }

  describeSession(family: string | undefined): string {
    if (family === undefined) return 'no session'
    const session = this.sessions.get(family)
    return session ? `${session.user}/${family}` : `?/${family}`
  }

  private allowedNow(): Set<string> {
    const allowed = new Set<string>()
    for (const session of this.sessions.values()) if (session.state === 'live' || session.state === 'pending') allowed.add(session.family)
    return allowed
  }

  private liveSession(): SessionInfo | undefined {
    for (const session of this.sessions.values()) if (session.state === 'live') return session
    return undefined
  }

  // ---- sessions ------------------------------------------------------------------------------

  signInBegan(engine: number, family: string, user: string): void {
    this.note(`engine ${engine}: sign-in of ${user} begins (session ${family})`)
    this.signIns.push({ engine, at: this.seq })
    this.sessions.set(family, { family, user, state: 'pending', beganAt: this.seq })
  }

  /** The sign-in's write was refused by storage (it never landed): the session never began. */
  signInWriteFailed(family: string): void {
    const session = this.sessions.get(family)
    if (session?.state === 'pending') {
      session.state = 'aborted'
      this.note(`sign-in write of ${this.describeSession(family)} failed: session aborted`)
    }
  }

  logoutInvoked(engine: number): number {
    this.note(`engine ${engine}: logout() invoked`)
    return this.logouts.push({ engine, at: this.seq }) - 1
  }

  logoutSettled(index: number, result: string): void {
    const logout = this.logouts[index]!
    this.note(`engine ${logout.engine}: logout() ${result}`)
    logout.settledAt = this.seq
    logout.rejected = result !== 'resolved'
  }

  sessionEndedEvent(engine: number): void {
    this.note(`engine ${engine}: event sessionEnded`)
    this.sessionEndedEvents.push({ engine, at: this.seq })
  }

  familyRevoked(family: string, why: string): void {
    if (this.revokedAt.has(family)) return
    this.note(`server revokes ${this.describeSession(family)} (${why})`)
    this.revokedAt.set(family, this.seq)
  }

  /** Engine `engine` asked storage to write a token set holding refresh token `rt` (write `id`). */
  writeIssued(id: number, engine: number, rt: string | undefined): void {
    this.writes.set(id, { engine, rt, state: 'pending' })
  }

  /** Write `id` (a set, or a successful compare-and-set) landed in storage. */
  storageWritten(engine: number, family: string | undefined, what: string, id?: number): void {
    this.note(`storage ← engine ${engine} ${what} of ${this.describeSession(family)}`)
    const write = id === undefined ? undefined : this.writes.get(id)
    if (write) {
      write.state = 'landed'
      if (write.rt !== undefined) this.landed.add(write.rt)
    }
    if (family === undefined) return this.violate(`engine ${engine} wrote tokens to storage that the server never issued`)
    const session = this.sessions.get(family)
    if (!session) return this.violate(`engine ${engine} wrote tokens of an unknown session ${family}`)
    if (session.state === 'pending') {
      for (const other of this.sessions.values()) {
        if (other.state === 'live') Object.assign(other, { state: 'ended', endedAt: this.seq, endReason: 'superseded' })
      }
      Object.assign(session, { state: 'live', liveAt: this.seq })
    } else if (session.state !== 'live') {
      this.violate(`engine ${engine} wrote tokens of session ${this.describeSession(family)} to storage after that session had ${session.state === 'ended' ? `ended (${session.endReason})` : 'been aborted'}: a dead or replaced session came back`)
    }
  }

  /** Write `id` failed (injected fault, or a hung one released as a failure): nothing landed. */
  writeFailed(id: number): void {
    const write = this.writes.get(id)
    if (!write) return
    this.note(`storage ✗ engine ${write.engine} write of ${write.rt} failed`)
    if (write.state === 'pending' || write.state === 'abandoned') write.state = 'failed'
  }

  /** The engine let go of the storage lock while write `id`, issued under it, had not landed. */
  writeAbandoned(id: number): void {
    const write = this.writes.get(id)
    if (!write || write.state !== 'pending') return
    this.note(`engine ${write.engine} released the lock with its write of ${write.rt} still pending (it gave up on it)`)
    write.state = 'abandoned'
  }

  /**
   * A delete landed. `family` is what storage held (undefined: it was empty); `logout` is the
   * index of the deleting engine's `logout()` that issued it, if any.
   *
   * Deleting a live session S is clean when a logout of that engine targeted S, in the
   * linearizable sense: that logout had not finished when S's sign-in began (it was concurrent
   * with or after it); or when the delete came from a logout that reported failure (a timed-out
   * delete may land late: the app was told the outcome is unknown); or when the server had
   * revoked S (the session is over anyway). Anything else signs a user out through someone's
   * stale work.
   */
  storageDeleted(engine: number, family: string | undefined, logout?: number): void {
    this.note(`storage ✗ engine ${engine} delete (held ${this.describeSession(family)})${logout !== undefined ? ' [logout]' : ''}`)
    if (family === undefined) return
    const session = this.sessions.get(family)
    if (!session || session.state !== 'live') return
    const issuer = logout === undefined ? undefined : this.logouts[logout]
    const concurrent = (entry: { settledAt?: number }) => entry.settledAt === undefined || entry.settledAt > session.beganAt
    const targetedByLogout =
      (issuer !== undefined && (concurrent(issuer) || issuer.rejected === true)) ||
      this.logouts.some((entry) => entry.engine === engine && concurrent(entry))
    const revoked = this.revokedAt.has(family)
    const reason: EndReason = targetedByLogout ? 'logout' : revoked ? 'revoked' : 'unclean'
    Object.assign(session, { state: 'ended', endedAt: this.seq, endReason: reason })
    if (reason === 'unclean') {
      this.violate(`engine ${engine} deleted the live session ${this.describeSession(family)} from storage although no logout targeted it and the server still honours it: the user was signed out by someone else's stale work`)
    }
  }

  // ---- calls -----------------------------------------------------------------------------------

  callStarted(id: string, engine: number, kind: CallKind): CallInfo {
    const call: CallInfo = { id, engine, kind, allowed: this.allowedNow(), startedAt: this.seq, boundByRead: false, settled: false, arrivals: 0, statuses: [] }
    this.note(`engine ${engine}: call ${id} (${kind}) starts in {${[...call.allowed].map((family) => this.describeSession(family)).join(', ')}}`)
    this.calls.set(id, call)
    return call
  }

  /**
   * The call's own first storage read landed: an engine with nothing in memory learns only now
   * which session it is in, so the sessions live now are the call's too.
   */
  callRead(id: string): void {
    const call = this.calls.get(id)
    if (!call || call.boundByRead) return
    call.boundByRead = true
    for (const family of this.allowedNow()) call.allowed.add(family)
  }

  private sessionCheck(call: CallInfo, family: string | undefined, what: string): void {
    if (family === undefined) return this.violate(`call ${call.id} (engine ${call.engine}) ${what} a token the server never issued`)
    if (call.allowed.has(family)) return
    const session = this.sessions.get(family)
    const started = call.allowed.size ? `started in {${[...call.allowed].map((f) => this.describeSession(f)).join(', ')}}` : 'started when no session was live (logged out / before sign-in)'
    const began = session && session.beganAt > call.startedAt ? ', a session signed in after the call began' : ''
    this.violate(`call ${call.id} (engine ${call.engine}, ${call.kind}) ${started} but ${what} a token of ${this.describeSession(family)}${began}`)
  }

  /** The API server received an attempt of call `id`. */
  apiArrived(id: string | undefined, engine: number, family: string | undefined, hasToken: boolean, bodyIntact: boolean): void {
    this.note(`API ← engine ${engine} call ${id ?? '?'} with ${hasToken ? this.describeSession(family) : 'no token'}`)
    const call = id === undefined ? undefined : this.calls.get(id)
    if (!call) return this.violate(`the API received a request that belongs to no call (${id})`)
    call.arrivals++
    if (call.arrivals > 2) this.violate(`call ${id} reached the API ${call.arrivals} times: replayed more than once`)
    else if (call.arrivals === 2 && call.statuses[0] !== 401) this.violate(`call ${id} was replayed although its first attempt got ${call.statuses[0] ?? 'no answer'}, not 401`)
    if (!bodyIntact) this.violate(`call ${id} attempt ${call.arrivals}: the body the server received differs from the one sent`)
    if (!hasToken) return this.violate(`call ${id} (engine ${engine}) reached the API without a token`)
    this.sessionCheck(call, family, 'sent')
  }

  apiAnswered(id: string | undefined, status: number): void {
    this.note(`API → call ${id} ${status}`)
    const call = id === undefined ? undefined : this.calls.get(id)
    call?.statuses.push(status)
  }

  callSettled(id: string, outcome: CallOutcome): void {
    const call = this.calls.get(id)
    if (!call) return this.violate(`unknown call ${id} settled`)
    this.note(`call ${id} settles: ${outcome.ok ? `ok (${this.describeSession(outcome.family)})` : outcome.error}`)
    if (call.settled) return this.violate(`call ${id} settled twice`)
    call.settled = true
    if (!outcome.ok && !outcome.acceptable) this.violate(`call ${id} (engine ${call.engine}) failed with an untyped error: ${outcome.error}`)
    if (outcome.ok && (call.kind === 'token' || call.kind === 'force' || call.kind === 'probe-force')) this.sessionCheck(call, outcome.family, 'was handed')
  }

  // ---- the token endpoint ----------------------------------------------------------------------

  tokenArrived(id: number, engine: number, rt: string, family: string | undefined): void {
    const call: TokenCallInfo = { id, engine, rt, family, arrivedAt: this.seq }
    this.tokenCalls.set(id, call)
    this.note(`token ← engine ${engine} #${id} presents ${rt} (${this.describeSession(family)})`)
    if (family !== undefined) {
      const flying = this.inFlight.get(family) ?? new Set()
      if (flying.size > 0) {
        const others = [...flying].map((other) => `#${other} (engine ${this.tokenCalls.get(other)?.engine})`).join(', ')
        this.violate(`two token-endpoint calls in flight for one token set ${this.describeSession(family)}: #${id} (engine ${engine}) while ${others} is still waiting for its answer`)
      }
      this.inFlight.set(family, flying.add(id))
    }
    if (this.spentBy.has(rt)) {
      const explained = this.explainSpent(rt, engine)
      this.replays.push({ call: id, rt, explained: explained.ok ? explained.why : undefined })
      if (!explained.ok) this.violate(`engine ${engine} replayed the spent refresh token ${rt} (token call #${id}): ${explained.why}`)
      else this.note(`replay of spent ${rt} is explained: ${explained.why}`)
    }
  }

  /** The server rotated `rt` in call `id` (whether or not the answer reaches the client). */
  tokenRotated(id: number, rt: string, next: string): void {
    this.note(`server rotates ${rt} → ${next} (#${id})`)
    this.spentBy.set(rt, id)
    const call = this.tokenCalls.get(id)
    if (call) call.rotatedTo = next
  }

  tokenSettled(id: number, how: NonNullable<TokenCallInfo['how']>, detail = ''): void {
    const call = this.tokenCalls.get(id)
    if (!call) return this.violate(`unknown token call #${id} settled`)
    this.note(`token → #${id} ${how}${detail ? ` ${detail}` : ''}`)
    if (call.how) return
    call.how = how
    call.settledAt = this.seq
    if (call.family !== undefined) this.inFlight.get(call.family)?.delete(id)
  }

  /**
   * Why may the spent refresh token `rt` be presented (by `presenter`) or still be what storage
   * holds? Legitimate only when the client could not know its successor:
   * - the rotation's answer was lost (network fault after the server rotated): the session is
   *   dead and ends on the next refresh;
   * - the answer reached engine X, X asked storage to save the new refresh token but that write
   *   failed, or X let go of the refresh lock before it landed (it gave up on a hung write), and
   *   the new token never landed: X keeps it in memory, and the one presenting the old token is
   *   another engine, which can only see storage (a write merely still in progress explains
   *   nothing: the lock should make the others wait for it);
   * - X was logged out, or signed in to a new session, after that call began (its result is
   *   discarded by design).
   */
  explainSpent(rt: string, presenter?: number): { ok: true; why: string } | { ok: false; why: string } {
    const spender = this.tokenCalls.get(this.spentBy.get(rt)!)
    if (!spender) return { ok: false, why: 'spent by an unknown call' }
    if (spender.how === 'lost') return { ok: true, why: `its rotation (#${spender.id}) was lost in a network fault after the server rotated` }
    if (spender.how !== 'delivered') return { ok: false, why: `its rotation (#${spender.id}) is ${spender.how ?? 'still in flight'}` }
    const x = spender.engine
    if ([...this.logouts, ...this.signIns].some((reset) => reset.engine === x && reset.at > spender.arrivedAt)) {
      return { ok: true, why: `engine ${x}, which received its rotation (#${spender.id}), was logged out or signed in again meanwhile (its result is discarded by design)` }
    }
    if (presenter === x) return { ok: false, why: `this engine itself received the rotation ${rt} → ${spender.rotatedTo} (#${spender.id}) and must use the new one (in storage or, after a failed save, in memory)` }
    const next = spender.rotatedTo!
    const attempts = [...this.writes.values()].filter((write) => write.engine === x && write.rt === next)
    if (!this.landed.has(next) && attempts.some((write) => write.state === 'failed' || write.state === 'abandoned')) {
      return { ok: true, why: `engine ${x} received the rotation (#${spender.id}) but its save of ${next} failed or was given up (the new tokens are only in its memory)` }
    }
    const resetBefore = [...this.logouts, ...this.signIns].some((reset) => reset.engine === x && reset.at < spender.arrivedAt && reset.at > this.sessions.get(spender.family ?? '')!.beganAt)
    const what =
      attempts.length === 0
        ? `never asked storage to save ${next}${resetBefore ? ` (it sent that token call after a logout() or sign-in had been invoked on it, then discarded the answer)` : ''}`
        : this.landed.has(next) ? `saved ${next}` : `is still saving ${next} (its write has neither landed nor failed)`
    return { ok: false, why: `engine ${x} received the rotation ${rt} → ${next} (#${spender.id}) and ${what}, yet ${presenter === undefined ? 'storage still holds the old one' : `engine ${presenter} presented the old one`}` }
  }

  // ---- end-of-sequence checks ------------------------------------------------------------------

  /**
   * Engines that received a rotation whose new refresh token never landed in storage and was not
   * spent since: they should hold it in memory and present it on their next refresh.
   */
  unsavedHolders(): number[] {
    const holders = new Set<number>()
    for (const call of this.tokenCalls.values()) {
      const next = call.rotatedTo
      if (call.how === 'delivered' && next !== undefined && !this.landed.has(next) && !this.spentBy.has(next)) holders.add(call.engine)
    }
    return [...holders]
  }

  /** Calls that never settled. */
  unsettled(): CallInfo[] {
    return [...this.calls.values()].filter((call) => !call.settled)
  }

  /** What storage holds once everything settled: `family`/`rt` or nothing. */
  checkStored(stored: { family: string | undefined; rt: string | undefined } | undefined, newest: (family: string) => string | undefined, strict: boolean): void {
    const live = this.liveSession()
    if (!stored) {
      if (live) this.violate(`storage is empty but session ${this.describeSession(live.family)} is still live (bookkeeping)`)
      const last = [...this.sessions.values()].filter((session) => session.liveAt !== undefined).sort((a, b) => b.liveAt! - a.liveAt!)[0]
      if (strict && last?.state === 'ended' && last.endReason === 'revoked' && !this.sessionEndedEvents.some((event) => event.at > last.liveAt!)) {
        this.violate(`session ${this.describeSession(last.family)} was removed because the server ended it, but no engine emitted sessionEnded`)
      }
      return
    }
    if (!stored.family) return this.violate(`storage holds tokens the server never issued`)
    if (stored.family !== live?.family) return this.violate(`storage holds ${this.describeSession(stored.family)}, not the live session ${this.describeSession(live?.family)}`)
    const latest = newest(stored.family)
    const revoked = this.revokedAt.has(stored.family)
    if (strict) {
      if (revoked) this.violate(`after the final refresh storage still holds ${this.describeSession(stored.family)}, which the server revoked: the session did not end cleanly`)
      else if (stored.rt !== latest) this.violate(`after the final refresh storage holds refresh token ${stored.rt} of ${this.describeSession(stored.family)}, but the newest the server issued is ${latest}`)
      return
    }
    if (revoked || stored.rt === latest || stored.rt === undefined) return
    if (!this.spentBy.has(stored.rt)) return this.violate(`storage holds ${stored.rt}, which is neither the newest (${latest}) nor spent`)
    const explained = this.explainSpent(stored.rt)
    if (!explained.ok) this.violate(`storage holds the spent refresh token ${stored.rt} of ${this.describeSession(stored.family)} (newest: ${latest}): ${explained.why}`)
  }
}
