/**
 * `ky-token-refresh/testing`: what users of this library need to test their own code with it.
 *
 * - {@link testTokenStorage}: the storage contract every built-in adapter passes, for your own
 *   adapter. It needs only `describe` and `it` from your test runner (vitest, jest, mocha,
 *   `node:test`); its assertions are its own.
 * - {@link scriptedGrant}: a grant that answers from a script (tokens, errors, delays) and counts
 *   its calls, to test how an app behaves on refresh, rotation, a dead session or an outage
 *   without a token endpoint.
 *
 * @module
 */
import { TokenError, type TokenErrorCode } from '../errors.js'
import type { Grant, StoredTokens, TokenSet, TokenStorage } from '../types.js'

/** The two functions of a test runner the contract needs. */
export interface TestRunner {
  describe(name: string, body: () => void): unknown
  it(name: string, body: () => Promise<void>): unknown
}

/** What an adapter claims; every claim is proven, and a capability it lacks must be absent. */
export interface ContractOptions {
  /** The adapter has `compareAndSet`. */
  compareAndSet: boolean
  /** The adapter has `withLock`. */
  withLock: boolean
  /** Milliseconds a write may take to become visible to `get` (0 for strong consistency). */
  settle?: number
}

const sample = (rev: string, extra: Partial<StoredTokens> = {}): StoredTokens => ({
  accessToken: `at-${rev}`,
  refreshToken: `rt-${rev}`,
  expiresAt: 2_000_000_000_000,
  receivedAt: 1_999_999_000_000,
  scope: 'pass:read',
  rev,
  sid: 'session-1',
  ...extra,
})

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`Storage contract: ${what}`)
}
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/**
 * Register the storage contract for an adapter with your test runner: round-trips of every field
 * per key, copies on read, and, where claimed, compare-and-set (one winner of 20 concurrent
 * writers) and an exclusive per-key lock with a timeout.
 *
 * @example
 * ```ts
 * import { describe, it } from 'vitest'
 * import { testTokenStorage } from 'ky-token-refresh/testing'
 * testTokenStorage('myStorage()', () => myStorage(), { compareAndSet: true, withLock: true }, { describe, it })
 * ```
 */
export function testTokenStorage(name: string, create: () => TokenStorage | Promise<TokenStorage>, options: ContractOptions, { describe, it }: TestRunner): void {
  const settle = () => new Promise((resolve) => setTimeout(resolve, options.settle ?? 0))
  describe(`storage contract: ${name}`, () => {
    it('has a name and flags', async () => {
      const storage = await create()
      check(typeof storage.name === 'string' && storage.name, '"name" must be a non-empty string')
      check(['isolate', 'origin', 'global'].includes(storage.flags?.scope), 'flags.scope must be isolate, origin or global')
      check(['strong', 'eventual'].includes(storage.flags?.consistency), 'flags.consistency must be strong or eventual')
      check((typeof storage.compareAndSet === 'function') === options.compareAndSet, `compareAndSet must be ${options.compareAndSet ? 'present' : 'absent'} as claimed`)
      check((typeof storage.withLock === 'function') === options.withLock, `withLock must be ${options.withLock ? 'present' : 'absent'} as claimed`)
    })

    it('get / set / delete round-trip every field, per key', async () => {
      const storage = await create()
      check((await storage.get('k1')) === undefined, 'get() of a missing key must resolve undefined')
      await storage.set('k1', sample('a'))
      const { refreshToken: _, ...withoutRefresh } = sample('b')
      await storage.set('k2', withoutRefresh)
      await settle()
      check(same(await storage.get('k1'), sample('a')), 'get() must return every field that set() stored (rev and sid included)')
      check((await storage.get('k2'))?.accessToken === 'at-b', 'keys must be independent')
      await storage.delete('k1')
      await settle()
      check((await storage.get('k1')) === undefined, 'delete() must remove the key')
      check((await storage.get('k2'))?.rev === 'b', 'delete() must remove only its key')
      await storage.delete('missing') // deleting nothing is fine
    })

    it('returns copies: mutating a read value does not change what is stored', async () => {
      const storage = await create()
      const value = sample('a')
      await storage.set('k', value)
      value.accessToken = 'mutated-after-set'
      await settle()
      const read = (await storage.get('k'))!
      read.accessToken = 'mutated-after-get'
      check((await storage.get('k'))?.accessToken === 'at-a', 'set() and get() must copy, not share, the token set')
    })

    if (options.compareAndSet) {
      it('compareAndSet writes only over the expected revision', async () => {
        const storage = await create()
        check((await storage.compareAndSet!('k', undefined, sample('a'))) === true, 'compareAndSet over "absent" on an absent key must write')
        check((await storage.compareAndSet!('k', undefined, sample('x'))) === false, 'compareAndSet over "absent" on a present key must refuse')
        check((await storage.compareAndSet!('k', 'wrong', sample('x'))) === false, 'compareAndSet over a wrong revision must refuse')
        check((await storage.get('k'))?.rev === 'a', 'a refused compareAndSet must not write')
        check((await storage.compareAndSet!('k', 'a', sample('b'))) === true, 'compareAndSet over the stored revision must write')
        check(same(await storage.get('k'), sample('b')), 'compareAndSet must store every field')
      })

      it('delete with an expected revision removes only that revision', async () => {
        const storage = await create()
        await storage.set('k', sample('a'))
        await storage.delete('k', 'other')
        await settle()
        check((await storage.get('k'))?.rev === 'a', 'delete(key, expectedRev) must not remove another revision')
        await storage.delete('k', 'a')
        await settle()
        check((await storage.get('k')) === undefined, 'delete(key, expectedRev) must remove that revision')
        await storage.delete('k', 'a') // nothing there: fine
      })

      it('compareAndSet: of 20 concurrent writers over one revision, exactly one wins', async () => {
        const storage = await create()
        await storage.set('k', sample('base'))
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => storage.compareAndSet!('k', 'base', sample(`w${i}`))))
        check(results.filter(Boolean).length === 1, `exactly one of 20 concurrent writers must win (${results.filter(Boolean).length} did)`)
        check((await storage.get('k'))?.rev === `w${results.indexOf(true)}`, 'the stored value must be the winner\'s')
      })
    }

    if (options.withLock) {
      it('withLock: holders for one key never overlap; other keys are not blocked', async () => {
        const storage = await create()
        let holders = 0
        let maxHolders = 0
        const run = (i: number) =>
          storage.withLock!('k', async () => {
            maxHolders = Math.max(maxHolders, ++holders)
            await new Promise((resolve) => setTimeout(resolve, 5))
            holders--
            return i
          })
        const other = storage.withLock!('other-key', async () => 'free')
        const results = await Promise.all([run(0), run(1), run(2), run(3), run(4)])
        check(same(results, [0, 1, 2, 3, 4]), 'withLock must resolve with what the holder returned')
        check(maxHolders === 1, `holders of one key must not overlap (${maxHolders} at once)`)
        check((await other) === 'free', 'a lock on one key must not block another key')
      })

      it('withLock: a throwing holder releases the lock; a waiter past its timeout gets ERR_LOCK_TIMEOUT', async () => {
        const storage = await create()
        const thrown = await storage.withLock!('k', async () => { throw new Error('boom') }).catch((error: unknown) => error)
        check((thrown as Error)?.message === 'boom', 'withLock must reject with what the holder threw')
        check((await storage.withLock!('k', async () => 'after')) === 'after', 'a throwing holder must release the lock')
        let release!: () => void
        const held = storage.withLock!('k', () => new Promise<void>((resolve) => (release = resolve)))
        await new Promise((resolve) => setTimeout(resolve, 20))
        const error = await storage.withLock!('k', async () => 'never', { timeout: 100 }).catch((e: unknown) => e)
        check((error as { code?: string })?.code === 'ERR_LOCK_TIMEOUT', 'a waiter past its timeout must reject with ERR_LOCK_TIMEOUT')
        release()
        await held
        check((await storage.withLock!('k', async () => 'free again', { timeout: 1000 })) === 'free again', 'the lock must be free after its holder finished')
      })
    }
  })
}

/** One scripted answer of {@link scriptedGrant}. */
export type ScriptStep =
  /** Issue tokens: `rotate` (default true) issues a new refresh token; `lifetime` in seconds (default 3600). */
  | { tokens: { rotate?: boolean; lifetime?: number; delay?: number } }
  /** Fail with a TokenError of this code (`ERR_SESSION_ENDED` makes the engine end the session). */
  | { error: TokenErrorCode; delay?: number }

/** What {@link scriptedGrant} returns: the grant, and what it saw. */
export interface ScriptedGrant {
  grant: Grant
  /** Every call: the refresh token it was given (`undefined` when nothing was stored). */
  calls: { refreshToken: string | undefined }[]
  /** Every access token it issued, in order. */
  issued: string[]
}

/**
 * A grant that answers from a script, one step per call (the last step repeats), and records
 * what it was given. Tokens are unique (`at-1`, `rt-1`, …), so tests can tell generations apart.
 *
 * @example
 * ```ts
 * const { grant, calls } = scriptedGrant([{ tokens: {} }, { error: 'ERR_TOKEN_ENDPOINT' }, { error: 'ERR_SESSION_ENDED' }])
 * const auth = createTokenAuth({ grant, origins: ['https://api.example.com'] })
 * ```
 */
export function scriptedGrant(script: readonly ScriptStep[], { url = 'https://auth.example.test/token' }: { url?: string } = {}): ScriptedGrant {
  if (!script.length) throw new TypeError('scriptedGrant() needs at least one step.')
  const calls: ScriptedGrant['calls'] = []
  const issued: string[] = []
  let n = 0
  const grant: Grant = {
    name: 'scripted',
    url,
    rotates: true,
    async request(current, { now, signal }) {
      const step = script[Math.min(calls.length, script.length - 1)]!
      calls.push({ refreshToken: current?.refreshToken })
      const delay = 'tokens' in step ? step.tokens.delay : step.delay
      if (delay) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, delay)
          signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true })
        })
      }
      if ('error' in step) throw new TokenError(step.error, `Scripted failure (${step.error}).`)
      n++
      const tokens: TokenSet = { accessToken: `at-${n}`, receivedAt: now(), expiresAt: now() + (step.tokens.lifetime ?? 3600) * 1000 }
      if (step.tokens.rotate !== false) tokens.refreshToken = `rt-${n}`
      issued.push(tokens.accessToken)
      return tokens
    },
  }
  return { grant, calls, issued }
}
