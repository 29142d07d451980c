import { describe, expect, it } from 'vitest'
import { client, rejection } from './helpers.ts'

describe('Stenn: form-encoded client credentials, 24 h tokens, re-authenticate on expiry/401', () => {
  it('runs a realistic session with exact counts', async () => {
    const { server, api, storage, clock } = await client('stenn')
    // No stored token: the first call authenticates once.
    await api.get('companies').json()
    expect(server.counts).toMatchObject({ token: 1, api: 1 })
    const request = new URLSearchParams(server.tokenRequests[0]!.body)
    expect(Object.fromEntries(request)).toEqual({ grant_type: 'client_credentials', client_id: 'stenn-client', client_secret: server.credentials.client_secret })
    expect(server.tokenRequests[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded')
    const stored = (await storage.get('default'))!
    expect(stored.expiresAt! - stored.receivedAt).toBe(86_400_000)
    expect(stored.refreshToken).toBeUndefined()

    await api.get('companies')
    expect(server.counts).toMatchObject({ token: 1, api: 2 })
    // 23 h 59 m 30 s later: inside the 60 s window → re-authenticate before the call.
    clock.advance(86_370_000)
    await api.get('companies')
    expect(server.counts).toMatchObject({ token: 2, api: 3, unauthorized: 0 })
    // Expired server-side → 401 → one re-authentication → one retry.
    server.expireAccessTokens()
    await api.get('companies')
    expect(server.counts).toMatchObject({ token: 3, api: 5, unauthorized: 1 })
  })

  it('reports rotated credentials as ERR_INVALID_CLIENT and keeps the stored token', async () => {
    const { server, api, storage } = await client('stenn')
    await api.get('companies')
    const before = await storage.get('default')
    server.rotateCredentials()
    const error = await rejection(api.get('companies'))
    expect(error.code).toBe('ERR_INVALID_CLIENT')
    expect(error.error).toBe('invalid_client')
    expect(error.message).toContain('Client authentication failed')
    expect(error.message).not.toContain(server.credentials.client_secret)
    expect(await storage.get('default')).toEqual(before)
    expect(server.counts).toMatchObject({ token: 2, unauthorized: 1 })
  })
})

describe('DokStamp: client credentials, 12 h tokens, renew 60 s early, X-Tenant on every call', () => {
  it('runs a realistic session and sends the tenant header only with the token', async () => {
    const { server, api, clock, storage } = await client('dokstamp')
    expect(await api.get('documents').json()).toMatchObject({ ok: true })
    expect(server.counts).toMatchObject({ token: 1, api: 1 })
    expect((await storage.get('default'))!.expiresAt! - Date.now()).toBeGreaterThan(43_100_000)
    // 11 h 58 m: still outside the 60 s window.
    clock.advance(43_080_000)
    await api.get('documents')
    expect(server.counts.token).toBe(1)
    // 11 h 59 m 30 s: renew proactively.
    clock.advance(90_000)
    await api.get('documents')
    expect(server.counts).toMatchObject({ token: 2, api: 3, unauthorized: 0 })
  })

  it('after credential rotation revokes every token: 401 → re-auth fails → ERR_INVALID_CLIENT, no loop', async () => {
    const { server, api } = await client('dokstamp')
    await api.get('documents')
    server.rotateCredentials()
    const error = await rejection(api.get('documents'))
    expect(error.code).toBe('ERR_INVALID_CLIENT')
    expect(server.counts).toMatchObject({ token: 2, api: 2, unauthorized: 1 })
  })
})
