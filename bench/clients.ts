// Every client under test, each in its idiomatic, documented setup, all on the same global fetch.
import ky from 'ky'
import axios from 'axios'
import createAuthRefreshInterceptor from 'axios-auth-refresh'
import { applyAuthTokenInterceptor, applyStorage, setAuthTokens } from 'axios-jwt'
import { OAuth2Client, OAuth2Fetch } from '@badgateway/oauth2-client'
import { pipeline, withHeaders, withHttpError, withTokenRefresh } from 'fetch-extras'
import { createTokenAuth, memoryStorage, refreshTokenGrant, type TokenStorage } from 'ky-token-refresh'
import { API_URL, BASE_URL, TOKEN_URL, jwt, world } from './world.ts'

export type Scenario = 'valid' | 'expired-known' | 'revoked'

export interface Client {
  name: string
  setup: string
  get(): Promise<unknown>
}

/** Tokens as each client sees them at the start of a scenario. */
function initialToken(scenario: Scenario): { token: string; expiresIn: number } {
  if (scenario === 'expired-known') return { token: jwt(-10), expiresIn: -10 }
  if (scenario === 'revoked') {
    const token = world.validToken
    world.rotateSilently() // the client's token looks valid but the server no longer accepts it
    return { token, expiresIn: 3600 }
  }
  return { token: world.validToken, expiresIn: 3600 }
}

export function bareFetch(): Client {
  const headers = { authorization: `Bearer ${world.validToken}` }
  return { name: 'fetch', setup: 'global fetch with a fixed header', get: async () => (await fetch(API_URL, { headers })).json() }
}

export function bareKy(): Client {
  const api = ky.create({ baseUrl: BASE_URL, headers: { authorization: `Bearer ${world.validToken}` } })
  return { name: 'ky', setup: 'ky.create with a fixed header', get: () => api.get('items').json() }
}

/**
 * A control, not a client: ky with the same hook slots we fill (beforeRequest setting the header,
 * beforeRetry and beforeError doing nothing) and a pass-through `fetch`. What any hook-based
 * library pays in ky before its hooks do any work.
 */
export function kyHookFloor(): Client {
  const value = `Bearer ${world.validToken}`
  const api = ky.create({
    baseUrl: BASE_URL,
    fetch: (input, init) => globalThis.fetch(input, init),
    hooks: { beforeRequest: [({ request }) => void request.headers.set('authorization', value)], beforeRetry: [() => {}], beforeError: [({ error }) => error] },
  })
  return { name: 'ky + 3 empty hooks (control)', setup: 'the hook slots we use, doing nothing but set the header, + a pass-through fetch', get: () => api.get('items').json() }
}

/** Ours through `auth.extend(api)`: the hooks settled per instance (no `init` hook). */
export async function kyTokenRefreshExtend(): Promise<Client> {
  const auth = createTokenAuth({ grant: refreshTokenGrant({ url: TOKEN_URL, body: 'json' }), storage: memoryStorage() })
  await auth.setTokens({ access_token: world.validToken, expires_in: 3600, refresh_token: world.refreshToken })
  const api = auth.extend(ky.create({ baseUrl: BASE_URL }))
  return { name: 'ky + ky-token-refresh (auth.extend)', setup: 'auth.extend(ky.create()), memory storage', get: () => api.get('items').json() }
}

/** Ours with DPoP: an ES256 proof signed per request (WebCrypto), `Authorization: DPoP …`. */
export async function kyTokenRefreshDPoP(): Promise<Client> {
  const { dpop, generateDPoPKey } = await import('ky-token-refresh/dpop')
  const auth = createTokenAuth({ grant: refreshTokenGrant({ url: TOKEN_URL, body: 'json' }), storage: memoryStorage(), sender: dpop({ key: await generateDPoPKey() }) })
  await auth.setTokens({ access_token: world.validToken, token_type: 'DPoP', expires_in: 3600, refresh_token: world.refreshToken })
  const api = auth.extend(ky.create({ baseUrl: BASE_URL }))
  return { name: 'ky + ky-token-refresh (DPoP, auth.extend)', setup: 'dpop({ key }) sender: one ES256 proof per request', get: () => api.get('items').json() }
}

export async function kyTokenRefresh(scenario: Scenario, storage: TokenStorage = memoryStorage()): Promise<Client> {
  const { token, expiresIn } = initialToken(scenario)
  let offset = 0
  const auth = createTokenAuth({ grant: refreshTokenGrant({ url: TOKEN_URL, body: 'json' }), storage, now: () => Date.now() + offset })
  await auth.setTokens({ access_token: token, expires_in: 3600, refresh_token: world.refreshToken })
  if (expiresIn < 0) offset = 3_600_000 // the client knows the token has expired
  const api = ky.create({ baseUrl: BASE_URL, hooks: auth.hooks })
  const name = storage.name === 'memory' ? 'ky + ky-token-refresh' : `ky + ky-token-refresh (${storage.name})`
  return { name, setup: `createTokenAuth + refreshTokenGrant, ${storage.name} storage`, get: () => api.get('items').json() }
}

export async function oauth2Fetch(scenario: Scenario): Promise<Client> {
  const { token, expiresIn } = initialToken(scenario)
  const client = new OAuth2Client({ server: 'http://api.bench', tokenEndpoint: '/oauth/token', clientId: 'bench', fetch: (input, init) => fetch(input, init) })
  const wrapper = new OAuth2Fetch({
    client,
    getNewToken: () => client.clientCredentials(),
    getStoredToken: () => ({ accessToken: token, refreshToken: world.refreshToken, expiresAt: Date.now() + expiresIn * 1000 }),
    scheduleRefresh: false,
  })
  return { name: '@badgateway/oauth2-client OAuth2Fetch', setup: 'OAuth2Fetch with getStoredToken (documented)', get: async () => (await wrapper.fetch(API_URL)).json() }
}

// fetch-extras (ky's author's fetch wrappers), composed in its documented pipeline order: `withHeaders`
// with a function (called per request) sends the current token; `withTokenRefresh` refreshes on a
// 401 and retries once, sharing a refresh only while it is pending; `withHttpError` after it turns
// a response still not 2xx into a rejection (counted as failed). The app keeps the token itself.
// No proactive refresh, no storage: in (a) the known-expired token is sent and gets a 401 first.
export function fetchExtras(scenario: Scenario): Client {
  let { token } = initialToken(scenario)
  const apiFetch = pipeline(
    fetch,
    withHeaders(() => ({ Authorization: `Bearer ${token}` })),
    withTokenRefresh({
      refreshToken: async () => {
        const response = await fetch(TOKEN_URL, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: world.refreshToken }) })
        token = (await response.json()).access_token
        return token
      },
    }),
    withHttpError(),
  )
  return { name: 'fetch-extras withTokenRefresh', setup: 'pipeline(fetch, withHeaders(() => token), withTokenRefresh, withHttpError) (README/TSDoc), no proactive refresh', get: async () => (await apiFetch(API_URL)).json() }
}

export function axiosAuthRefresh(scenario: Scenario): Client {
  let { token } = initialToken(scenario)
  const instance = axios.create({ adapter: 'fetch' })
  instance.interceptors.request.use((config) => {
    config.headers.Authorization = `Bearer ${token}`
    return config
  })
  createAuthRefreshInterceptor(instance, async (failed) => {
    const response = await axios.post(TOKEN_URL, { refresh_token: world.refreshToken }, { adapter: 'fetch' })
    token = response.data.access_token
    failed.response.config.headers.Authorization = `Bearer ${token}`
  })
  return { name: 'axios + axios-auth-refresh', setup: 'createAuthRefreshInterceptor (README), fetch adapter, no proactive refresh', get: async () => (await instance.get(API_URL)).data }
}

export async function axiosJWT(scenario: Scenario): Promise<Client> {
  const { token } = initialToken(scenario)
  const memory = new Map<string, string>()
  applyStorage({ get: async (key: string) => memory.get(key) ?? null, set: async (key: string, value: string) => void memory.set(key, value), remove: async (key: string) => void memory.delete(key) })
  await setAuthTokens({ accessToken: token, refreshToken: world.refreshToken })
  const instance = axios.create({ adapter: 'fetch' })
  applyAuthTokenInterceptor(instance, {
    requestRefresh: async (refreshToken: string) => (await axios.post(TOKEN_URL, { refresh_token: refreshToken }, { adapter: 'fetch' })).data.access_token,
  })
  return { name: 'axios + axios-jwt', setup: 'applyAuthTokenInterceptor with an in-memory storage (Node has no localStorage)', get: async () => (await instance.get(API_URL)).data }
}
