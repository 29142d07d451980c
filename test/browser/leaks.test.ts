// The leak scan in real Chromium: the library (src/, bundled with esbuild) in a page served from an
// app origin, against an allow-listed API origin and an "evil" origin, all on 127.0.0.1; see
// test/leaks/. A browser follows redirects itself, before any hook runs, and shows none to script
// (`redirect: 'manual'` gives an opaque response), so the library cannot strip headers from a
// redirected request there: what Chromium does with them is asserted here as observed.
import { build } from 'esbuild'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from '../e2e/browser.ts'
import { leakChecks, type LeakRun } from '../leaks/checks.ts'
import type { ScenarioConfig } from '../leaks/scenario.ts'
import { startLeakServers } from '../leaks/servers.ts'

let browser: Browser | undefined
let result: LeakRun | undefined

beforeAll(async () => {
  const bundle = await build({ entryPoints: ['test/browser/leaks-page.ts'], bundle: true, format: 'esm', platform: 'browser', write: false, logLevel: 'error' })
  const servers = await startLeakServers({ html: '<!doctype html><meta charset="utf-8"><title>leaks</title><script type="module" src="/scenario.js"></script>', script: bundle.outputFiles[0]!.text })
  try {
    browser = await launchChromium()
    const page = await browser.newPage()
    await page.goto(servers.app!)
    await page.waitForFunction(() => (window as any).ready === true, undefined, { polling: 100 })
    const config: ScenarioConfig = { api: servers.api, evil: servers.evil, clientId: servers.clientId, clientSecret: servers.clientSecret, tenant: servers.tenant, tokens: servers.signIn() }
    const report = await page.evaluate((config) => (window as any).runScenario(config), config)
    result = { servers, report }
  } catch (error) {
    await servers.close()
    throw error
  }
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await result?.servers.close()
})

describe('leak scan in real Chromium', () => {
  leakChecks(() => result!, { browser: true })

  // What Chromium itself does when the API redirects an authenticated request to another origin
  // (observed, Chromium 156): it follows before any hook runs, drops Authorization (Fetch
  // standard: removed on a cross-origin redirect), and keeps every other header the request had.
  // Those make the redirected request non-simple, so it first sends a CORS preflight from the
  // opaque origin "null" naming them (the names only); a target that allows them then receives
  // the values.
  it('Chromium (observed): a cross-origin redirect keeps X-Tenant, after a preflight that names it; Authorization is dropped', () => {
    const { servers } = result!
    const seen = (step: string) =>
      servers.hits('evil', step).map((hit) => ({
        method: hit.method,
        origin: hit.headers.origin,
        preflight: hit.headers['access-control-request-headers'],
        tenant: hit.headers['x-tenant'],
        authorization: hit.headers.authorization,
        body: hit.body || undefined,
      }))
    const preflight = { method: 'OPTIONS', origin: 'null', tenant: undefined, authorization: undefined, body: undefined }
    expect(seen('redirect-302')).toEqual([
      { ...preflight, preflight: 'x-tenant' },
      { method: 'GET', origin: 'null', preflight: undefined, tenant: servers.tenant, authorization: undefined, body: undefined },
    ])
    expect(seen('redirect-307')).toEqual([
      { ...preflight, preflight: 'content-type,x-tenant' },
      { method: 'POST', origin: 'null', preflight: undefined, tenant: servers.tenant, authorization: undefined, body: '{"n":1}' },
    ])
    expect(seen('redirect-401')).toEqual([
      { ...preflight, preflight: 'x-tenant' },
      { method: 'GET', origin: 'null', preflight: undefined, tenant: servers.tenant, authorization: undefined, body: undefined },
    ])
  })

  it('Chromium (observed): a target whose preflight does not allow X-Tenant gets the preflight only, and the request fails', () => {
    const { servers, report } = result!
    const hits = servers.hits('evil', 'redirect-strict-cors')
    expect(hits.length).toBeGreaterThanOrEqual(1) // one per attempt: ky retries a GET after a network error
    for (const hit of hits) expect([hit.method, hit.headers['access-control-request-headers'], hit.headers['x-tenant']]).toEqual(['OPTIONS', 'x-tenant', undefined])
    expect(report.steps.find((step) => step.step === 'redirect-strict-cors')).toMatchObject({ outcome: 'error' })
  })
})
