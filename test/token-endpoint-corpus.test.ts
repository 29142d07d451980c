// A corpus of malformed, hostile and odd token-endpoint answers, each served by a real 127.0.0.1
// server to a real refreshTokenGrant inside createTokenAuth. For every case: the exact error code,
// stored tokens byte-for-byte unchanged (or deleted, when the server said the session is dead),
// and, unless the session ended, the stored refresh token still works afterwards. A few odd but
// valid answers are accepted; they are listed too, so the line between the two stays deliberate.
// (test/token-response.test.ts covers the same path through ky with the fixture's common faults;
// this file is the exhaustive table.)
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { createTokenAuth, isTokenError, memoryStorage, refreshTokenGrant, type StoredTokens } from '../src/index.ts'
import { testClock, type Fault } from './fixtures/apis.ts'
import { fixture, rejection } from './helpers.ts'

// Where the 3xx cases point: it must never see a connection.
const trap = await (async () => {
  const server: Server = createServer((_req, res) => res.end('{"access_token":"stolen"}'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const state = { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: 0 }
  server.on('connection', () => void state.connections++)
  return state
})()
afterAll(() => new Promise<void>((resolve) => trap.server.close(() => resolve())))

// happy-dom's setup (test/setup/happy-dom.ts) buffers every response body whole before the library
// sees it, so a body that never ends cannot be cut at 64 KiB there: that case runs in Node only.
const bufferedBodies = typeof document !== 'undefined'

const HTML = '<!doctype html><html><head><title>Sign in</title></head><body><form action="/login"><input name="password"></form></body></html>'
const raw = (body: string, status = 200, contentType = 'application/json', headers?: Record<string, string>): Fault => ({ kind: 'status', status, body, contentType, ...(headers && { headers }) })
const json = (body: unknown, status = 200): Fault => ({ kind: 'json', body, status })
const token = (fields: Record<string, unknown>) => json({ access_token: 'abc', token_type: 'bearer', expires_in: 1800, ...fields })

type Code = 'ERR_TOKEN_RESPONSE_INVALID' | 'ERR_TOKEN_ENDPOINT' | 'ERR_TOKEN_ENDPOINT_UNREACHABLE' | 'ERR_SESSION_ENDED' | 'ERR_INVALID_CLIENT'
interface Case {
  name: string
  fault: Fault
  /** The error code, or `null` for an odd answer that is accepted (then `accepted` checks the result). */
  code: Code | null
  /** How many times the fault is queued (retries and the lost-response replay see it again). */
  times?: number
  /** Token-endpoint calls the failing refresh makes. Default 1. */
  calls?: number
  /** The server said the session is dead: storage is deleted instead of kept. */
  ends?: boolean
  accepted?: (stored: StoredTokens) => void
  timeout?: number
  nodeOnly?: string
}

const INVALID = 'ERR_TOKEN_RESPONSE_INVALID'
const ENDPOINT = 'ERR_TOKEN_ENDPOINT'
const redirect = (status: number): Case => ({
  name: `${status} redirect to another server`,
  fault: raw('', status, 'text/html', { location: `${trap.origin}/token?refresh_token=leak` }),
  code: ENDPOINT,
})

const cases: Case[] = [
  // bodies that are not a token response at all
  { name: 'HTML page (text/html)', fault: raw(HTML, 200, 'text/html'), code: INVALID },
  { name: 'HTML labelled application/json', fault: raw(HTML), code: INVALID },
  { name: 'empty body, application/json', fault: raw(''), code: INVALID },
  { name: 'empty body, no content type', fault: raw('', 200, ''), code: INVALID },
  { name: 'null', fault: raw('null'), code: INVALID },
  { name: 'empty array', fault: raw('[]'), code: INVALID },
  { name: 'array holding a token response', fault: json([{ access_token: 'abc', expires_in: 60 }]), code: INVALID },
  { name: 'a number', fault: raw('42'), code: INVALID },
  { name: 'a string', fault: raw('"abc"'), code: INVALID },
  { name: 'a boolean', fault: raw('true'), code: INVALID },
  { name: 'truncated JSON', fault: raw('{"access_token":"abc","expires_in":18'), code: INVALID },
  { name: 'JSON with a trailing comma', fault: raw('{"access_token":"abc",}'), code: INVALID },
  { name: 'a body over 64 KiB', fault: raw(JSON.stringify({ access_token: 'abc', padding: 'x'.repeat(70_000) })), code: INVALID },
  { name: 'an endless body', fault: { kind: 'endless', chunk: `"${'x'.repeat(16_384)}`, everyMs: 5 }, code: INVALID, nodeOnly: 'happy-dom buffers whole bodies (test/setup/happy-dom.ts)' },
  { name: 'an endless trickle (per-attempt timeout, replayed once)', fault: { kind: 'endless', chunk: ' ', everyMs: 50 }, times: 2, calls: 2, timeout: 400, code: 'ERR_TOKEN_ENDPOINT_UNREACHABLE' },
  // access_token of the wrong type
  { name: 'access_token missing', fault: json({ token_type: 'bearer', expires_in: 1800 }), code: INVALID },
  { name: 'access_token null', fault: token({ access_token: null }), code: INVALID },
  { name: 'access_token a number', fault: token({ access_token: 42 }), code: INVALID },
  { name: 'access_token an object', fault: token({ access_token: { value: 'abc' } }), code: INVALID },
  { name: 'access_token an array', fault: token({ access_token: ['abc'] }), code: INVALID },
  { name: 'access_token a boolean', fault: token({ access_token: true }), code: INVALID },
  { name: 'access_token empty', fault: token({ access_token: '' }), code: INVALID },
  // token_type
  { name: 'token_type a number', fault: token({ token_type: 1 }), code: INVALID },
  { name: 'token_type an object', fault: token({ token_type: { type: 'bearer' } }), code: INVALID },
  { name: 'token_type empty', fault: token({ token_type: '' }), code: INVALID },
  { name: 'token_type mac', fault: token({ token_type: 'mac' }), code: INVALID },
  { name: 'token_type DPoP', fault: token({ token_type: 'DPoP' }), code: INVALID },
  { name: 'token_type N_A (RFC 8693)', fault: token({ token_type: 'N_A' }), code: INVALID },
  { name: 'token_type BEARER (case-insensitive: accepted)', fault: token({ token_type: 'BEARER' }), code: null, accepted: (stored) => expect(stored.accessToken).toBe('abc') },
  // expires_in
  { name: 'expires_in negative', fault: token({ expires_in: -5 }), code: INVALID },
  { name: 'expires_in a tiny negative', fault: token({ expires_in: -0.0001 }), code: INVALID },
  { name: 'expires_in 0', fault: token({ expires_in: 0 }), code: INVALID },
  { name: 'expires_in "NaN"', fault: token({ expires_in: 'NaN' }), code: INVALID },
  { name: 'expires_in "1e9"', fault: token({ expires_in: '1e9' }), code: INVALID },
  { name: 'expires_in "Infinity"', fault: token({ expires_in: 'Infinity' }), code: INVALID },
  { name: 'expires_in 1e400 (parses to Infinity)', fault: raw('{"access_token":"abc","expires_in":1e400}'), code: INVALID },
  { name: 'expires_in "-60"', fault: token({ expires_in: '-60' }), code: INVALID },
  { name: 'expires_in "1.5.2"', fault: token({ expires_in: '1.5.2' }), code: INVALID },
  { name: 'expires_in empty string', fault: token({ expires_in: '' }), code: INVALID },
  { name: 'expires_in a boolean', fault: token({ expires_in: true }), code: INVALID },
  { name: 'expires_in an object', fault: token({ expires_in: {} }), code: INVALID },
  { name: 'expires_in an array', fault: token({ expires_in: [60] }), code: INVALID },
  { name: 'expires_in huge (accepted, capped at one year)', fault: token({ expires_in: 1e300 }), code: null, accepted: (stored) => expect(stored.expiresAt! - stored.receivedAt).toBe(31_536_000_000) },
  { name: 'expires_in a float string (accepted)', fault: token({ expires_in: '3600.5' }), code: null, accepted: (stored) => expect(stored.expiresAt! - stored.receivedAt).toBe(3_600_500) },
  { name: 'expires_in a padded numeric string (accepted)', fault: token({ expires_in: ' 60 ' }), code: null, accepted: (stored) => expect(stored.expiresAt! - stored.receivedAt).toBe(60_000) },
  // refresh_token and scope
  { name: 'refresh_token a number', fault: token({ refresh_token: 7 }), code: INVALID },
  { name: 'refresh_token empty', fault: token({ refresh_token: '' }), code: INVALID },
  { name: 'refresh_token an object', fault: token({ refresh_token: { value: 'x' } }), code: INVALID },
  { name: 'refresh_token an array', fault: token({ refresh_token: ['x'] }), code: INVALID },
  { name: 'refresh_token a boolean', fault: token({ refresh_token: true }), code: INVALID },
  { name: 'scope a number (ignored: accepted without scope)', fault: token({ scope: 42 }), code: null, accepted: (stored) => expect(stored.scope).toBeUndefined() },
  { name: 'scope an array (ignored: accepted without scope)', fault: token({ scope: ['pass:read'] }), code: null, accepted: (stored) => expect(stored.scope).toBeUndefined() },
  // 200 with an error
  { name: '200 with an OAuth error', fault: json({ error: 'temporarily_unavailable', error_description: 'try later' }), code: ENDPOINT },
  { name: "200 with stemp's nested error", fault: json({ error: { code: 'server_error', message: 'Something broke' } }), code: ENDPOINT },
  { name: '200 with invalid_grant', fault: json({ error: 'invalid_grant' }), code: 'ERR_SESSION_ENDED', ends: true },
  // every 3xx
  ...[300, 301, 302, 303, 304, 305, 307, 308].map(redirect),
  // characters that do not belong in a header
  ...Object.entries({ CR: 'abc\rdef', LF: 'abc\ndef', NUL: 'abc\u0000def', space: 'abc def', 'non-ASCII': 'abcédef', '"': 'abc"def', ',': 'abc,def', tab: 'abc\tdef' })
    .map(([what, value]): Case => ({ name: `access_token with ${what}`, fault: token({ access_token: value }), code: INVALID })),
  ...Object.entries({ CR: 'rt\rx', LF: 'rt\nx', NUL: 'rt\u0000x', 'non-ASCII': 'rtéx', tab: 'rt\tx', DEL: 'rt\u007fx' })
    .map(([what, value]): Case => ({ name: `refresh_token with ${what}`, fault: token({ refresh_token: value }), code: INVALID })),
  // 4xx and 5xx
  { name: '400 invalid_request', fault: json({ error: 'invalid_request' }, 400), code: ENDPOINT },
  { name: '400 unsupported_grant_type', fault: json({ error: 'unsupported_grant_type' }, 400), code: ENDPOINT },
  { name: '400 with an HTML page', fault: raw(HTML, 400, 'text/html'), code: ENDPOINT },
  { name: '400 invalid_grant', fault: json({ error: 'invalid_grant', error_description: 'Refresh token revoked' }, 400), code: 'ERR_SESSION_ENDED', ends: true },
  { name: "400 stemp's nested invalid_grant", fault: json({ error: { code: 'invalid_grant', message: 'Refresh token is invalid' } }, 400), code: 'ERR_SESSION_ENDED', ends: true },
  { name: '401 with no body', fault: raw('', 401, ''), code: 'ERR_SESSION_ENDED', ends: true },
  { name: '401 invalid_client', fault: json({ error: 'invalid_client' }, 401), code: 'ERR_INVALID_CLIENT' },
  { name: '403', fault: json({ error: 'access_denied' }, 403), code: 'ERR_SESSION_ENDED', ends: true },
  { name: '404 HTML', fault: raw(HTML, 404, 'text/html'), code: ENDPOINT },
  { name: '405', fault: raw('', 405, ''), code: ENDPOINT },
  { name: '418', fault: json({ error: 'teapot' }, 418), code: ENDPOINT },
  { name: '429 with Retry-After: 3600 (too long to wait)', fault: { kind: 'status', status: 429, retryAfter: '3600' }, code: ENDPOINT },
  { name: '429 three times (bounded retries)', fault: { kind: 'status', status: 429, retryAfter: '0' }, times: 3, calls: 3, code: ENDPOINT },
  { name: '500 (not replayed)', fault: { kind: 'status', status: 500 }, code: ENDPOINT },
  { name: '500 HTML', fault: raw(HTML, 500, 'text/html'), code: ENDPOINT },
  { name: '501', fault: { kind: 'status', status: 501 }, code: ENDPOINT },
  { name: '502 twice (replayed once)', fault: { kind: 'status', status: 502 }, times: 2, calls: 2, code: ENDPOINT },
  { name: '503 three times (bounded retries)', fault: { kind: 'status', status: 503, retryAfter: '0' }, times: 3, calls: 3, code: ENDPOINT },
  { name: '503 with Retry-After: 3600', fault: { kind: 'status', status: 503, retryAfter: '3600' }, code: ENDPOINT },
  { name: '504 twice (replayed once)', fault: { kind: 'status', status: 504, body: HTML, contentType: 'text/html' }, times: 2, calls: 2, code: ENDPOINT },
  { name: 'connection reset twice (replayed once)', fault: { kind: 'reset' }, times: 2, calls: 2, code: 'ERR_TOKEN_ENDPOINT_UNREACHABLE' },
]

describe('malformed token-endpoint corpus', () => {
  it('has every case', () => {
    expect(cases.length).toBe(98)
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length)
  })

  for (const c of cases) {
    const skip = c.nodeOnly && bufferedBodies ? c.nodeOnly : undefined
    it.skipIf(skip)(`${c.name} → ${c.code ?? 'accepted'}`, async () => {
      const clock = testClock()
      const server = await fixture('stemp', { clock: clock.now })
      const storage = memoryStorage()
      const auth = createTokenAuth({
        grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json', ...(c.timeout && { timeout: c.timeout }) }),
        storage,
        now: clock.now,
      })
      const ended: unknown[] = []
      auth.on('sessionEnded', (event) => ended.push(event))
      await auth.setTokens(server.signIn() as any)
      const before = JSON.stringify(await storage.get('default'))
      const connections = trap.connections
      server.fault('token', c.fault, c.times ?? 1)

      if (c.code === null) {
        expect(await auth.getAccessToken({ forceRefresh: true })).toBe('abc')
        const stored = (await storage.get('default'))!
        expect(stored.refreshToken).toBe(JSON.parse(before).refreshToken)
        c.accepted!(stored)
      } else {
        const error = await rejection(auth.getAccessToken({ forceRefresh: true }))
        expect(isTokenError(error), String(error)).toBe(true)
        expect(error.code).toBe(c.code)
        expect(error.message).not.toMatch(/NaN|Infinity|undefined|\[object/)
        expect(error.message).not.toContain(JSON.parse(before).refreshToken)
        if (c.ends) {
          expect(await storage.get('default')).toBeUndefined()
          expect(ended).toHaveLength(1)
        } else {
          expect(JSON.stringify(await storage.get('default'))).toBe(before)
          expect(ended).toHaveLength(0)
        }
      }
      expect(server.counts.token).toBe(c.calls ?? 1)
      expect(trap.connections).toBe(connections)
      if (c.ends) return

      // The stored refresh token still works: the server rotates it, sees no reuse, and the new
      // access token opens the API.
      const accessToken = await auth.getAccessToken({ forceRefresh: true })
      expect(server.counts).toMatchObject({ token: (c.calls ?? 1) + 1, reuse: 0 })
      const response = await fetch(server.url('/api/v1/passes'), { headers: { authorization: `Bearer ${accessToken}` } })
      expect(response.status).toBe(200)
    })
  }
})
