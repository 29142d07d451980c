// An access token goes into `Authorization: Bearer …` on every request, so only RFC 6750 b64token
// syntax is accepted: a CR/LF would inject headers, a space or comma splits the credential, NUL and
// non-ASCII make fetch throw later in a place that is hard to explain. Refresh tokens are sent in a
// body and must be RFC 6749 VSCHAR. A bad value is refused on arrival, storage untouched, and the
// message never repeats it.
import { describe, expect, it } from 'vitest'
import { createTokenAuth, memoryStorage, refreshTokenGrant, toTokenSet, type TokenError } from '../../src/index.ts'
import { client, rejection } from '../helpers.ts'

const badAccess: Record<string, string> = {
  CR: 'abc\rdef',
  LF: 'abc\ndef',
  CRLF: 'abc\r\nX-Injected: yes',
  NUL: 'abc\u0000def',
  tab: 'abc\tdef',
  space: 'abc def',
  'non-ASCII': 'abcédef',
  'double quote': 'abc"def',
  comma: 'abc,def',
  semicolon: 'abc;def',
  '"=" inside': 'abc=def',
  'leading "="': '=abcdef',
  'Sanctum-style "|"': '12|abcdef',
  DEL: 'abc\u007fdef',
}
const goodAccess = ['abc', 'a-b.c_d~e+f/g', 'abc=', 'abc==', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', 'sk_live_0123456789abcdef', 'A'.repeat(4096)]

const badRefresh: Record<string, string> = {
  empty: '',
  CR: 'rt\rx',
  LF: 'rt\nx',
  NUL: 'rt\u0000x',
  tab: 'rt\tx',
  'non-ASCII': 'rtéx',
  DEL: 'rt\u007fx',
}
const goodRefresh = ['srt_abc', 'a b', 'a"b,c;d|e=f', '~!@#$%^&*()']

describe('toTokenSet accepts only header-safe tokens', () => {
  for (const [name, token] of Object.entries(badAccess)) {
    it(`access_token with ${name} → ERR_TOKEN_RESPONSE_INVALID, the token not in the message`, () => {
      let error: TokenError | undefined
      try {
        toTokenSet({ access_token: token, expires_in: 60 }, Date.now())
      } catch (caught) {
        error = caught as TokenError
      }
      expect(error?.code).toBe('ERR_TOKEN_RESPONSE_INVALID')
      expect(error!.message).toContain('access_token')
      expect(error!.message).not.toContain(token)
      expect(JSON.stringify(error)).not.toContain(JSON.stringify(token).slice(1, -1))
    })
  }

  for (const [name, token] of Object.entries(badRefresh)) {
    it(`refresh_token with ${name} → ERR_TOKEN_RESPONSE_INVALID, the token not in the message`, () => {
      let error: TokenError | undefined
      try {
        toTokenSet({ access_token: 'abc', refresh_token: token, expires_in: 60 }, Date.now())
      } catch (caught) {
        error = caught as TokenError
      }
      expect(error?.code).toBe('ERR_TOKEN_RESPONSE_INVALID')
      expect(error!.message).toContain('refresh_token')
      if (token) expect(error!.message).not.toContain(token)
    })
  }

  it('valid b64token access tokens and VSCHAR refresh tokens are accepted', () => {
    for (const token of goodAccess) expect(toTokenSet({ access_token: token }, 1).accessToken).toBe(token)
    for (const token of goodRefresh) expect(toTokenSet({ access_token: 'abc', refresh_token: token }, 1).refreshToken).toBe(token)
  })
})

describe('bad token values never reach storage', () => {
  it('auth.setTokens() with a bad access or refresh token throws and stores nothing', async () => {
    const storage = memoryStorage()
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: 'https://auth.example.test/token', body: 'json' }), storage })
    await auth.setTokens({ access_token: 'good', refresh_token: 'srt_good' })
    const before = JSON.stringify(await storage.get('default'))
    for (const body of [{ access_token: 'bad\r\nX: 1' }, { access_token: 'bad token' }, { access_token: 'good', refresh_token: 'bad\nrt' }]) {
      const error = await rejection(auth.setTokens(body))
      expect(error.code).toBe('ERR_TOKEN_RESPONSE_INVALID')
      expect(JSON.stringify(await storage.get('default'))).toBe(before)
    }
  })

  it('a refresh answering a bad access_token keeps the stored tokens, and the old refresh token still works', async () => {
    const { server, auth, api, storage } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    const before = JSON.stringify(await storage.get('default'))
    server.expireAccessTokens()
    server.fault('token', { kind: 'json', body: { access_token: 'abc\r\nX-Injected: yes', token_type: 'bearer', expires_in: 1800 } })
    const error = await rejection(api.get('passes'))
    expect(error.code).toBe('ERR_TOKEN_RESPONSE_INVALID')
    expect(error.message).not.toContain('X-Injected')
    expect(JSON.stringify(await storage.get('default'))).toBe(before)
    await auth.getAccessToken({ forceRefresh: true }) // (past the engine's backoff after a failed refresh)
    await api.get('passes')
    expect(server.counts).toMatchObject({ token: 2, reuse: 0 })
  })

  it('a bad rotated refresh_token is not rescued into storage', async () => {
    const { server, auth, api, storage } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    const before = JSON.stringify(await storage.get('default'))
    server.expireAccessTokens()
    server.fault('token', { kind: 'json', body: { access_token: '', refresh_token: 'srt_new\r\nX: 1' } })
    expect((await rejection(api.get('passes'))).code).toBe('ERR_TOKEN_RESPONSE_INVALID')
    expect(JSON.stringify(await storage.get('default'))).toBe(before)
  })
})
