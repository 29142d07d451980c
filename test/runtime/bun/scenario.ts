// The core scenario under real Bun, on the built package (dist/) imported by its own name through
// package.json "exports", as a user would: the four API recipes from the README against their
// fixtures on 127.0.0.1, with memory storage. For each API: inject, a storm of concurrent requests
// at expiry (proactive refresh), a storm of 401s after a server-side expiry (one refresh, every
// request replayed once), rotation. Prints one JSON line of measurements; the Node side
// (bun.test.ts) owns the fixtures and checks their counters.
import ky from 'ky'
import { clientCredentialsGrant, createTokenAuth, jsonLoginGrant, refreshTokenGrant, type Grant, type TokenAuthOptions, type TokenResponseBody } from 'ky-token-refresh'
import { memoryStorage } from 'ky-token-refresh/storage/memory'

// Bun's global, declared here so the Node-side typecheck of test/ accepts this file.
declare const Bun: { argv: string[]; version: string }

type Kind = 'stemp' | 'stenn' | 'dokstamp' | 'starship'
interface Target { origin: string; session?: TokenResponseBody; credentials: Record<string, string> }

const [proactiveSize, reactiveSize, targetsJSON] = Bun.argv.slice(2)
const PROACTIVE = Number(proactiveSize)
const REACTIVE = Number(reactiveSize)
const targets = JSON.parse(targetsJSON!) as Record<Kind, Target>

// The README's recipe for each API: grant, API base, and a route the fixture serves.
function recipe(kind: Kind, { origin, credentials }: Target): { grant: Grant; tokenPaths: string[]; base: string; route: string; options: Partial<TokenAuthOptions> } {
  switch (kind) {
    case 'stemp':
      return { grant: refreshTokenGrant({ url: `${origin}/api/v1/apps/oauth2/refresh`, body: 'json' }), tokenPaths: ['/api/v1/apps/oauth2/refresh'], base: `${origin}/api/v1/`, route: 'passes', options: {} }
    case 'stenn':
      return {
        grant: clientCredentialsGrant({ url: `${origin}/auth/v1/token`, clientId: credentials.client_id!, clientSecret: credentials.client_secret! }),
        tokenPaths: ['/auth/v1/token'], base: `${origin}/v1/`, route: 'companies', options: {},
      }
    case 'dokstamp':
      return {
        grant: clientCredentialsGrant({ url: `${origin}/oauth/token`, clientId: credentials.client_id!, clientSecret: credentials.client_secret! }),
        tokenPaths: ['/oauth/token'], base: `${origin}/api/`, route: 'documents', options: { refreshBefore: 60_000, headers: { 'X-Tenant': 'acme' } },
      }
    case 'starship':
      return {
        grant: jsonLoginGrant({ loginUrl: `${origin}/auth/login`, refreshUrl: `${origin}/auth/refresh`, credentials: { email: credentials.email!, password: credentials.password! } }),
        tokenPaths: ['/auth/login', '/auth/refresh'], base: `${origin}/api/v1/`, route: 'products', options: { refreshBefore: 300_000 },
      }
  }
}

async function scenario(kind: Kind, target: Target) {
  const { grant, tokenPaths, base, route, options } = recipe(kind, target)
  let offset = 0
  // Token-endpoint calls as this process makes them, so each phase is counted on its own.
  let tokenCalls = 0
  const countingFetch: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    if (tokenPaths.includes(url.pathname)) tokenCalls++
    return fetch(input, init)
  }
  const storage = memoryStorage()
  const auth = createTokenAuth({ grant, storage, fetch: countingFetch, now: () => Date.now() + offset, ...options })
  const refreshes: boolean[] = []
  auth.on('refresh', ({ rotated }) => refreshes.push(rotated))
  const seen: (string | null)[] = []
  const api = ky.create({ baseUrl: base, hooks: auth.hooks }).extend({
    hooks: { beforeRequest: [({ request }) => void seen.push(request.headers.get('authorization'))] },
  })
  const phase = async (run: () => Promise<{ ok: boolean }[]>) => {
    const before = tokenCalls
    const responses = await run()
    return { ok: responses.length > 0 && responses.every((response) => response.ok), tokenCalls: tokenCalls - before }
  }
  const refreshToken = async () => (await storage.get('default'))?.refreshToken ?? null

  // 1. First call: stemp starts from a sign-in; the others fetch their first token on demand.
  if (target.session) await auth.setTokens(target.session)
  const first = await phase(async () => [await api.get(route).json<{ ok: boolean }>()])
  const token = await auth.getAccessToken()
  const injected = seen[0] === `Bearer ${token}` && (!target.session || token === target.session.access_token)
  const rt0 = await refreshToken()

  // 2. Proactive: the client's clock passes expiry; concurrent requests share one refresh.
  offset = 2 * 86_400_000
  const proactive = await phase(() => Promise.all(Array.from({ length: PROACTIVE }, () => api.get(route).json<{ ok: boolean }>())))
  const rt1 = await refreshToken()

  // 3. Reactive: the server expires every access token early; each request gets a 401, they share
  // one refresh, and each is replayed once (a JSON body, replayed byte for byte).
  await fetch(`${target.origin}/__fixture/expire`, { method: 'POST' })
  const reactive = await phase(() => Promise.all(Array.from({ length: REACTIVE }, (_, n) => api.post(route, { json: { n } }).json<{ ok: boolean }>())))
  const rt2 = await refreshToken()

  return {
    injected,
    tokenCalls: [first.tokenCalls, proactive.tokenCalls, reactive.tokenCalls],
    ok: [first.ok, proactive.ok, reactive.ok],
    refreshes: refreshes.length,
    // stemp and Starship rotate the refresh token on every refresh; the client-credentials APIs have none.
    rotated: rt0 === null ? rt1 === null && rt2 === null : rt1 !== rt0 && rt2 !== rt1 && typeof rt2 === 'string',
  }
}

const results: Record<string, unknown> = { runtime: `bun ${Bun.version}` }
for (const kind of Object.keys(targets) as Kind[]) {
  try {
    results[kind] = await scenario(kind, targets[kind])
  } catch (error) {
    results[kind] = { error: String(error) }
  }
}
console.log(JSON.stringify(results))
