import { describe, expect, it } from 'vitest'
import { createTokenAuth, isTokenError, staticToken } from '../src/index.ts'
import ky from 'ky'
import { client, fixture, rejection } from './helpers.ts'

describe('stemp: JSON refresh with rotation, static API tokens, 401 vs 403', () => {
  it('runs a realistic session: first call, expiry, rotation, 401 recovery, 403, dead session', async () => {
    const { server, auth, api, storage, clock, events } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    const first = (await storage.get('default'))!

    // First call uses the seeded token: no token-endpoint call.
    expect(await api.get('passes').json()).toMatchObject({ ok: true })
    expect(server.counts).toMatchObject({ token: 0, api: 1 })

    // 29.5 minutes later the token is inside the 60 s window: one proactive refresh, rotated.
    clock.advance(1770_000)
    await api.get('passes').json()
    expect(server.counts).toMatchObject({ token: 1, api: 2, unauthorized: 0, reuse: 0 })
    const second = (await storage.get('default'))!
    expect(second.refreshToken).not.toBe(first.refreshToken)
    expect(second.refreshToken).toMatch(/^srt_/)
    expect(second.expiresAt).toBe(second.receivedAt + 1_800_000)
    expect(server.tokenRequests[0]!.body).toBe(JSON.stringify({ refresh_token: first.refreshToken }))
    expect(server.tokenRequests[0]!.headers['content-type']).toBe('application/json')
    expect(events.refresh).toEqual([{ key: 'default', rotated: true, expiresAt: second.expiresAt }])

    // The server expires the token early: 401 → one refresh → one retry.
    server.expireAccessTokens()
    await api.get('passes').json()
    expect(server.counts).toMatchObject({ token: 2, api: 4, unauthorized: 1, reuse: 0 })

    // 403 is a missing scope, never a refresh.
    const forbidden = await rejection(api.get('organization'))
    expect(isTokenError(forbidden, 'ERR_INSUFFICIENT_SCOPE')).toBe(true)
    expect(forbidden.scope).toBe('org:update')
    expect(forbidden.status).toBe(403)
    expect(server.counts).toMatchObject({ token: 2, forbidden: 1 })

    // The session is revoked server-side: the refresh is rejected, tokens deleted, one event.
    server.revokeAll()
    const ended = await rejection(api.get('passes'))
    expect(ended.code).toBe('ERR_SESSION_ENDED')
    expect(ended.error).toBe('invalid_grant')
    expect(await storage.get('default')).toBeUndefined()
    expect(events.sessionEnded).toHaveLength(1)
    expect(server.counts).toMatchObject({ token: 3, reuse: 0 })

    // Later calls fail fast without calling the token endpoint.
    expect((await rejection(api.get('passes'))).code).toBe('ERR_TOKEN_MISSING')
    expect(server.counts.token).toBe(3)
  })

  it('keeps the old refresh token when the server answers refresh_token: null', async () => {
    const { server, auth, api, storage, clock } = await client('stemp', { fixture: { rotate: false } })
    await auth.setTokens(server.signIn() as any)
    const before = (await storage.get('default'))!.refreshToken
    clock.advance(1800_000)
    await api.get('passes')
    clock.advance(1800_000)
    await api.get('passes')
    expect(server.counts).toMatchObject({ token: 2, reuse: 0 })
    expect((await storage.get('default'))!.refreshToken).toBe(before)
  })

  it('computes expiry from the JWT exp/iat when expires_in is missing', async () => {
    const { server, auth, storage } = await client('stemp')
    const body = server.signIn() as Record<string, unknown>
    delete body.expires_in
    await auth.setTokens(body as any)
    const stored = (await storage.get('default'))!
    expect(stored.expiresAt! - stored.receivedAt).toBe(1_800_000)
  })

  it('sends a static sk_live_ token, never refreshes it, and reports a 401 as final', async () => {
    const server = await fixture('stemp')
    const [token] = server.apiTokens
    const auth = createTokenAuth({ grant: staticToken(token!), origins: [server.origin] })
    const api = ky.create({ prefix: server.url('/api/v1/'), hooks: auth.hooks })
    expect(await api.get('passes').json()).toMatchObject({ ok: true })
    const bad = createTokenAuth({ grant: staticToken('sk_live_revoked'), origins: [server.origin] })
    const rejected = await rejection(ky.create({ prefix: server.url('/api/v1/'), hooks: bad.hooks }).get('passes'))
    expect(rejected.code).toBe('ERR_STATIC_TOKEN_REJECTED')
    expect(server.counts.token).toBe(0)
    expect(JSON.stringify(rejected)).not.toContain('sk_live_revoked')
    expect(() => createTokenAuth({ grant: staticToken(token!) })).toThrow(/"origins" is required/)
  })
})
