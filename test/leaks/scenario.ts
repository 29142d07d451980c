// The leak scenario, run inside each real runtime (Deno, workerd, Chromium; bundled with esbuild
// from src/ like the other harnesses). It drives the library against the servers of
// ./servers.ts, announcing each step to the API (`/__control/mark`) so the servers can attribute
// what they receive, and collects every error and every event the library produced. Errors and
// events are serialized here, inside the runtime (String, JSON.stringify, a structured walk, and
// the runtime's own inspector when it has one), and shipped back to Node for scanning. The report
// holds nothing else the servers sent: statuses and codes only.
import ky from 'ky'
import { createTokenAuth, refreshTokenGrant, type SessionEvents } from '../../src/index.ts'
import { reachableStrings, type Found } from './scan.ts'

export interface ScenarioConfig {
  api: string
  evil: string
  clientId: string
  clientSecret: string
  tenant: string
  /** The sign-in token response. */
  tokens: Record<string, unknown>
}

export interface StepResult {
  step: string
  outcome: 'ok' | 'error'
  status?: number
  name?: string
  code?: string
  /** For errors: the HTTP status and URL origin of the response behind it, when there is one. */
  responseStatus?: number
  responseOrigin?: string
}

/** One error or event as the runtime itself serializes it. */
export interface Serialized {
  step: string
  kind: string
  string: string
  json: string
  stack: string
  walk: Found[]
  inspect?: string
}

export interface ScenarioReport {
  userAgent: string
  steps: StepResult[]
  errors: Serialized[]
  events: Serialized[]
}

export const STEPS = [
  'api-ok',
  'evil-direct',
  'redirect-303-post',
  'redirect-302',
  'redirect-strict-cors',
  'redirect-307',
  'redirect-same-origin',
  'redirect-401',
  'retry-401',
  'force-refresh',
  'scope-403',
  'still-401',
  'proactive-error',
  'token-500-echo',
  'token-html',
  'token-invalid-rotate',
  'token-302',
  'token-307',
  'token-reset',
  'api-after-faults',
  'session-ended',
  'missing',
] as const

const attempt = <T>(fn: () => T): string => {
  try {
    return String(fn())
  } catch (error) {
    return `<threw ${String((error as Error)?.message ?? error)}>`
  }
}

export async function runScenario(config: ScenarioConfig, inspect?: (value: unknown) => string): Promise<ScenarioReport> {
  const { api, evil } = config
  let offset = 0
  let step = 'setup'
  const steps: StepResult[] = []
  const errors: Serialized[] = []
  const events: Serialized[] = []
  const serialize = (kind: string, value: unknown): Serialized => ({
    step,
    kind,
    string: attempt(() => value),
    json: attempt(() => JSON.stringify(value)),
    stack: attempt(() => (value as Error)?.stack),
    walk: reachableStrings(value),
    ...(inspect && { inspect: attempt(() => inspect(value)) }),
  })

  const auth = createTokenAuth({
    grant: refreshTokenGrant({ url: `${api}/oauth/token`, clientId: config.clientId, clientSecret: config.clientSecret }),
    origins: [api],
    headers: { 'X-Tenant': config.tenant },
    now: () => Date.now() + offset,
  })
  for (const type of ['tokens', 'refresh', 'sessionEnded', 'error'] as (keyof SessionEvents)[]) {
    auth.on(type, (event) => events.push(serialize(`event:${type}`, event)))
  }
  const client = ky.create({ hooks: auth.hooks })
  const control = async (what: string) => {
    const response = await fetch(`${api}/__control/${what}`, { method: 'POST' })
    await response.body?.cancel()
  }
  const evilURL = (path: string) => `${evil}${path}?step=${step}`
  const redirect = (status: number, to: string) => `${api}/api/redirect?status=${status}&to=${encodeURIComponent(to)}`

  const run: Record<(typeof STEPS)[number], () => Promise<unknown>> = {
    'api-ok': () => client.get(`${api}/api/data`),
    // The same ky instance, another origin: no token, no configured header.
    'evil-direct': () => client.get(evilURL('/collect')),
    // The first redirect this instance meets: a POST answered 303 (the usual "created, see here")
    // on the API itself. The POST must reach the API once, whatever the runtime.
    'redirect-303-post': () => client.post(redirect(303, `${api}/api/data`), { json: { create: 1 } }),
    // The allow-listed API redirects to the evil origin.
    'redirect-302': () => client.get(redirect(302, evilURL('/collect'))),
    // A target whose CORS preflight allows no custom header (browsers only preflight).
    'redirect-strict-cors': () => client.get(redirect(302, evilURL('/strict'))),
    'redirect-307': () => client.post(redirect(307, evilURL('/collect')), { json: { n: 1 } }),
    // A redirect that stays on the allow-listed origin keeps working.
    'redirect-same-origin': () => client.get(redirect(302, `${api}/api/data`)),
    // The redirect target answers 401: not a reason to refresh.
    'redirect-401': () => client.get(redirect(302, evilURL('/unauthorized'))),
    // The API expired the token: 401 → one refresh → the retry carries the new token.
    'retry-401': async () => {
      await control('expire')
      return client.get(`${api}/api/data`)
    },
    'force-refresh': () => auth.getAccessToken({ forceRefresh: true }).then(() => undefined),
    'scope-403': () => client.get(`${api}/api/forbidden`),
    'still-401': async () => {
      await control('fault?name=api-401-echo&times=2')
      return client.get(`${api}/api/data`)
    },
    // Inside the early-refresh window, the token endpoint fails: an `error` event, the request goes on.
    'proactive-error': async () => {
      await control('fault?name=token-500-echo')
      offset = 3_600_000 - 30_000
      try {
        return await client.get(`${api}/api/data`)
      } finally {
        offset = 0
      }
    },
    'token-500-echo': async () => {
      await control('fault?name=token-500-echo')
      return auth.getAccessToken({ forceRefresh: true })
    },
    'token-html': async () => {
      await control('fault?name=token-html')
      return auth.getAccessToken({ forceRefresh: true })
    },
    'token-invalid-rotate': async () => {
      await control('fault?name=token-invalid-rotate')
      return auth.getAccessToken({ forceRefresh: true })
    },
    'token-302': async () => {
      await control('fault?name=token-302')
      return auth.getAccessToken({ forceRefresh: true })
    },
    'token-307': async () => {
      await control('fault?name=token-307')
      return auth.getAccessToken({ forceRefresh: true })
    },
    'token-reset': async () => {
      await control('fault?name=token-reset')
      return auth.getAccessToken({ forceRefresh: true })
    },
    'api-after-faults': () => client.get(`${api}/api/data`),
    'session-ended': async () => {
      await control('fault?name=token-invalid-grant-echo')
      return auth.getAccessToken({ forceRefresh: true })
    },
    missing: () => client.get(`${api}/api/data`),
  }

  step = 'seed'
  await control(`mark?step=${step}`)
  await auth.setTokens(config.tokens as never)
  for (const name of STEPS) {
    step = name
    await control(`mark?step=${name}`)
    try {
      const result = await run[name]()
      const status = result instanceof Response ? result.status : undefined
      if (result instanceof Response) await result.body?.cancel()
      steps.push({ step: name, outcome: 'ok', ...(status !== undefined && { status }) })
    } catch (error) {
      errors.push(serialize('error', error))
      const { name: errorName, code, response } = (error ?? {}) as { name?: string; code?: unknown; response?: Response }
      steps.push({
        step: name,
        outcome: 'error',
        ...(typeof errorName === 'string' && { name: errorName }),
        ...(typeof code === 'string' && { code }),
        ...(response instanceof Response && { responseStatus: response.status, responseOrigin: attempt(() => new URL(response.url).origin) }),
      })
    }
  }
  step = 'done'
  await control(`mark?step=${step}`)
  return { userAgent: typeof navigator === 'undefined' ? '' : String(navigator.userAgent), steps, errors, events }
}
