import { describe, expect, it } from 'vitest'
import type { Fault } from './fixtures/apis.ts'
import { createTokenAuth, memoryStorage, refreshTokenGrant, toTokenSet } from '../src/index.ts'
import { client, fixture, rejection } from './helpers.ts'

// Each case: the token endpoint misbehaves once; the request fails with a defined code and the
// stored tokens are exactly what they were.
const cases: { name: string; fault: Fault; code: string; times?: number; tokenCalls?: number }[] = [
  { name: 'HTML login page with 200', fault: { kind: 'html' }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: 'non-JSON text', fault: { kind: 'status', status: 200, body: 'OK', contentType: 'text/plain' }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: 'a JSON array', fault: { kind: 'json', body: [1, 2] }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: '200 with an OAuth error body', fault: { kind: 'json', body: { error: 'temporarily_unavailable', error_description: 'try later' } }, code: 'ERR_TOKEN_ENDPOINT' },
  { name: 'missing access_token', fault: { kind: 'json', body: { token_type: 'bearer', expires_in: 1800 } }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: 'empty access_token', fault: { kind: 'json', body: { access_token: '', expires_in: 1800 } }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: 'numeric access_token', fault: { kind: 'json', body: { access_token: 42, expires_in: 1800 } }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: 'unsupported token_type', fault: { kind: 'json', body: { access_token: 'abc', token_type: 'mac', expires_in: 1800 } }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: 'negative expires_in', fault: { kind: 'json', body: { access_token: 'abc', expires_in: -5 } }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: 'zero expires_in', fault: { kind: 'json', body: { access_token: 'abc', expires_in: 0 } }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: 'non-numeric expires_in', fault: { kind: 'json', body: { access_token: 'abc', expires_in: 'soon' } }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: 'boolean expires_in', fault: { kind: 'json', body: { access_token: 'abc', expires_in: true } }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: 'refresh_token of the wrong type', fault: { kind: 'json', body: { access_token: 'abc', expires_in: 60, refresh_token: 7 } }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: 'a body over 64 KiB', fault: { kind: 'status', status: 200, body: JSON.stringify({ access_token: 'x'.repeat(70_000) }) }, code: 'ERR_TOKEN_RESPONSE_INVALID' },
  { name: '400 invalid_request', fault: { kind: 'json', status: 400, body: { error: 'invalid_request' } }, code: 'ERR_TOKEN_ENDPOINT' },
  // A rotating refresh is retried on 429/503 (the server did not process it) and replayed once,
  // at once, after an ambiguous failure (network fault, timeout, 502, 504): see token-endpoint.ts.
  { name: '503 three times (retried, then given up)', fault: { kind: 'status', status: 503, retryAfter: '0' }, times: 3, code: 'ERR_TOKEN_ENDPOINT', tokenCalls: 3 },
  { name: '500 (not retried: it may have rotated)', fault: { kind: 'status', status: 500 }, code: 'ERR_TOKEN_ENDPOINT' },
  { name: '503 with Retry-After: 3600 (too long to wait)', fault: { kind: 'status', status: 503, retryAfter: '3600' }, code: 'ERR_TOKEN_ENDPOINT' },
  { name: 'connection reset twice (replayed once)', fault: { kind: 'reset' }, times: 2, code: 'ERR_TOKEN_ENDPOINT_UNREACHABLE', tokenCalls: 2 },
  { name: '502 twice (replayed once)', fault: { kind: 'status', status: 502 }, times: 2, code: 'ERR_TOKEN_ENDPOINT', tokenCalls: 2 },
]

describe('token responses are validated; every failure keeps the stored tokens', () => {
  for (const { name, fault, code, times = 1, tokenCalls = 1 } of cases) {
    it(`${name} → ${code}`, async () => {
      const { server, auth, api, storage, events } = await client('stemp')
      await auth.setTokens(server.signIn() as any)
      const before = await storage.get('default')
      server.expireAccessTokens()
      server.fault('token', fault, times)
      const error = await rejection(api.get('passes'))
      expect(error.code).toBe(code)
      expect(error.name).toBe('TokenError')
      expect(await storage.get('default')).toEqual(before)
      expect(server.counts.token).toBe(tokenCalls)
      expect(events.sessionEnded).toHaveLength(0)
      expect(String(error.message)).not.toMatch(/NaN|Infinity|undefined/)
      // once the endpoint behaves, the same stored refresh token still works (forceRefresh: past
      // the engine's backoff after a failed refresh)
      await auth.getAccessToken({ forceRefresh: true })
      await api.get('passes')
      expect(server.counts).toMatchObject({ token: tokenCalls + 1, reuse: 0 })
    })
  }

  it('a 503 with a short Retry-After is waited out and succeeds within one call from the caller', async () => {
    const { server, auth, api } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    server.fault('token', { kind: 'status', status: 503, retryAfter: '1' })
    const started = Date.now()
    await api.get('passes')
    expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    expect(server.counts).toMatchObject({ token: 2, reuse: 0 })
  })

  it('a lost response after rotation is replayed once; strict reuse detection then ends the session', async () => {
    const { server, auth, api, storage } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    server.fault('token', { kind: 'lost-response' })
    const error = await rejection(api.get('passes'))
    expect(error.code).toBe('ERR_SESSION_ENDED')
    expect(error.message).toContain('earlier response was lost')
    // The replay is what any later refresh would have sent; test/grants/lost-rotation.test.ts has the grace-window cases.
    expect(server.counts).toMatchObject({ token: 2, reuse: 1 })
    expect(await storage.get('default')).toBeUndefined()
  })

  it('a rotated refresh token inside an otherwise unusable response is saved, not lost', async () => {
    const { server, auth, api, storage } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    const before = (await storage.get('default'))!
    server.expireAccessTokens()
    server.fault('token', { kind: 'json', body: { access_token: '', refresh_token: 'srt_rotated_but_broken' } })
    expect((await rejection(api.get('passes'))).code).toBe('ERR_TOKEN_RESPONSE_INVALID')
    const after = (await storage.get('default'))!
    expect(after.refreshToken).toBe('srt_rotated_but_broken')
    expect(after.accessToken).toBe(before.accessToken)
  })

  it('numeric-string and huge expires_in are accepted and capped; no expiry means 401-driven', async () => {
    const { auth, storage } = await client('stemp')
    await auth.setTokens({ access_token: 'a', expires_in: '3600' })
    let stored = (await storage.get('default'))!
    expect(stored.expiresAt! - stored.receivedAt).toBe(3_600_000)
    await auth.setTokens({ access_token: 'a', expires_in: 1e300 })
    stored = (await storage.get('default'))!
    expect(stored.expiresAt! - stored.receivedAt).toBe(31_536_000_000)
    await auth.setTokens({ access_token: 'opaque-no-expiry' })
    expect((await storage.get('default'))!.expiresAt).toBeUndefined()
    await expect(auth.setTokens({ access_token: "a", expires_in: Number.NaN })).rejects.toThrow(/expires_in/)
  })

  it('a token endpoint slower than the timeout fails as unreachable, keeping the tokens', async () => {
    const server = await fixture('stemp')
    const storage = memoryStorage()
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json', timeout: 200 }), storage })
    await auth.setTokens(server.signIn() as any)
    const before = await storage.get('default')
    server.fault('token', { kind: 'slow', ms: 1000 }, 2) // the one immediate replay times out too
    const error = await rejection(auth.getAccessToken({ forceRefresh: true }))
    expect(error.code).toBe('ERR_TOKEN_ENDPOINT_UNREACHABLE')
    expect(error.message).toContain('no answer within 200 ms')
    expect(server.counts.token).toBe(2)
    expect(await storage.get('default')).toEqual(before)
  })
})

describe('a JWT access token without expires_in: its own exp decides', () => {
  const b64url = (value: unknown) => btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(value)))).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
  const jwt = (claims: unknown) => `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url(claims)}.c2lnbmF0dXJl`
  const at = 1_700_000_000_000

  it('exp − iat is the lifetime (the server clock cancels out)', () => {
    // iat far in the past by the local clock: a skewed server; the lifetime still counts from receipt.
    expect(toTokenSet({ access_token: jwt({ iat: 100, exp: 700, name: 'Zoë ✓ ~~~ ???' }) }, at).expiresAt).toBe(at + 600_000)
  })
  it('exp alone is absolute', () => {
    expect(toTokenSet({ access_token: jwt({ exp: at / 1000 + 90 }) }, at).expiresAt).toBe(at + 90_000)
  })
  for (const [name, token] of [
    ['an opaque token', 'srt_0123456789abcdef'],
    ['a payload that is not JSON', `${b64url({})}.bm90IGpzb24.sig`],
    ['a payload that is an array', jwt([1, 2])],
    ['an exp that is a string', jwt({ exp: '9999999999' })],
    ['two parts only', `${b64url({})}.${b64url({ exp: 1 })}`],
  ] as const) {
    it(`${name}: no known expiry (401-driven)`, () => {
      expect(toTokenSet({ access_token: token }, at).expiresAt).toBeUndefined()
    })
  }
})
