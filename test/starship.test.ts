import { describe, expect, it } from 'vitest'
import ky from 'ky'
import { createTokenAuth, jsonLoginGrant, memoryStorage } from '../src/index.ts'
import { client, fixture, rejection } from './helpers.ts'

describe('Starship Rewards: JSON login, JSON refresh with rotation, 5 min early refresh', () => {
  it('runs a realistic session with exact counts', async () => {
    const { server, api, storage, clock, events } = await client('starship')
    await api.get('products').json()
    expect(server.counts).toMatchObject({ token: 1, api: 1 })
    expect(JSON.parse(server.tokenRequests[0]!.body)).toEqual(server.credentials)
    const first = (await storage.get('default'))!
    expect(first.refreshToken).toBeTruthy()
    // The password is never stored.
    expect(JSON.stringify(first)).not.toContain(server.credentials.password)

    // 24 min: outside the 5 min window. 25.5 min: inside → JSON refresh, rotated.
    clock.advance(1_440_000)
    await api.get('products')
    expect(server.counts.token).toBe(1)
    clock.advance(90_000)
    await api.get('products')
    expect(server.counts).toMatchObject({ token: 2, api: 3, reuse: 0 })
    expect(JSON.parse(server.tokenRequests[1]!.body)).toEqual({ refresh_token: first.refreshToken })
    const second = (await storage.get('default'))!
    expect(second.refreshToken).not.toBe(first.refreshToken)
    expect(events.refresh.at(-1)).toMatchObject({ rotated: true })

    // 401 recovery.
    server.expireAccessTokens()
    await api.get('products')
    expect(server.counts).toMatchObject({ token: 3, api: 5, unauthorized: 1, reuse: 0 })

    // 403: permissions, not a refresh.
    const forbidden = await rejection(api.get('admin'))
    expect(forbidden.code).toBe('ERR_INSUFFICIENT_SCOPE')
    expect(forbidden.message).toContain('403')
    expect(server.counts.token).toBe(3)
  })

  it('logs in again when the refresh token is revoked, and ends the session (cause ERR_INVALID_CLIENT) once the password rotates', async () => {
    const server = await fixture('starship')
    const credentials = { ...server.credentials } // what the app was configured with
    const storage = memoryStorage()
    const auth = createTokenAuth({
      grant: jsonLoginGrant({ loginUrl: server.url('/auth/login'), refreshUrl: server.url('/auth/refresh'), credentials }),
      storage,
      refreshBefore: 300_000,
    })
    const api = ky.create({ prefix: server.url('/api/v1/'), hooks: auth.hooks })
    await api.get('products')
    server.revokeAll()
    // 401 → refresh rejected → one fresh login with the still-valid password → retry succeeds.
    await api.get('products')
    expect(server.counts).toMatchObject({ token: 3, unauthorized: 1, api: 3 })
    const before = await storage.get('default')

    // The provider rotates the password and revokes every token: refresh rejected, login
    // rejected → a typed error that names the cause; no loop, no third attempt.
    server.rotateCredentials()
    const error = await rejection(api.get('products'))
    expect(error.code).toBe('ERR_SESSION_ENDED')
    expect(error.cause.code).toBe('ERR_INVALID_CLIENT')
    expect(error.message).toContain('Invalid credentials')
    expect(JSON.stringify(error) + error.message + String(error.stack)).not.toContain(credentials.password)
    expect(server.counts).toMatchObject({ token: 5, unauthorized: 2, api: 4 })
    // The refresh token was rejected (dead session), so it is gone; the failed login stored nothing.
    expect(await storage.get('default')).toBeUndefined()
    // The next call does not retry a dead refresh token: it goes straight to login.
    expect((await rejection(api.get('products'))).code).toBe('ERR_INVALID_CLIENT')
    expect(server.counts.token).toBe(6)
    expect(before).toBeDefined()
  })
})
