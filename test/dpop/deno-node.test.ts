// DPoP under real Deno (the `deno` npm package ships the binary), on the built package (dist/):
// test/dpop/deno-scenario.ts against oidc-provider (DPoP, nonces required, rotation) and the
// jose-verifying resource server, both run by this Node process on 127.0.0.1. Needs `npm run build`.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import type { ScenarioInput } from './runtime-scenario.ts'
import { expectScenario, runtimeWorld, summary, type RuntimeWorld } from './runtime-world.ts'

const run = promisify(execFile)
let w: RuntimeWorld | undefined
afterEach(async () => {
  await w?.close()
  w = undefined
})

async function deno(input: ScenarioInput) {
  const { stdout } = await run('node_modules/.bin/deno', ['run', '--allow-net=127.0.0.1', '--allow-read', '--allow-env', 'test/dpop/deno-scenario.ts', JSON.stringify(input)], {
    encoding: 'utf8',
    env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
  })
  return JSON.parse(stdout.trim().split('\n').at(-1)!)
}

describe('DPoP under real Deno (built package) against oidc-provider and a jose-verifying resource server', () => {
  for (const alg of ['ES256', 'EdDSA'] as const) {
    it(`generateDPoPKey('${alg}'): nonce rotation midway through 20 requests, 1 refresh per expiry, proofs verified, another key refused; client credentials with a configured JWK`, async () => {
      w = await runtimeWorld(alg)
      const result = await deno(w.input)
      expect(result.runtime).toMatch(/^deno 2\./)
      expectScenario(w, result, alg)
      console.info(summary(w, `deno ${alg}`))
    }, 60_000)
  }
})
