/**
 * Minimal counterexamples found by the interleaving property (./interleavings.test.ts), replayed
 * exactly: each scenario is the shrunk sequence fast-check printed, run through the same harness
 * and checked against the same invariants. A failure prints the violated invariant and the full
 * event log of the interleaving.
 *
 * Expected state when these were written:
 * - at 7480ddc (the engine the issue describes): R1–R5b (R4c, R4d included) and R7 fail; R6 passes;
 * - at 3e39342 (the rewrite: fenced calls, bounded storage, backoff): R4, R4c, R5, R5b, R6 fail;
 *   R1–R3, R4d and R7 pass.
 * They are expected to fail until the engine is fixed; they are not to be weakened. Each names
 * the root cause found by reading the event log against the engine.
 *
 * The last block replays legitimate outcomes the invariants must accept (a lost rotation ends the
 * session; a failed save keeps the new tokens in memory), so a fix cannot be "verified" by an
 * over-strict model either.
 */
import { describe, expect, it } from 'vitest'
import { runScenario, type Scenario } from './harness.ts'

async function replay(scenario: Scenario): Promise<void> {
  const result = await runScenario(scenario, { verbose: true })
  if (result.violations.length) {
    expect.fail(['Invariant violated:', ...result.violations.map((line) => `  ${line}`), '', 'Event log:', ...result.log.map((line) => `  ${line}`)].join('\n'))
  }
}

describe('regressions found by the interleaving property (expected to fail until fixed)', () => {
  it('R1: a request waiting for a refresh after logout() is not sent with the token of the user who signs in next', async () => {
    // The report. Engine 0 logs out; a GET started meanwhile finds storage empty and asks
    // for a refresh; user B signs in on the same engine while the GET waits for the lock; under the
    // lock the refresh re-reads storage, finds B's fresh tokens and "adopts" them: the GET, started
    // in A's session, reaches the API as user B.
    // Root cause (7480ddc): runRefresh adopts whatever storage holds (`stored.accessToken !== stale`)
    // without checking it belongs to the session the waiting call started in.
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'logout', engine: 0, revoke: false },
      { k: 'get', engine: 0, abortable: false },
      { k: 'run', picks: [0, 0] },
      { k: 'signIn', engine: 0, user: 'B' },
      { k: 'run', picks: [0] },
    ] })
  })

  it('R2: a 401 replay is not sent with the token of a user who signed in after the request began', async () => {
    // A GET goes out with A's token; B signs in on the same engine (no logout); the GET gets 401
    // (expired) and ky replays it; renew() finds B's token in memory ("someone else already
    // refreshed") and replays A's request as B.
    // Root cause (7480ddc): renew() treats any cached token different from the 401'd one as a
    // renewal of the same session.
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'get', engine: 0, abortable: false },
      { k: 'signIn', engine: 0, user: 'B' },
      { k: 'expire' },
    ] })
  })

  it('R3: getAccessToken() waiting on the refresh lock is not handed the next sign-in\'s token', async () => {
    // A's token is in its early-refresh window; getAccessToken() starts a refresh and waits for the
    // lock; B signs in; under the lock the re-read finds B's fresh tokens and returns B's token to
    // a caller that started as A. Same root cause as R1.
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'clock', ms: 570_000 },
      { k: 'token', engine: 0, force: false, abortable: false },
      { k: 'signIn', engine: 0, user: 'B' },
    ] })
  })

  it('R4: a storage read that races logout() does not bring the logged-out tokens back into memory', async () => {
    // Engine 1 (nothing in memory) logs out: it reads storage (to revoke), then deletes. A
    // getAccessToken() started during the logout also reads storage; its read lands before the
    // delete and puts A's tokens back into the engine's memory after logout() cleared it (7480ddc:
    // `remember()` into the cache; 3e39342: into the fresh slot created after logout dropped the
    // old one). logout() resolves; a GET started afterwards is sent with A's token from memory,
    // and keeps being sent until the token expires, though storage is empty.
    // Root cause: a read begun before logout() is allowed to populate memory after it; nothing
    // fences reads (only refreshes) against a logout that happened while they were in flight.
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'logout', engine: 1, revoke: false },
      { k: 'token', engine: 1, force: false, abortable: false },
      { k: 'run', picks: [0, 0, 0] },
      { k: 'get', engine: 1, abortable: false },
    ] })
  })

  it('R4c: logout() and setTokens() racing on one engine leave memory and storage agreeing', async () => {
    // Engine 1 calls logout() and, without awaiting it, setTokens() for a new sign-in S2 (a
    // "switch user" flow). logout() reads, S2's write lands, then logout()'s delete lands: storage
    // is empty, so S2 was logged out. But setTokens() put S2 in the engine's memory after logout()
    // had cleared it, and nothing clears it again: after logout() resolved, getAccessToken() still
    // hands out S2's token (and requests carry it) while storage and every other engine say
    // "signed out". Root cause (both versions): logout()'s unconditional delete and its in-memory
    // reset are not one step; memory written by a concurrent setTokens() survives the delete.
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'logout', engine: 1, revoke: false },
      { k: 'signIn', engine: 1, user: 'A' },
      { k: 'run', picks: [0] },
      { k: 'run', picks: [0] },
      { k: 'run', picks: [0] },
      { k: 'token', engine: 1, force: false, abortable: false },
      { k: 'run', picks: [0] },
    ] })
  })

  it('R4d: setTokens() then logout() without awaiting: the logged-out sign-in is not served from memory', async () => {
    // The two-step form of R4c, found at 7480ddc: setTokens(S2) is writing when logout() clears the
    // cache; S2's write lands, setTokens() puts S2 in the cache, logout()'s delete lands. Storage
    // is empty and even a forced refresh says ERR_TOKEN_MISSING, yet requests go out with S2's
    // token from the cache. Root cause (7480ddc): setTokens() remembers its tokens after the await
    // without checking that a logout ran meanwhile (3e39342 writes into the slot logout dropped).
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'signIn', engine: 0, user: 'A' },
      { k: 'logout', engine: 0, revoke: false },
    ] })
  })

  it('R5: cleaning up a session the server ended does not delete a sign-in that landed meanwhile', async () => {
    // Engine 1 forces a refresh; the server answers invalid_grant (session A/S1 ended). The engine
    // reads storage (still S1), then deletes it; in between, a sign-in of A (new session S2) on
    // engine 0 lands. The delete removes S2: the user who just signed in is signed out, no logout,
    // S2 still valid at the server.
    // Root cause (both versions): endSession() checks storage and deletes it in two steps (read,
    // then unconditional delete); the adapter interface has no conditional delete, and the
    // cleanup does not re-check under compare-and-set.
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'get', engine: 0, abortable: false },
      { k: 'outcome', outcome: 'invalid_grant' },
      { k: 'drain' },
      { k: 'signIn', engine: 0, user: 'A' },
      { k: 'token', engine: 1, force: true, abortable: false },
    ] })
  })

  it('R5b: the same race through a 401 on a third engine', async () => {
    await replay({ engines: 3, drainSeed: 1723647383, steps: [
      { k: 'expire' },
      { k: 'outcome', outcome: 'invalid_grant' },
      { k: 'drain' },
      { k: 'token', engine: 1, force: false, abortable: false },
      { k: 'get', engine: 2, abortable: false },
      { k: 'post', engine: 0, abortable: false },
      { k: 'signIn', engine: 1, user: 'A' },
    ] })
  })

  it('R6: a refresh that commits while setTokens() runs on the same engine does not delete the new sign-in', async () => {
    // Engine 0 forces a refresh; the server rotates; the compare-and-set is in flight when the app
    // calls setTokens() with a new sign-in (S2) on the same engine. The CAS lands, then S2's write;
    // back in runRefresh the epoch moved (setTokens bumps it too), so the engine concludes "logout
    // raced our write: it wins" and deletes storage: S2, the session the app just stored, is gone.
    // Root cause (3e39342): the post-commit epoch check treats every epoch bump as a logout, and
    // its delete is unconditional (it removes whatever storage holds by then).
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'token', engine: 0, force: true, abortable: false },
      { k: 'run', picks: [0, 0, 0] },
      { k: 'signIn', engine: 0, user: 'A' },
      { k: 'tick', ms: 250 },
    ] })
  })

  it('R8: a call that starts once a logout\'s delete has landed is not handed the next sign-in (found by the suite after the R1–R7 fixes, seed 591499777)', async () => {
    // Engine 0 logs out (revocation on); while the revocation call was still out, the key stayed
    // "busy", a new call on engine 0 waited for it, and by the time it read storage engine 1 had
    // signed in S2: the call, begun with nothing stored, was handed S2. Fix: revocation runs after
    // the key is free again, so the call reads the empty storage and ends with ERR_TOKEN_MISSING.
    await replay({ engines: 2, drainSeed: 538069061, steps: [
      { k: 'logout', engine: 0, revoke: true },
      { k: 'run', picks: [0] },
      { k: 'token', engine: 0, force: false, abortable: false },
      { k: 'signIn', engine: 1, user: 'A' },
      { k: 'token', engine: 0, force: false, abortable: false },
    ] })
  })

  it('R9: a rotation kept only in memory after a failed save is not served once another engine signed in (seed 1414172435)', async () => {
    // Engine 1 refreshes S1 and the server rotates; meanwhile engine 0 signs in S2 (engine 1 is
    // told through watch); then engine 1's save of the rotation fails, and it cached the rotated
    // S1 in memory anyway: its next call went out with S1 while storage held S2. Fix: a value
    // read or kept after a watch notice of the same key serves the call that made it, and is not
    // cached (the rotated token stays in `unsaved` for that session's next refresh).
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'clock', ms: 570000 },
      { k: 'token', engine: 0, force: false, abortable: false },
      { k: 'storageFault', op: 'cas', mode: 'fail' },
      { k: 'post', engine: 1, abortable: false },
      { k: 'signIn', engine: 0, user: 'A' },
      { k: 'run', picks: [0, 0, 3, 3] },
      { k: 'run', picks: [0, 0, 0] },
      { k: 'get', engine: 1, abortable: false },
      { k: 'post', engine: 0, abortable: false },
    ] })
  })

  it('R10: a call that starts during a sign-in that then fails is not handed a sign-in made elsewhere (seed 20261124)', async () => {
    // Engine 0 signs in S2 (its write will fail); a POST starts on engine 0 meanwhile; engine 1
    // signs in S3. The POST waited for engine 0's sign-in, then read storage and went out with S3.
    // Fix: a call that starts during a sign-in belongs to it; if that sign-in fails, so does the call.
    await replay({ engines: 2, drainSeed: 1, steps: [
      { k: 'storageFault', op: 'set', mode: 'fail' },
      { k: 'signIn', engine: 0, user: 'A' },
      { k: 'post', engine: 0, abortable: false },
      { k: 'signIn', engine: 1, user: 'A' },
      { k: 'post', engine: 0, abortable: false },
    ] })
  })

  it('R11: a rotation kept in memory after a failed save survives the end of another refresh on the same engine (seed -1233426267)', async () => {
    // Engine 1 adopted engine 0's refresh without caching it (a notice raced the read), and that
    // flight's end dropped the "idle" slot while a 401 renewal was still working on it; the renewal
    // rotated, its save failed, and the rotated token was kept on the dropped slot: the next
    // refresh presented the spent one. Fix: a slot is only dropped once its session has ended.
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'post', engine: 0, abortable: false },
      { k: 'clock', ms: 600000 },
      { k: 'post', engine: 1, abortable: false },
      { k: 'run', picks: [0, 7, 3, 7] },
      { k: 'expire' },
      { k: 'storageFault', op: 'cas', mode: 'fail' },
      { k: 'run', picks: [0] },
    ] })
  })

  it('R12: the same loss through a sign-in on the other engine (seed -964800852)', async () => {
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'clock', ms: 570000 },
      { k: 'get', engine: 1, abortable: false },
      { k: 'get', engine: 0, abortable: false },
      { k: 'run', picks: [1, 0, 3] },
      { k: 'run', picks: [0, 0, 0, 0] },
      { k: 'get', engine: 0, abortable: false },
      { k: 'storageFault', op: 'cas', mode: 'fail' },
      { k: 'signIn', engine: 1, user: 'A' },
      { k: 'expire' },
    ] })
  })

  it('R7: a refresh queued behind the lock does not call the token endpoint after logout() and throw the rotation away', async () => {
    // A forced refresh waits for the lock; logout() runs (its delete fails, so storage keeps the
    // session and logout() rejects). The refresh then gets the lock and still sends the token
    // call: logout() aborted its controller before the grant started, and the grant only listens
    // for future 'abort' events, never checking `signal.aborted`. The server rotates; the engine
    // sees the epoch moved and discards the answer. Storage is left with a spent refresh token:
    // the next refresh anywhere is a reuse, and a strict server revokes the family.
    // Root cause (7480ddc): no fence between taking the lock and calling the grant, and
    // callTokenEndpoint ignores an already-aborted signal.
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'storageFault', op: 'delete', mode: 'fail' },
      { k: 'token', engine: 0, force: true, abortable: false },
      { k: 'logout', engine: 0, revoke: false },
    ] })
  })
})

describe('legitimate outcomes the invariants accept', () => {
  it('a rotation whose answer is lost (network fault after the server rotated) ends the session cleanly', async () => {
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'outcome', outcome: 'fault-after' },
      { k: 'expire' },
      { k: 'get', engine: 0, abortable: false },
      { k: 'drain' },
      { k: 'get', engine: 1, abortable: false },
      { k: 'drain' },
    ] })
  })

  it('a rotation storage refuses to save stays in memory and is what the next refresh presents', async () => {
    await replay({ engines: 2, drainSeed: 0, steps: [
      { k: 'storageFault', op: 'cas', mode: 'fail' },
      { k: 'expire' },
      { k: 'get', engine: 0, abortable: false },
      { k: 'drain' },
      { k: 'expire' },
      { k: 'get', engine: 0, abortable: false },
      { k: 'drain' },
    ] })
  })

  it('a hung storage write and a hung token call end, and every call settles', async () => {
    await replay({ engines: 3, drainSeed: 7, steps: [
      { k: 'storageFault', op: 'cas', mode: 'hang' },
      { k: 'outcome', outcome: 'hang' },
      { k: 'expire' },
      { k: 'get', engine: 0, abortable: true },
      { k: 'post', engine: 1, abortable: false },
      { k: 'drain' },
      { k: 'tick', ms: 10_001 },
      { k: 'drain' },
      { k: 'get', engine: 2, abortable: false },
      { k: 'drain' },
    ] })
  })
})
