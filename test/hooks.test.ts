import ky, { HTTPError } from 'ky'
import { describe, expect, it, vi } from 'vitest'
import { createTokenAuth, refreshTokenGrant, type TokenAuthOptions, type WithheldEvent } from '../src/index.ts'
import { MODES, client, fixture, rejection, wire, type Mode } from './helpers.ts'

const API = 'https://api.example'

/**
 * An in-memory API (ky's `fetch`) and token endpoint: `respond` answers each API request (its
 * number, from 1) given the token it carries; the token endpoint issues tok-1, tok-2, …
 */
async function memory(mode: Mode, options: Partial<TokenAuthOptions>, respond: (request: Request, n: number) => Response | Promise<Response>) {
  const seen: Request[] = []
  let issued = 0
  const auth = createTokenAuth({
    grant: refreshTokenGrant({ url: 'https://auth.example/token' }),
    origins: [API],
    fetch: async () => new Response(JSON.stringify({ access_token: `tok-${++issued}`, expires_in: 300, refresh_token: `rt-${issued}` }), { headers: { 'content-type': 'application/json' } }),
    ...options,
  })
  await auth.setTokens({ access_token: 'tok-0', expires_in: 300, refresh_token: 'rt-0' })
  const api = wire(auth, mode, {
    baseUrl: `${API}/`,
    retry: 0,
    fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init)
      seen.push(request)
      return respond(request, seen.length)
    }) as typeof fetch,
  })
  return { auth, api, seen, tokenCalls: () => issued }
}
const json = (status: number, body: unknown = {}, headers: Record<string, string> = {}) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })

for (const mode of MODES) {
  describe(`ky hooks (auth.${mode})`, () => {
    it('attaches the token only to allowed origins, through the same ky instance', async () => {
      const { server, auth, api } = await client('stemp', { mode })
      await auth.setTokens(server.signIn() as any)
      const other = await fixture('stenn') // another origin (another port)
      const seen: (string | null)[] = []
      const spy = api.extend({ hooks: { afterResponse: [({ request }) => void seen.push(request.headers.get('authorization'))] } })
      await spy.get('passes')
      await spy.get(other.url('/v1/companies'), { throwHttpErrors: false })
      expect(seen[0]).toMatch(/^Bearer ey/)
      expect(seen[1]).toBeNull()
      // The other origin got a 401 without a token, and it did not trigger a refresh.
      expect(other.counts.unauthorized).toBe(1)
      expect(server.counts.token).toBe(0)
    })

    it('lets a request opt out (context.auth = false) or pick another token set (context.authKey)', async () => {
      const { server, auth, api } = await client('stemp', { mode })
      await auth.setTokens(server.signIn() as any)
      await auth.setTokens(server.signIn() as any, { key: 'tenant-b' })
      const seen: (string | null)[] = []
      const spy = api.extend({ hooks: { afterResponse: [({ request }) => void seen.push(request.headers.get('authorization'))] } })
      const skipped = await spy.get('passes', { context: { auth: false }, throwHttpErrors: false })
      expect(skipped.status).toBe(401)
      await spy.get('passes', { context: { authKey: 'tenant-b' } })
      await spy.get('passes')
      expect(seen[0]).toBeNull()
      expect(seen[1]).toBe(`Bearer ${await auth.getAccessToken({ key: 'tenant-b' })}`)
      expect(seen[2]).toBe(`Bearer ${await auth.getAccessToken()}`)
      expect(seen[1]).not.toBe(seen[2])
      expect(server.counts.token).toBe(0)
    })

    it('an explicit Authorization header wins and is never refreshed', async () => {
      const { server, auth, api } = await client('stemp', { mode })
      await auth.setTokens(server.signIn() as any)
      const response = await api.get('passes', { headers: { authorization: 'Bearer caller-chosen' }, throwHttpErrors: false })
      expect(response.status).toBe(401)
      expect(server.counts.token).toBe(0)
    })

    it('retries a 401 once, with no default delay, and a second 401 is ERR_STILL_UNAUTHORIZED (no loop)', async () => {
      const { server, auth, api } = await client('stemp', { mode })
      await auth.setTokens(server.signIn() as any)
      server.expireAccessTokens()
      server.fault('api', { kind: 'status', status: 401, body: '{}' }, 2) // the retry is also refused
      const delay = vi.fn(() => 300)
      const error = await rejection(api.get('passes', { retry: { limit: 2, delay } }))
      expect(error.code).toBe('ERR_STILL_UNAUTHORIZED')
      expect(error.status).toBe(401)
      expect(delay).not.toHaveBeenCalled()
      expect(server.counts).toMatchObject({ token: 1 })
    })

    it('works with retry: 0 (ky would refuse forced retries) and keeps the caller\'s own retry budget', async () => {
      const { server, auth, api } = await client('stemp', { mode })
      await auth.setTokens(server.signIn() as any)
      server.expireAccessTokens()
      expect(await api.get('passes', { retry: 0 }).json()).toMatchObject({ ok: true })
      expect(server.counts).toMatchObject({ token: 1, api: 2 })
      // retry: 0 still means no retry of a 503
      server.fault('api', { kind: 'status', status: 503 })
      expect((await rejection(api.get('passes', { retry: 0 }))).response.status).toBe(503)
      expect(server.counts.api).toBe(2) // faults are not counted as API calls
      // limit 1: a 503 is retried once, then the 401 still gets its own auth retry
      server.expireAccessTokens()
      server.fault('api', { kind: 'status', status: 503 })
      expect(await api.get('passes', { retry: { limit: 1, delay: () => 0 } }).json()).toMatchObject({ ok: true })
      expect(server.counts).toMatchObject({ token: 2, unauthorized: 2 })
    })

    it('replays JSON, FormData, URLSearchParams and binary bodies with identical bytes on PUT/PATCH/POST', async () => {
      const { server, auth, api } = await client('stemp', { mode })
      await auth.setTokens(server.signIn() as any)
      const form = new FormData()
      form.set('name', 'Ünïcode ✓')
      form.set('file', new Blob([new Uint8Array([0, 1, 2, 255])]), 'a.bin')
      const sends = [
        () => api.post('passes', { json: { a: 1, s: 'é' } }),
        () => api.put('passes/1', { body: form }),
        () => api.patch('passes/1', { body: new URLSearchParams({ q: 'a b&c' }) }),
        () => api.post('passes', { body: new Uint8Array([9, 8, 7]) }),
      ]
      for (const send of sends) {
        server.expireAccessTokens()
        await send()
      }
      expect(server.counts).toMatchObject({ token: 4, unauthorized: 4, api: 8 })
      expect(server.bodies.map((body) => body.method)).toEqual(['POST', 'PUT', 'PATCH', 'POST'])
      expect(server.bodies[0]!.text).toBe('{"a":1,"s":"é"}')
      expect(server.bodies[1]!.text).toContain('Ünïcode ✓')
      expect(server.bodies[2]!.text).toBe('q=a+b%26c')
      expect(Buffer.from(server.bodies[3]!.text, 'utf8')).toEqual(Buffer.from([9, 8, 7]))
    })

    it('the 401 attempt and its replay carry byte-identical bodies', async () => {
      const { server, auth, api } = await client('stemp', { mode })
      await auth.setTokens(server.signIn() as any)
      const hashes: string[] = []
      const { createHash } = await import('node:crypto')
      // The spy runs before the auth hook, so it sees both the 401'd attempt and the replay.
      const spy = ky
        .create({ baseUrl: server.url('/api/v1/'), hooks: { afterResponse: [async ({ request }) => void hashes.push(createHash('sha256').update(new Uint8Array(await request.clone().arrayBuffer())).digest('hex'))] } })
        .extend({ hooks: auth.hooks })
      void api
      server.expireAccessTokens()
      await spy.post('passes', { json: { big: 'x'.repeat(10_000) } })
      expect(hashes).toHaveLength(2)
      expect(hashes[0]).toBe(hashes[1])
      expect(hashes[1]).toBe(server.bodies[0]!.sha256)
      // FormData: the multipart boundary and every part are the same bytes on the replay.
      const form = new FormData()
      form.set('file', new Blob([new Uint8Array(4096).fill(7)]), 'f.bin')
      form.set('note', 'ü')
      server.expireAccessTokens()
      await spy.put('passes/1', { body: form })
      expect(hashes).toHaveLength(4)
      expect(hashes[2]).toBe(hashes[3])
      expect(hashes[3]).toBe(server.bodies[1]!.sha256)
    })

    it('a 401 on a streaming body refreshes but does not replay: ERR_BODY_NOT_REPLAYABLE', async () => {
      const { server, auth, api } = await client('stemp', { mode })
      await auth.setTokens(server.signIn() as any)
      server.expireAccessTokens()
      const body = new ReadableStream({ start(controller) { controller.enqueue(new TextEncoder().encode('chunk')); controller.close() } })
      const error = await rejection(api.post('passes', { body, duplex: 'half' } as any))
      expect(error.code).toBe('ERR_BODY_NOT_REPLAYABLE')
      expect(server.counts).toMatchObject({ token: 1, unauthorized: 1 })
      expect(await api.post('passes', { body: 'again' }).json()).toMatchObject({ ok: true })
      expect(server.counts.token).toBe(1)
    })

    it('with throwHttpErrors: false a 403 and a final 401 come back as responses', async () => {
      const { server, auth, api } = await client('stemp', { mode, kyOptions: { throwHttpErrors: false } })
      await auth.setTokens(server.signIn() as any)
      expect((await api.get('organization')).status).toBe(403)
      server.expireAccessTokens()
      server.fault('api', { kind: 'status', status: 401, body: '{}' }, 2)
      expect((await api.get('passes')).status).toBe(401)
      expect(server.counts.token).toBe(1)
    })

    it(`a per-request throwHttpErrors: false ${mode === 'hooks' ? 'still refreshes on a 401' : 'bypasses what auth.extend settled: the 401 comes back unhandled (documented trade-off)'}`, async () => {
      const { server, auth, api } = await client('stemp', { mode })
      await auth.setTokens(server.signIn() as any)
      server.expireAccessTokens()
      const response = await api.get('passes', { throwHttpErrors: false })
      expect(response.status).toBe(mode === 'hooks' ? 200 : 401)
      expect(server.counts.token).toBe(mode === 'hooks' ? 1 : 0)
    })

    it('token-endpoint calls never pass through the hooks (no recursion), even on the same origin', async () => {
      const server = await fixture('stemp')
      const fetchCalls: string[] = []
      const auth = createTokenAuth({
        grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }),
        fetch: (input, init) => {
          fetchCalls.push(new Headers(init?.headers).get('authorization') ?? 'none')
          return fetch(input, init)
        },
      })
      await auth.setTokens(server.signIn() as any)
      server.expireAccessTokens()
      const api = ky.create({ prefix: server.url('/api/v1/'), hooks: auth.hooks })
      await api.get('passes')
      expect(fetchCalls).toEqual(['none'])
    })

    it('validates options at setup with errors that name the option', () => {
      const grant = refreshTokenGrant({ url: 'https://auth.example.com/token' })
      expect(() => createTokenAuth({ grant, origins: [] })).toThrow(/"origins" must be a non-empty array/)
      expect(() => createTokenAuth({ grant, origins: ['not a url'] })).toThrow(/"origins" has an entry/)
      expect(() => createTokenAuth({ grant, refreshBefore: -1 })).toThrow(/"refreshBefore"/)
      expect(() => refreshTokenGrant({ url: '/relative' })).toThrow(/"url" must be an absolute URL/)
      expect(() => createTokenAuth({} as any)).toThrow(/"grant" is required/)
    })
  })
}

for (const mode of MODES) {
  describe(`extension points (auth.${mode})`, () => {
    it('scheme: "Token" sends Authorization: Token …; header: "X-Api-Key" sends the bare token there and no Authorization', async () => {
      const token = await memory(mode, { scheme: 'Token' }, () => json(200))
      await token.api.get('a')
      expect(token.seen[0]!.headers.get('authorization')).toBe('Token tok-0')
      const apiKey = await memory(mode, { header: 'X-Api-Key' }, () => json(200))
      await apiKey.api.get('a')
      expect(apiKey.seen[0]!.headers.get('x-api-key')).toBe('tok-0')
      expect(apiKey.seen[0]!.headers.has('authorization')).toBe(false)
      const both = await memory(mode, { header: 'X-Auth', scheme: 'Key' }, () => json(200))
      await both.api.get('a')
      expect(both.seen[0]!.headers.get('x-auth')).toBe('Key tok-0')
    })

    it('a custom token header: refreshed on 401 like Authorization, a caller-set one wins, and errors redact it', async () => {
      const { api, seen, tokenCalls } = await memory(mode, { header: 'X-Api-Key' }, (request) => (request.headers.get('x-api-key') === 'tok-1' ? json(200) : json(401)))
      await api.get('a')
      expect(seen.map((request) => request.headers.get('x-api-key'))).toEqual(['tok-0', 'tok-1'])
      expect(tokenCalls()).toBe(1)
      const own = await rejection(api.get('b', { headers: { 'x-api-key': 'callers-own' } }))
      expect(own).toBeInstanceOf(HTTPError) // sent as set, not refreshed
      expect(tokenCalls()).toBe(1)
      const { api: failing } = await memory(mode, { header: 'X-Api-Key' }, () => json(500))
      const error = await rejection(failing.get('c'))
      expect(error.request.headers.get('x-api-key')).toBe('[redacted]')
    })

    it('headers as a function of the token-set key: a tenant header per authKey, only to allowed origins', async () => {
      const keys: string[] = []
      const other = { url: (path: string) => `https://other.example${path}` }
      const { auth, api, seen } = await memory(mode, { headers: (key) => (keys.push(key), { 'X-Tenant': `tenant-${key}` }) }, (request) => (request.url.startsWith(API) ? json(200) : json(401)))
      await auth.setTokens({ access_token: 'tok-b', expires_in: 300 }, { key: 'b' })
      await api.get('a')
      await api.get('a', { context: { authKey: 'b' } })
      expect(seen.map((request) => [request.headers.get('x-tenant'), request.headers.get('authorization')])).toEqual([['tenant-default', 'Bearer tok-0'], ['tenant-b', 'Bearer tok-b']])
      expect(keys).toEqual(['default', 'b'])
      // Another origin through the same instance: neither the token nor the tenant header.
      const outside = await api.get(other.url('/v1/companies'), { throwHttpErrors: false })
      expect(outside.status).toBe(401)
      expect(seen[2]!.headers.has('x-tenant')).toBe(false)
      expect(keys).toHaveLength(2)
    })

    it('shouldRefresh: a 419 or a 400 whose body says "token_expired" refreshes once and replays', async () => {
      const shouldRefresh = async (response: Response) => response.status === 419 || (response.status === 400 && (await response.json()).code === 'token_expired')
      for (const reject of [() => json(419), () => json(400, { code: 'token_expired' })]) {
        const { api, seen, tokenCalls } = await memory(mode, { shouldRefresh }, (request) => (request.headers.get('authorization') === 'Bearer tok-1' ? json(200, { ok: true }) : reject()))
        expect(await api.get('a').json()).toEqual({ ok: true })
        expect(seen).toHaveLength(2)
        expect(tokenCalls()).toBe(1)
      }
    })

    it('shouldRefresh: 403 is never refreshed by default (ERR_INSUFFICIENT_SCOPE), but is when the predicate says so', async () => {
      const plain = await memory(mode, {}, () => json(403))
      expect((await rejection(plain.api.get('a'))).code).toBe('ERR_INSUFFICIENT_SCOPE')
      expect(plain.tokenCalls()).toBe(0)
      const opted = await memory(mode, { shouldRefresh: (response) => response.status === 401 || response.status === 403 }, () => json(403))
      const error = await rejection(opted.api.get('a'))
      expect(error.code).toBe('ERR_STILL_UNAUTHORIZED')
      expect(error.message).toMatch(/answered 403 again after one token refresh/)
      expect(opted.tokenCalls()).toBe(1)
      expect(opted.seen).toHaveLength(2)
    })

    it('shouldRefresh: a 401 it declines comes back as a plain HTTPError; a predicate that throws means "no" and is reported', async () => {
      const declined = await memory(mode, { shouldRefresh: () => false }, () => json(401))
      const error = await rejection(declined.api.get('a'))
      expect(error).toBeInstanceOf(HTTPError)
      expect(declined.tokenCalls()).toBe(0)
      const broken = await memory(mode, { shouldRefresh: () => { throw new Error('predicate bug') } }, () => json(401))
      const reported: unknown[] = []
      broken.auth.on('error', ({ error }) => reported.push(error))
      expect(await rejection(broken.api.get('a'))).toBeInstanceOf(HTTPError)
      expect(broken.tokenCalls()).toBe(0)
      expect(reported).toEqual([new Error('predicate bug')])
    })

    it('the silent miss: a 401 from an origin outside the allow-list is a withheld event and a hint in the error; nothing is sent', async () => {
      const { server, auth, api } = await client('stemp', { mode })
      await auth.setTokens(server.signIn() as any)
      const other = await fixture('stenn')
      const events: WithheldEvent[] = []
      auth.on('withheld', (event) => events.push(event))
      const error = await rejection(api.get(other.url('/v1/companies?secret=1')))
      expect(error).toBeInstanceOf(HTTPError)
      expect(error.message).toContain(`no token with this request: ${other.origin} is not an allowed origin`)
      expect(error.message).toContain('"origins" option')
      expect(events).toEqual([{ url: other.url('/v1/companies'), status: 401, reason: 'origin' }])
      expect(server.counts.token).toBe(0)
      // With throwHttpErrors: false the event still fires (no error to annotate).
      const response = await api.get(other.url('/v1/companies'), { throwHttpErrors: false })
      expect(response.status).toBe(401)
      expect(events).toHaveLength(mode === 'hooks' ? 2 : 1) // auth.extend settles throwHttpErrors per instance
      // Opted out, or the caller's own Authorization: not a miss.
      await rejection(api.get(other.url('/v1/companies'), { context: { auth: false } }))
      await rejection(api.get(other.url('/v1/companies'), { headers: { authorization: 'Bearer mine' } }))
      expect(events).toHaveLength(mode === 'hooks' ? 2 : 1)
    })

    it('headers, scheme and header options are validated at setup', () => {
      const grant = refreshTokenGrant({ url: 'https://auth.example.com/token' })
      expect(() => createTokenAuth({ grant, header: 'X Api' })).toThrow(/"header" must be an HTTP header name/)
      expect(() => createTokenAuth({ grant, scheme: 'To ken' })).toThrow(/"scheme" must be/)
      expect(() => createTokenAuth({ grant, headers: { Authorization: 'x' } })).toThrow(/"headers" cannot set "Authorization"/)
      expect(() => createTokenAuth({ grant, headers: { 'X-Tenant': 1 as never } })).toThrow(/"headers" has an invalid entry/)
      expect(() => createTokenAuth({ grant, shouldRefresh: 401 as never })).toThrow(/"shouldRefresh" must be a function/)
    })
  })
}
