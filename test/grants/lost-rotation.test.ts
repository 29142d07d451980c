// A rotating refresh whose answer never arrived (connection dropped after sending, timeout, a
// gateway 502/504) may already have spent the stored refresh token. Policy: replay it once, at
// once. A grace-window server (Okta, Auth0) answers the replay with the tokens it already issued;
// a strict reuse-detection server ends the session, which any later refresh would have done too.
// Unambiguous "not processed" answers (429, 503) keep the bounded, Retry-After-honouring retries.
import { describe, expect, it, vi } from 'vitest'
import { createTokenAuth, memoryStorage, refreshTokenGrant, type TokenError } from '../../src/index.ts'
import type { Fault } from '../fixtures/apis.ts'
import { client, fixture, rejection } from '../helpers.ts'

const lost: Record<string, Fault> = {
  'the connection drops after the server rotated': { kind: 'lost-response' },
  'a gateway answers 504 after the server rotated': { kind: 'lost-response', status: 504 },
  'a gateway answers 502 after the server rotated': { kind: 'lost-response', status: 502 },
}

describe('lost rotation responses: one immediate replay', () => {
  for (const [name, fault] of Object.entries(lost)) {
    it(`strict reuse detection: ${name} → 2 token calls, reuse detected, ERR_SESSION_ENDED, storage cleared`, async () => {
      const { server, auth, api, storage, events } = await client('stemp')
      await auth.setTokens(server.signIn() as any)
      server.expireAccessTokens()
      server.fault('token', fault)
      const error: TokenError = await rejection(api.get('passes'))
      expect(error.code).toBe('ERR_SESSION_ENDED')
      expect(error.message).toMatch(/earlier response was lost/)
      expect(error.error).toBe('invalid_grant')
      expect(server.counts).toMatchObject({ token: 2, reuse: 1 })
      expect(await storage.get('default')).toBeUndefined()
      expect(events.sessionEnded).toHaveLength(1)
      expect(events.sessionEnded[0]!.error.code).toBe('ERR_SESSION_ENDED')
    })

    it(`reuse grace window: ${name} → 2 token calls, success with the tokens the server issued, later refreshes work`, async () => {
      const { server, auth, api, storage, events } = await client('stemp', { fixture: { reuse: { graceMs: 30_000 } } })
      await auth.setTokens(server.signIn() as any)
      server.expireAccessTokens()
      server.fault('token', fault)
      await api.get('passes')
      expect(server.counts).toMatchObject({ token: 2, reuse: 0, graceReplays: 1 })
      const stored = (await storage.get('default'))!
      expect(server.issuedRefreshTokens).toHaveLength(2) // sign-in + the one rotation the lost call did
      expect(stored.refreshToken).toBe(server.issuedRefreshTokens[1])
      expect(events.sessionEnded).toHaveLength(0)
      // a later refresh presents the issued token: no reuse, the session lives on
      server.expireAccessTokens()
      await api.get('passes')
      expect(server.counts).toMatchObject({ token: 3, reuse: 0, graceReplays: 1 })
      expect((await storage.get('default'))!.refreshToken).toBe(server.issuedRefreshTokens[2])
    })
  }

  it('grace window already over: the replay is reuse and ends the session', async () => {
    const { server, auth, api, storage } = await client('stemp', { fixture: { reuse: { graceMs: 0 } } })
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    server.fault('token', { kind: 'lost-response' })
    server.fault('token', { kind: 'slow', ms: 20 }) // the replay arrives after the window
    expect((await rejection(api.get('passes'))).code).toBe('ERR_SESSION_ENDED')
    expect(server.counts).toMatchObject({ token: 2, reuse: 1 })
    expect(await storage.get('default')).toBeUndefined()
  })

  it('the server never processed the first request (reset before it read it): the replay simply succeeds', async () => {
    const { server, auth, api } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    server.fault('token', { kind: 'reset' })
    await api.get('passes')
    expect(server.counts).toMatchObject({ token: 2, reuse: 0 })
  })

  it('the replay happens once: lost twice → ERR_TOKEN_ENDPOINT_UNREACHABLE after exactly 2 calls, tokens kept', async () => {
    const { server, auth, api, storage } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    const before = JSON.stringify(await storage.get('default'))
    server.expireAccessTokens()
    server.fault('token', { kind: 'reset' }, 5)
    expect((await rejection(api.get('passes'))).code).toBe('ERR_TOKEN_ENDPOINT_UNREACHABLE')
    expect(server.counts.token).toBe(2)
    expect(JSON.stringify(await storage.get('default'))).toBe(before)
  })

  it('a per-attempt timeout is ambiguous too: replayed once', async () => {
    const server = await fixture('stemp', { reuse: { graceMs: 30_000 } })
    const storage = memoryStorage()
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json', timeout: 300 }), storage })
    await auth.setTokens(server.signIn() as any)
    server.fault('token', { kind: 'slow', ms: 600 }) // processed (rotated) after the client gave up
    await auth.getAccessToken({ forceRefresh: true })
    expect(server.counts.token).toBe(2)
    expect(server.counts.reuse).toBe(0)
  })

  it('the replay is immediate: no backoff timer', async () => {
    const { server, auth } = await client('stemp', { fixture: { reuse: { graceMs: 30_000 } } })
    await auth.setTokens(server.signIn() as any)
    server.fault('token', { kind: 'lost-response', status: 504 })
    const spy = vi.spyOn(globalThis, 'setTimeout')
    try {
      await auth.getAccessToken({ forceRefresh: true })
    } finally {
      spy.mockRestore()
    }
    const delays = spy.mock.calls.map((call) => call[1] ?? 0)
    expect(delays.filter((ms) => ms >= 50 && ms < 10_000)).toEqual([]) // only the per-attempt timeouts (10 s) ran
    expect(server.counts.token).toBe(2)
  })

  it('503 then success: retried after Retry-After, no reuse', async () => {
    const { server, auth, api, storage } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    server.fault('token', { kind: 'status', status: 503, retryAfter: '0' })
    await api.get('passes')
    expect(server.counts).toMatchObject({ token: 2, reuse: 0 })
    expect((await storage.get('default'))!.refreshToken).toBe(server.issuedRefreshTokens[1])
  })

  it('429 and 503 keep their bounded retries (3 attempts), never the immediate replay', async () => {
    const { server, auth, storage } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    const before = JSON.stringify(await storage.get('default'))
    server.fault('token', { kind: 'status', status: 429, retryAfter: '0' }, 2)
    server.fault('token', { kind: 'status', status: 503, retryAfter: '0' })
    expect((await rejection(auth.getAccessToken({ forceRefresh: true }))).code).toBe('ERR_TOKEN_ENDPOINT')
    expect(server.counts.token).toBe(3)
    expect(JSON.stringify(await storage.get('default'))).toBe(before)
  })

  it('a 500 is not replayed (unchanged policy)', async () => {
    const { server, auth } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    server.fault('token', { kind: 'status', status: 500 })
    expect((await rejection(auth.getAccessToken({ forceRefresh: true }))).code).toBe('ERR_TOKEN_ENDPOINT')
    expect(server.counts.token).toBe(1)
  })

  it('attempts: 1 turns the replay off', async () => {
    const server = await fixture('stemp')
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json', attempts: 1 }) })
    await auth.setTokens(server.signIn() as any)
    server.fault('token', { kind: 'lost-response' })
    expect((await rejection(auth.getAccessToken({ forceRefresh: true }))).code).toBe('ERR_TOKEN_ENDPOINT_UNREACHABLE')
    expect(server.counts).toMatchObject({ token: 1, reuse: 0 })
  })

  it('Starship: strict reuse on the replay ends the refresh token, and the grant logs in again', async () => {
    const { server, auth, api, events } = await client('starship')
    await api.get('products')
    server.expireAccessTokens()
    server.fault('token', { kind: 'lost-response' })
    await api.get('products')
    // login, lost refresh, replayed refresh (reuse), fresh login
    expect(server.counts).toMatchObject({ token: 4, reuse: 1 })
    expect(events.sessionEnded).toHaveLength(0)
  })

  it('Starship with a grace window: the replay recovers, no second login', async () => {
    const { server, api } = await client('starship', { fixture: { reuse: { graceMs: 30_000 } } })
    await api.get('products')
    server.expireAccessTokens()
    server.fault('token', { kind: 'lost-response', status: 504 })
    await api.get('products')
    expect(server.counts).toMatchObject({ token: 3, reuse: 0, graceReplays: 1 })
  })
})
