/**
 * fast-check arbitraries for the interleaving property: a sequence is a list of {@link Step}s
 * (requests, gate releases, faults, time, logouts, sign-ins, aborts). Every step is valid in every
 * state (indices are taken modulo what exists), so fast-check can shrink freely.
 */
import fc from 'fast-check'
import { STORAGE_OPS } from './faulty-storage.ts'
import type { Scenario, Step } from './harness.ts'
import { TOKEN_OUTCOMES } from './model-server.ts'

const engine = fc.nat({ max: 2 })

export const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 30, arbitrary: fc.record({ k: fc.constant('run' as const), picks: fc.array(fc.nat({ max: 15 }), { minLength: 1, maxLength: 6 }) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('drain' as const) }) },
  { weight: 12, arbitrary: fc.record({ k: fc.constant('get' as const), engine, abortable: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('post' as const), engine, abortable: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('token' as const), engine, force: fc.boolean(), abortable: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('expire' as const) }) },
  // 30 s: nothing; 570 s: inside the early-refresh window; 600 s+: expired.
  { weight: 4, arbitrary: fc.record({ k: fc.constant('clock' as const), ms: fc.constantFrom(30_000, 570_000, 600_000, 3_600_000) }) },
  // 250 ms: retry sleeps; 10 s: ky, grant and storage timeouts; 40 s: lock timeouts.
  { weight: 3, arbitrary: fc.record({ k: fc.constant('tick' as const), ms: fc.constantFrom(250, 10_001, 40_001) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('logout' as const), engine, revoke: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('signIn' as const), engine, user: fc.constantFrom('A' as const, 'B' as const) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('abort' as const), pick: fc.nat({ max: 7 }) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('outcome' as const), outcome: fc.constantFrom(...TOKEN_OUTCOMES) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('storageFault' as const), op: fc.constantFrom(...STORAGE_OPS), mode: fc.constantFrom('fail' as const, 'hang' as const) }) },
)

export const scenarioArbitrary = (maxSteps = 30): fc.Arbitrary<Scenario> =>
  fc.record({
    engines: fc.integer({ min: 2, max: 3 }),
    steps: fc.array(stepArbitrary, { minLength: 1, maxLength: maxSteps }),
    drainSeed: fc.nat(),
  })
