// The leak scan in real workerd (Miniflare): the library (src/, bundled with esbuild) against an
// allow-listed API and an "evil" origin on 127.0.0.1; see test/leaks/. No outbound service: workerd
// talks to the servers itself, so redirects, resets and headers are handled by workerd's own
// fetch, as in production.
import { build } from 'esbuild'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe } from 'vitest'
import { leakChecks, type LeakRun } from '../../leaks/checks.ts'
import type { ScenarioConfig } from '../../leaks/scenario.ts'
import { startLeakServers } from '../../leaks/servers.ts'

let mf: Miniflare | undefined
let result: LeakRun | undefined

beforeAll(async () => {
  const servers = await startLeakServers()
  try {
    const bundle = await build({ entryPoints: ['test/runtime/workerd/leaks-worker.ts'], bundle: true, format: 'esm', platform: 'browser', conditions: ['workerd', 'worker', 'browser'], write: false, logLevel: 'error' })
    mf = new Miniflare({
      modules: true,
      script: bundle.outputFiles[0]!.text,
      // Before 2025-09-01 workerd's own redirect following keeps Authorization across origins
      // (strip_authorization_on_cross_origin_redirect): the worst case, which the library must cover.
      compatibilityDate: '2025-06-01',
    })
    const config: ScenarioConfig = { api: servers.api, evil: servers.evil, clientId: servers.clientId, clientSecret: servers.clientSecret, tenant: servers.tenant, tokens: servers.signIn() }
    const response = await mf.dispatchFetch('http://worker/', { method: 'POST', body: JSON.stringify(config) })
    result = { servers, report: (await response.json()) as LeakRun['report'] }
  } catch (error) {
    await servers.close()
    throw error
  }
}, 120_000)

afterAll(async () => {
  await mf?.dispose()
  await result?.servers.close()
})

describe('leak scan in real workerd', () => {
  leakChecks(() => result!, { browser: false })
})
