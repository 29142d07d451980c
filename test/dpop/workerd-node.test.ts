// DPoP in a Worker on real workerd (Miniflare): test/dpop/workerd-worker.ts, the library's sources
// bundled with esbuild, against oidc-provider (DPoP, nonces required, rotation) and the
// jose-verifying resource server, both run by this Node process on 127.0.0.1. The Worker's fetches
// leave through workerd's own network stack (no outboundService: with one, Miniflare hands Node a
// Request of its own undici, which Node's fetch does not recognise).
import { build } from 'esbuild'
import { Miniflare } from 'miniflare'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { ScenarioInput } from './runtime-scenario.ts'
import { expectScenario, runtimeWorld, summary, type RuntimeWorld } from './runtime-world.ts'

let mf: Miniflare
let w: RuntimeWorld | undefined

beforeAll(async () => {
  const bundle = await build({ entryPoints: ['test/dpop/workerd-worker.ts'], bundle: true, format: 'esm', platform: 'browser', conditions: ['workerd', 'worker', 'browser'], write: false, logLevel: 'error' })
  mf = new Miniflare({
    modules: true,
    script: bundle.outputFiles[0]!.text,
    compatibilityDate: '2025-06-01',
  })
  await mf.ready
}, 120_000)
afterAll(async () => {
  await mf?.dispose()
})
afterEach(async () => {
  await w?.close()
  w = undefined
})

async function worker(input: ScenarioInput) {
  const response = await mf.dispatchFetch('http://worker/scenario', { method: 'POST', body: JSON.stringify(input) })
  const result = (await response.json()) as any
  if (response.status !== 200) throw new Error(`the Worker failed: ${result.error}\n${result.stack}`)
  return result
}

describe('DPoP on real workerd (bundled sources) against oidc-provider and a jose-verifying resource server', () => {
  for (const alg of ['ES256', 'EdDSA'] as const) {
    it(`generateDPoPKey('${alg}'): nonce rotation midway through 20 requests, 1 refresh per expiry, proofs verified, another key refused; client credentials with a configured JWK`, async () => {
      w = await runtimeWorld(alg)
      const result = await worker(w.input)
      expect(result.runtime).toBe('Cloudflare-Workers')
      expectScenario(w, result, alg)
      console.info(summary(w, `workerd ${alg}`))
    }, 60_000)
  }
})
