// Everything a token endpoint says ends up in an error that apps log. A server that echoes what it
// received (the refresh token, the client secret, the Basic header) in any encoding must not get
// it into `.message`, `.error` or `toJSON()`: scrub every form of every value we sent, then cap.
import { describe, expect, it } from 'vitest'
import { createTokenAuth, jsonLoginGrant, memoryStorage, refreshTokenGrant, type TokenError } from '../../src/index.ts'
import { fixture, rejection } from '../helpers.ts'

// Values with characters that every encoding treats differently (space, / + : " \ & = % ~, non-ASCII).
const REFRESH = 'srt_a/b+c:d"e\\f g&h=i?j%k~l'
const CLIENT_ID = 'app id/1'
const SECRET = 'sëcret/+: "x\\y&z=%~9'
const form = (value: string) => new URLSearchParams({ v: value }).toString().slice(2)
const BASIC = `${form(CLIENT_ID)}:${form(SECRET)}` // what `Authorization: Basic base64(…)` carries

const encodings: Record<string, (value: string) => string> = {
  raw: (value) => value,
  encodeURIComponent: (value) => encodeURIComponent(value),
  'form-urlencoded': form,
  'percent-encoded, lowercase hex': (value) => encodeURIComponent(value).replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()),
  'JSON-escaped': (value) => JSON.stringify(value).slice(1, -1),
  base64: (value) => Buffer.from(value).toString('base64'),
  'base64 unpadded': (value) => Buffer.from(value).toString('base64').replace(/=+$/, ''),
  base64url: (value) => Buffer.from(value).toString('base64url'),
}

// Where in the error body the echo appears (RFC 6749 §5.2 fields and stemp's nested shape).
const places: Record<string, (echo: string) => unknown> = {
  error: (echo) => ({ error: echo }),
  'error.code': (echo) => ({ error: { code: echo, message: 'Refresh failed' } }),
  error_description: (echo) => ({ error: 'invalid_request', error_description: `The value ${echo} is not accepted` }),
  message: (echo) => ({ error: 'invalid_request', message: `The value ${echo} is not accepted` }),
  'error.message': (echo) => ({ error: { code: 'invalid_request', message: `The value ${echo} is not accepted` } }),
}

const surfaces = (error: TokenError) => [error.message, String(error.error ?? ''), JSON.stringify(error), String(error.stack), JSON.stringify(error.toJSON())]

async function setup(clientAuth: 'client_secret_basic' | 'client_secret_post') {
  const server = await fixture('stemp')
  const storage = memoryStorage()
  const auth = createTokenAuth({
    grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), clientId: CLIENT_ID, clientSecret: SECRET, clientAuth }),
    storage,
  })
  await auth.setTokens({ access_token: 'old-access', expires_in: 3600, refresh_token: REFRESH })
  return { server, auth, storage }
}

describe('quoted server text is scrubbed in every encoding, then capped', () => {
  const secrets = { 'the refresh token': [REFRESH, 'client_secret_post'], 'the client secret': [SECRET, 'client_secret_post'], 'the Basic credential': [BASIC, 'client_secret_basic'] } as const
  for (const [what, [value, clientAuth]] of Object.entries(secrets)) {
    for (const [encoding, encode] of Object.entries(encodings)) {
      it(`${what}, ${encoding}, in error / error.code / error_description / message / error.message`, async () => {
        const { server, auth, storage } = await setup(clientAuth)
        const before = JSON.stringify(await storage.get('default'))
        const echo = encode(value)
        for (const [place, body] of Object.entries(places)) {
          server.fault('token', { kind: 'json', status: 400, body: body(echo) })
          const error: TokenError = await rejection(auth.getAccessToken({ forceRefresh: true }))
          expect(error.code, place).toBe('ERR_TOKEN_ENDPOINT')
          for (const surface of surfaces(error)) {
            expect(surface, place).not.toContain(echo)
            expect(surface, place).not.toContain(value)
          }
          expect(error.message, place).toContain('[redacted]')
        }
        expect(JSON.stringify(await storage.get('default'))).toBe(before)
      })
    }
  }

  it('the JSON login password, echoed base64-encoded, is scrubbed too', async () => {
    const server = await fixture('starship')
    const password = server.credentials.password!
    server.fault('token', { kind: 'json', status: 401, body: { error: Buffer.from(password).toString('base64'), message: `bad ${encodeURIComponent(password)}` } })
    const auth = createTokenAuth({ grant: jsonLoginGrant({ loginUrl: server.url('/auth/login'), credentials: { ...server.credentials } }) })
    const error: TokenError = await rejection(auth.getAccessToken())
    expect(error.code).toBe('ERR_INVALID_CLIENT')
    for (const surface of surfaces(error)) {
      expect(surface).not.toContain(password)
      expect(surface).not.toContain(Buffer.from(password).toString('base64').slice(0, 12))
    }
  })

  it('a secret straddling the 200-character cut leaks no prefix', async () => {
    const { server, auth } = await setup('client_secret_post')
    for (const offset of [190, 195, 199, 200]) {
      server.fault('token', { kind: 'json', status: 400, body: { error: 'invalid_request', error_description: `${'x'.repeat(offset)}${REFRESH} and more` } })
      const error: TokenError = await rejection(auth.getAccessToken({ forceRefresh: true }))
      for (const surface of surfaces(error)) expect(surface, String(offset)).not.toContain(REFRESH.slice(0, 4))
      const quoted = /: "(.*)"\. /s.exec(error.message)![1]!
      expect(quoted.length, String(offset)).toBeLessThanOrEqual(200)
    }
  })

  it('the error code is capped at 64 printable ASCII characters; quoted text has no control characters', async () => {
    const { server, auth } = await setup('client_secret_post')
    server.fault('token', { kind: 'json', status: 400, body: { error: `bad\r\nX-Injected: 1\u0000é${'e'.repeat(300)}`, error_description: 'line one\r\nline two\u0000\u001b[31m' } })
    const error: TokenError = await rejection(auth.getAccessToken({ forceRefresh: true }))
    expect(error.code).toBe('ERR_TOKEN_ENDPOINT')
    expect(error.error!.length).toBeLessThanOrEqual(64)
    expect(error.error).toMatch(/^[\x20-\x7e]+$/)
    expect(error.error).toMatch(/^bad/)
    expect(error.message).toMatch(/^[\x20-\x7e]+$/)
  })

  it('a stemp error code that names a known OAuth error still classifies it after sanitising', async () => {
    const { server, auth, storage } = await setup('client_secret_post')
    server.fault('token', { kind: 'json', status: 400, body: { error: { code: 'invalid_grant', message: `token ${REFRESH} was revoked` } } })
    const error: TokenError = await rejection(auth.getAccessToken({ forceRefresh: true }))
    expect(error.code).toBe('ERR_SESSION_ENDED')
    expect(error.error).toBe('invalid_grant')
    expect(error.message).not.toContain(REFRESH)
    expect(await storage.get('default')).toBeUndefined()
  })
})
