// Node-side assertions over one run of ./scenario.ts in a real runtime: what each server
// received, and a full-depth scan of every error and event the runtime serialized.
import { inspect } from 'node:util'
import { expect, it } from 'vitest'
import type { ScenarioReport, Serialized, StepResult } from './scenario.ts'
import { leaksIn, leaksInText, reachableStrings } from './scan.ts'
import type { Hit, LeakServers } from './servers.ts'

export interface LeakRun {
  servers: LeakServers
  report: ScenarioReport
}

/** Where each secret occurs in one serialized error or event: every surface, every path. */
export function leaksOf(entry: Serialized, secrets: Record<string, string>): string[] {
  const where = (surface: string, labels: string[]) => labels.map((label) => `${entry.step} ${entry.kind} ${surface}: ${label}`)
  return [
    ...where('String()', leaksInText(entry.string, secrets)),
    ...where('JSON.stringify()', leaksInText(entry.json, secrets)),
    ...where('stack', leaksInText(entry.stack, secrets)),
    ...where('runtime inspect', leaksInText(entry.inspect ?? '', secrets)),
    ...leaksIn(entry.walk, secrets).map(({ secret, path }) => `${entry.step} ${entry.kind} walk ${path}: ${secret}`),
  ]
}

const requests = (hits: Hit[]) => hits.filter((hit) => hit.method !== 'OPTIONS')
const stepOf = (report: ScenarioReport, step: string) => report.steps.find((result) => result.step === step)

/** What a step should end in: `ok` with a status, or an error `code`. */
const EXPECTED: Record<string, Partial<StepResult>> = {
  'api-ok': { outcome: 'ok', status: 200 },
  'evil-direct': { outcome: 'ok', status: 200 },
  'redirect-303-post': { outcome: 'ok', status: 200 },
  'redirect-302': { outcome: 'ok', status: 200 },
  'redirect-strict-cors': { outcome: 'ok', status: 200 }, // in browsers: see the browser's own test
  'redirect-307': { outcome: 'ok', status: 200 },
  'redirect-same-origin': { outcome: 'ok', status: 200 },
  'redirect-401': { outcome: 'error' },
  'retry-401': { outcome: 'ok', status: 200 },
  'force-refresh': { outcome: 'ok' },
  'scope-403': { outcome: 'error', code: 'ERR_INSUFFICIENT_SCOPE' },
  'still-401': { outcome: 'error', code: 'ERR_STILL_UNAUTHORIZED' },
  'proactive-error': { outcome: 'ok', status: 200 },
  'token-500-echo': { outcome: 'error', code: 'ERR_TOKEN_ENDPOINT' },
  'token-html': { outcome: 'error', code: 'ERR_TOKEN_RESPONSE_INVALID' },
  'token-invalid-rotate': { outcome: 'error', code: 'ERR_TOKEN_RESPONSE_INVALID' },
  'token-302': { outcome: 'error', code: 'ERR_TOKEN_ENDPOINT' },
  'token-307': { outcome: 'error', code: 'ERR_TOKEN_ENDPOINT' },
  // the connection drops after the request was sent: replayed once, at once (the server had not rotated)
  'token-reset': { outcome: 'ok' },
  'api-after-faults': { outcome: 'ok', status: 200 },
  'session-ended': { outcome: 'error', code: 'ERR_SESSION_ENDED' },
  missing: { outcome: 'error', code: 'ERR_TOKEN_MISSING' },
}
const TOKEN_REDIRECT_STEPS = ['token-302', 'token-307']
const SEPARATE = [...TOKEN_REDIRECT_STEPS, 'proactive-error']

/**
 * The checks every runtime shares. `browser`: the runtime follows redirects itself (Chromium),
 * so the library cannot strip configured headers from a redirected request there; the caller
 * asserts what the browser does with them separately.
 */
export function leakChecks(run: () => LeakRun, { browser }: { browser: boolean }): void {
  it('every step ends as intended (outcome, status or error code)', () => {
    const { report } = run()
    const expected = Object.entries(EXPECTED).filter(([step]) => !SEPARATE.includes(step) && !(browser && step === 'redirect-strict-cors'))
    expect(expected.map(([step]) => ({ step, ...pick(stepOf(report, step), EXPECTED[step]!) }))).toEqual(expected.map(([step, outcome]) => ({ step, ...outcome })))
  })

  it('a request to another origin through the same ky instance carries no Authorization and no configured header', () => {
    const { servers } = run()
    const hits = requests(servers.hits('evil', 'evil-direct'))
    expect(hits).toHaveLength(1)
    expect(hits[0]!.headers).not.toHaveProperty('authorization')
    expect(hits[0]!.headers).not.toHaveProperty('x-tenant')
  })

  it('the allow-listed API redirecting (302, 307) to another origin: the target receives no Authorization, not even its name in a preflight', () => {
    const { servers } = run()
    for (const step of ['redirect-302', 'redirect-strict-cors', 'redirect-307', 'redirect-401']) {
      const hits = servers.hits('evil', step)
      if (!(browser && step === 'redirect-strict-cors')) expect(requests(hits).length, step).toBeGreaterThanOrEqual(1)
      for (const hit of hits) {
        expect(hit.headers, `${step} ${hit.method}`).not.toHaveProperty('authorization')
        // a preflight at the target must not even announce it
        expect(hit.headers['access-control-request-headers'] ?? '', `${step} ${hit.method}`).not.toMatch(/authorization/i)
      }
    }
    // the 307 is replayed as a POST with its body
    expect(requests(servers.hits('evil', 'redirect-307')).map((hit) => [hit.method, hit.body])).toEqual([['POST', '{"n":1}']])
  })

  if (!browser) {
    it('on servers the library follows redirects itself: configured headers (X-Tenant) never reach another origin', () => {
      const { servers } = run()
      for (const step of ['redirect-302', 'redirect-strict-cors', 'redirect-307', 'redirect-401']) {
        for (const hit of servers.hits('evil', step)) expect(hit.headers, `${step} ${hit.method}`).not.toHaveProperty('x-tenant')
      }
    })
  }

  it('a redirected request reaches the API exactly once (the first redirect an instance meets included, a POST answered 303)', () => {
    const { servers, report } = run()
    expect(stepOf(report, 'redirect-303-post')).toMatchObject({ outcome: 'ok', status: 200 })
    expect(requests(servers.hits('api', 'redirect-303-post')).filter((hit) => !hit.path.startsWith('/__control/')).map((hit) => [hit.method, hit.path, hit.status])).toEqual([
      ['POST', '/api/redirect', 303],
      ['GET', '/api/data', 200],
    ])
    for (const step of ['redirect-302', 'redirect-307', 'redirect-same-origin', 'redirect-401']) {
      expect(requests(servers.hits('api', step)).filter((hit) => hit.path === '/api/redirect').length, step).toBe(1)
    }
  })

  it('a redirect that stays on the allow-listed origin still carries the token and the configured header', () => {
    const { servers, report } = run()
    expect(stepOf(report, 'redirect-same-origin')).toMatchObject({ outcome: 'ok', status: 200 })
    const data = requests(servers.hits('api', 'redirect-same-origin')).filter((hit) => hit.path === '/api/data')
    expect(data.map((hit) => [hit.status, !!hit.headers.authorization, hit.headers['x-tenant']])).toEqual([[200, true, servers.tenant]])
  })

  it('a 401 from a redirect target (another origin) does not trigger a token refresh', () => {
    const { servers, report } = run()
    expect(requests(servers.hits('evil', 'redirect-401')).map((hit) => [hit.path, hit.status])).toEqual([['/unauthorized', 401]])
    expect(servers.tokenCalls('redirect-401')).toBe(0)
    expect(report.events.filter((event) => event.step === 'redirect-401' && event.kind === 'event:refresh')).toEqual([])
    const step = stepOf(report, 'redirect-401')!
    expect(step.code ?? '').not.toBe('ERR_STILL_UNAUTHORIZED')
  })

  it('the 401-retry path sends the new token to the API only, once', () => {
    const { servers } = run()
    const data = requests(servers.hits('api', 'retry-401')).filter((hit) => hit.path === '/api/data')
    expect(data.map((hit) => hit.status)).toEqual([401, 200])
    const [stale, renewed] = data.map((hit) => hit.headers.authorization)
    expect(renewed).toMatch(/^Bearer at_/)
    expect(renewed).not.toBe(stale)
    expect(servers.tokenCalls('retry-401')).toBe(1)
    expect(servers.hits('evil', 'retry-401')).toEqual([])
    // the renewed token never appears at the evil origin, in any later step either
    expect(JSON.stringify(servers.hits('evil'))).not.toContain(renewed!.slice('Bearer '.length))
  })

  it('token-endpoint calls never follow a redirect: any 3xx is ERR_TOKEN_ENDPOINT and the target receives nothing', () => {
    const { servers, report } = run()
    for (const step of TOKEN_REDIRECT_STEPS) {
      expect(servers.hits('evil', step), step).toEqual([])
      expect(pick(stepOf(report, step), EXPECTED[step]!), step).toEqual(EXPECTED[step])
    }
  })

  it('an early refresh that fails transiently keeps serving the still-valid token: an `error` event, the request succeeds', () => {
    const { servers, report } = run()
    expect(servers.tokenCalls('proactive-error')).toBe(1)
    expect(pick(stepOf(report, 'proactive-error'), EXPECTED['proactive-error']!)).toEqual(EXPECTED['proactive-error'])
    expect(report.events.filter((event) => event.step === 'proactive-error').map((event) => event.kind)).toContain('event:error')
  })

  it('a refresh-token request whose connection drops after sending is replayed exactly once, unchanged, to the same endpoint', () => {
    const { servers } = run()
    const calls = requests(servers.hits('api', 'token-reset')).filter((hit) => hit.path === '/oauth/token')
    expect(calls.map((hit) => hit.status)).toEqual([-1, 200])
    expect(calls[1]!.body).toBe(calls[0]!.body)
    expect(servers.hits('evil', 'token-reset')).toEqual([])
  })

  it('the evil origin never received any token, refresh token or secret, in any step (headers, URL, body)', () => {
    const { servers } = run()
    expect(leaksInText(JSON.stringify(servers.hits('evil')), servers.secrets())).toEqual([])
  })

  it('rotation stayed intact: no refresh token was presented twice', () => {
    expect(run().servers.reuse()).toBe(0)
  })

  it('errors and events were produced and serialized in the runtime', () => {
    const { report } = run()
    expect(report.errors.length).toBeGreaterThanOrEqual(10)
    const kinds = new Set(report.events.map((event) => event.kind))
    for (const kind of ['event:tokens', 'event:refresh', 'event:sessionEnded']) expect(kinds).toContain(kind)
    for (const entry of [...report.errors, ...report.events]) expect(entry.walk.length).toBeGreaterThan(0)
  })

  it('no error (String, JSON, stack, runtime inspector, full-depth walk) contains a token, refresh token or secret', () => {
    const { servers, report } = run()
    const secrets = servers.secrets()
    expect(report.errors.flatMap((entry) => leaksOf(entry, secrets))).toEqual([])
  })

  it('no event (String, JSON, runtime inspector, full-depth walk) contains a token, refresh token or secret', () => {
    const { servers, report } = run()
    const secrets = servers.secrets()
    expect(report.events.flatMap((entry) => leaksOf(entry, secrets))).toEqual([])
  })

  it('the report as shipped back, util.inspect at depth Infinity and walked again in Node, contains no secret', () => {
    const { servers, report } = run()
    const secrets = servers.secrets()
    expect(leaksInText(inspect(report, { depth: Infinity, maxArrayLength: Infinity, maxStringLength: Infinity }), secrets)).toEqual([])
    expect(reachableStrings(report).filter(({ value }) => leaksInText(value, secrets).length > 0).map(({ path }) => path)).toEqual([])
  })
}

function pick(result: StepResult | undefined, like: Partial<StepResult>): Partial<StepResult> {
  if (!result) return { outcome: undefined } as never
  return Object.fromEntries(Object.keys(like).map((key) => [key, result[key as keyof StepResult]])) as Partial<StepResult>
}
