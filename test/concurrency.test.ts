import ky from 'ky'
import { describe, expect, it } from 'vitest'
import { createTokenAuth, refreshTokenGrant } from '../src/index.ts'
import { MODES, client, rejection } from './helpers.ts'

for (const mode of MODES) {
  describe(`single flight (auth.${mode})`, () => {
    it('1,000 concurrent requests with an expired token make exactly 1 token-endpoint call', async () => {
      const { server, auth, api, clock, events } = await client('stemp', { mode, fixture: { tokenDelay: 50 } })
      await auth.setTokens(server.signIn() as any)
      clock.advance(1_800_000)
      const responses = await Promise.all(Array.from({ length: 1000 }, () => api.get('passes').json<{ ok: boolean }>()))
      expect(responses.every((response) => response.ok)).toBe(true)
      expect(server.counts).toMatchObject({ token: 1, issued: 2, api: 1000, unauthorized: 0, reuse: 0, concurrentRefresh: 0 })
      expect(events.refresh).toHaveLength(1)
    })

    it('requests that start while a 401-driven refresh runs wait for the new token (11 requests → 1 × 401)', async () => {
      const { server, auth, api } = await client('stemp', { mode, fixture: { tokenDelay: 200 } })
      await auth.setTokens(server.signIn() as any)
      server.expireAccessTokens() // the server alone knows: the client still thinks the token is fresh
      const first = api.get('passes').json()
      await new Promise((resolve) => setTimeout(resolve, 80)) // its 401 arrived; the refresh is at the server
      const later = Array.from({ length: 10 }, () => api.get('passes').json())
      await Promise.all([first, ...later])
      expect(server.counts).toMatchObject({ token: 1, unauthorized: 1, api: 12, reuse: 0 })
    })

    it('500 concurrent 401s make 1 refresh and replay each request exactly once', async () => {
      const { server, auth, api } = await client('stemp', { mode, fixture: { tokenDelay: 50 } })
      await auth.setTokens(server.signIn() as any)
      server.expireAccessTokens()
      const bodies = Array.from({ length: 500 }, (_, i) => ({ pass: i, note: 'é✓' }))
      const responses = await Promise.all(bodies.map((json) => api.post('passes', { json }).json<{ ok: boolean }>()))
      expect(responses.every((response) => response.ok)).toBe(true)
      expect(server.counts).toMatchObject({ token: 1, api: 1000, unauthorized: 500, reuse: 0 })
      // Each request body arrived once, and identical to what was sent (the 401'd attempt is not recorded).
      expect(server.bodies).toHaveLength(500)
      const received = server.bodies.map((body) => JSON.parse(body.text).pass).sort((a, b) => a - b)
      expect(received).toEqual(bodies.map((body) => body.pass))
    })

    it('a dead session: every concurrent waiter gets the same error, sessionEnded fires once, storage is cleared', async () => {
      const { server, auth, api, storage, events } = await client('stemp', { mode, fixture: { tokenDelay: 30 } })
      await auth.setTokens(server.signIn() as any)
      server.revokeAll()
      const errors = await Promise.all(Array.from({ length: 50 }, () => rejection(api.get('passes'))))
      expect(new Set(errors).size).toBe(1) // one error object, shared by all 50 waiters
      expect(errors[0].code).toBe('ERR_SESSION_ENDED')
      expect(events.sessionEnded).toHaveLength(1)
      expect(await storage.get('default')).toBeUndefined()
      expect(server.counts).toMatchObject({ token: 1, unauthorized: 50, reuse: 0 })
    })

    it('a caller that aborts stops waiting but does not cancel the shared refresh', async () => {
      const { server, auth, api, clock, storage } = await client('stemp', { mode, fixture: { tokenDelay: 200 } })
      await auth.setTokens(server.signIn() as any)
      clock.advance(1_800_000)
      const controller = new AbortController()
      const aborted = rejection(api.get('passes', { signal: controller.signal }))
      const others = Promise.all(Array.from({ length: 5 }, () => api.get('passes').json()))
      setTimeout(() => controller.abort(new Error('user navigated away')), 50)
      expect((await aborted).message).toBe('user navigated away')
      await others
      expect(server.counts).toMatchObject({ token: 1, api: 5, reuse: 0 })
      expect((await storage.get('default'))!.expiresAt).toBeGreaterThan(clock.now())
    })

    it('an already-aborted caller rejects at once, and a failing shared refresh raises no unhandled rejection', async () => {
      const { server, auth } = await client('stemp', { mode, fixture: { tokenDelay: 50 } })
      await auth.setTokens(server.signIn() as any)
      server.fault('token', { kind: 'status', status: 400, body: '{"error":"invalid_request"}' })
      // The aborted caller starts the refresh alone and leaves; the refresh fails with nobody waiting.
      const aborted = auth.getAccessToken({ forceRefresh: true, signal: AbortSignal.abort(new Error('gone')) })
      expect((await rejection(aborted)).message).toBe('gone')
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(server.counts.token).toBe(1)
      // A later caller starts a fresh refresh (the failed one is not cached).
      expect(await auth.getAccessToken({ forceRefresh: true })).toBeTypeOf('string')
      expect(server.counts).toMatchObject({ token: 2, reuse: 0 })
    })

    it('proactive and reactive callers share one refresh; a 401 for an already-replaced token does not refresh', async () => {
      const { server, auth, api, clock } = await client('stemp', { mode, fixture: { tokenDelay: 100 } })
      await auth.setTokens(server.signIn() as any)
      const stale = await auth.getAccessToken()
      server.expireAccessTokens()
      // one request hits the 401 path; then the clock moves so others take the proactive path
      const reactive = api.get('passes').json()
      await new Promise((resolve) => setTimeout(resolve, 30))
      clock.advance(1_800_000)
      const proactive = Promise.all(Array.from({ length: 20 }, () => api.get('passes').json()))
      await Promise.all([reactive, proactive])
      expect(server.counts).toMatchObject({ token: 1, unauthorized: 1, reuse: 0 })

      expect(await auth.getAccessToken()).not.toBe(stale)
    })

    it('a 401 for a token another caller already replaced retries with the current token, without refreshing', async () => {
      const { server, auth, api } = await client('stemp', { mode })
      await auth.setTokens(server.signIn() as any)
      // A second engine on the same storage, whose cache still holds the old token.
      const other = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage: auth.storage })
      const otherApi = ky.create({ prefix: server.url('/api/v1/'), hooks: other.hooks })
      await otherApi.get('passes')
      server.expireAccessTokens()
      await api.get('passes') // 401 → refresh → new token in storage
      expect(server.counts).toMatchObject({ token: 1, unauthorized: 1 })
      await otherApi.get('passes') // sends the old token → 401 → adopts the stored one → retry
      expect(server.counts).toMatchObject({ token: 1, unauthorized: 2, api: 5, reuse: 0 })
      expect(await other.getAccessToken()).toBe(await auth.getAccessToken())
    })

    it('two engines sharing one storage (two "processes" in a realm) refresh once between them', async () => {
      const { server, auth } = await client('stemp', { mode, fixture: { tokenDelay: 50 } })
      await auth.setTokens(server.signIn() as any)
      server.expireAccessTokens()
      const storage = auth.storage
      const engines = Array.from({ length: 4 }, () =>
        createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage }),
      )
      const apis = engines.map((engine) => ky.create({ prefix: server.url('/api/v1/'), hooks: engine.hooks }))
      await Promise.all(apis.flatMap((api) => Array.from({ length: 25 }, () => api.get('passes').json())))
      expect(server.counts).toMatchObject({ token: 1, unauthorized: 100, reuse: 0 })
    })
  })
}
