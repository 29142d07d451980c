import ky from 'ky'
import { describe, expect, it, vi } from 'vitest'
import { createTokenAuth, refreshTokenGrant } from '../src/index.ts'
import { MODES, client, fixture, rejection } from './helpers.ts'

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
