// The benchmark's in-memory world: one global `fetch` that serves an API and a token endpoint
// from memory, so every client (ky, fetch, axios, OAuth2Fetch) talks to the same transport and
// the network does not drown the signal.

export interface World {
  /** The token the API currently accepts. */
  validToken: string
  refreshToken: string
  tokenCalls: number
  apiCalls: number
  unauthorized: number
  /** Token-endpoint latency (ms). */
  tokenLatency: number
  /** Issue a new access token server-side without telling clients (revocation / rotation). */
  rotateSilently(): void
}

/** Node's own fetch, captured before run.ts installs the in-memory one (for the loopback runs). */
export const nativeFetch: typeof fetch = globalThis.fetch.bind(globalThis)

const ORIGIN = 'http://api.bench'
export const API_URL = `${ORIGIN}/v1/items`
export const TOKEN_URL = `${ORIGIN}/oauth/token`
export const BASE_URL = `${ORIGIN}/v1/`

let counter = 0
/** A JWT-shaped token (axios-jwt decodes `exp`); `ttl` seconds from now. */
export function jwt(ttl = 3600): string {
  const now = Math.floor(Date.now() / 1000)
  const payload = btoa(JSON.stringify({ sub: 'bench', iat: now, exp: now + ttl, n: counter++ })).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
  return `eyJhbGciOiJIUzI1NiJ9.${payload}.c2ln`
}

export const world: World = {
  validToken: jwt(),
  refreshToken: 'rt-0',
  tokenCalls: 0,
  apiCalls: 0,
  unauthorized: 0,
  tokenLatency: 20,
  rotateSilently() {
    world.validToken = jwt()
  },
}

const OK_BODY = '{"ok":true}'
const JSON_HEADERS = { 'content-type': 'application/json' }

export async function inMemoryFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
  if (url.startsWith(TOKEN_URL)) {
    world.tokenCalls++
    await new Promise((resolve) => setTimeout(resolve, world.tokenLatency))
    world.validToken = jwt()
    world.refreshToken = `rt-${world.tokenCalls}`
    return new Response(JSON.stringify({ access_token: world.validToken, token_type: 'Bearer', expires_in: 3600, refresh_token: world.refreshToken }), { headers: JSON_HEADERS })
  }
  world.apiCalls++
  const headers = input instanceof Request ? input.headers : new Headers(init?.headers)
  // DPoP requests carry `Authorization: DPoP <token>` and a proof (not verified here: the proof's
  // cost is on the client side, which is what the hot path measures).
  if ((headers.get('authorization') ?? '').replace(/^DPoP /, 'Bearer ') !== `Bearer ${world.validToken}`) {
    world.unauthorized++
    return new Response('{"error":"unauthorized"}', { status: 401, headers: JSON_HEADERS })
  }
  return new Response(OK_BODY, { headers: JSON_HEADERS })
}

export function resetCounts(): void {
  world.tokenCalls = 0
  world.apiCalls = 0
  world.unauthorized = 0
}
