import ky from 'ky'
import { describe, expect, it } from 'vitest'
import { clientCredentialsGrant, createTokenAuth, isTokenError, jsonLoginGrant, memoryStorage, refreshTokenGrant, TokenError } from '../src/index.ts'
import { client, fixture, rejection } from './helpers.ts'

describe('logout', () => {
  it('clears storage first, then revokes at the server (RFC 7009), best-effort', async () => {
    const server = await fixture('stemp')
    const storage = memoryStorage()
    const auth = createTokenAuth({
      grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json', revocationUrl: server.url('/oauth2/revoke') }),
      storage,
    })
    const api = ky.create({ baseUrl: server.url('/api/v1/'), hooks: auth.hooks })
    await auth.setTokens(server.signIn() as any)
    const tokens = (await storage.get('default'))!
    await api.get('passes')
    await auth.logout()
    expect(await storage.get('default')).toBeUndefined()
    expect(server.counts.revoked).toBe(1)
    // The revoked refresh token no longer works at the server.
    const direct = await fetch(server.url('/api/v1/apps/oauth2/refresh'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: tokens.refreshToken }) })
    expect(direct.status).toBe(400)
    expect((await rejection(api.get('passes'))).code).toBe('ERR_TOKEN_MISSING')
  })

  it('revocation authenticates the client as the token endpoint does (RFC 7009 §2.1)', async () => {
    const server = await fixture('stemp')
    const sent: { url: string; headers: Headers; body: string }[] = []
    const auth = createTokenAuth({
      grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json', revocationUrl: server.url('/oauth2/revoke'), clientId: 'app', clientSecret: 's3cr:t' }),
      fetch: async (input, init) => {
        sent.push({ url: String(input), headers: new Headers(init?.headers), body: String(init?.body) })
        return fetch(input, init)
      },
    })
    await auth.setTokens(server.signIn() as any)
    const refreshToken = (await auth.storage.get('default'))!.refreshToken
    await auth.logout()
    expect(sent).toHaveLength(1)
    expect(sent[0]!.url).toBe(server.url('/oauth2/revoke'))
    expect(sent[0]!.headers.get('authorization')).toBe(`Basic ${btoa('app:s3cr%3At')}`)
    expect(JSON.parse(sent[0]!.body)).toEqual({ token: refreshToken, token_type_hint: 'refresh_token' })
  })

  it('a failing revocation endpoint does not fail logout; it is reported as an error event', async () => {
    const { server, auth, storage, events } = await client('stemp', {})
    await auth.setTokens(server.signIn() as any)
    const failing = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json', revocationUrl: 'http://127.0.0.1:9/revoke' }), storage })
    const errors: unknown[] = []
    failing.on('error', ({ error }) => errors.push(error))
    await failing.logout()
    expect(await storage.get('default')).toBeUndefined()
    expect(errors).toHaveLength(1)
    expect(events.sessionEnded).toHaveLength(0)
  })

  it('a refresh that completes after logout does not bring tokens back', async () => {
    const { server, auth, api, storage } = await client('stemp', { fixture: { tokenDelay: 300 } })
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    const pending = rejection(api.get('passes'))
    await new Promise((resolve) => setTimeout(resolve, 100)) // the refresh is at the server now
    await auth.logout()
    expect((await pending).code).toBe('ERR_LOGGED_OUT')
    await new Promise((resolve) => setTimeout(resolve, 400)) // the server has answered by now
    expect(await storage.get('default')).toBeUndefined()
    expect(server.counts.token).toBe(1)
  })
})

describe('no leaks', () => {
  it('no token, secret, password or Authorization value appears in any error message, JSON or stack', async () => {
    const errors: unknown[] = []
    const secrets: string[] = []
    const collect = async (promise: Promise<unknown>) => errors.push(await rejection(promise))

    // stemp: dead session, 403, still-unauthorized, invalid responses, 5xx, network
    const stemp = await client('stemp')
    const signIn = stemp.server.signIn() as any
    secrets.push(signIn.access_token, signIn.refresh_token)
    await stemp.auth.setTokens(signIn)
    await collect(stemp.api.get('organization'))
    stemp.server.expireAccessTokens()
    stemp.server.fault('api', { kind: 'status', status: 401, body: JSON.stringify({ echoed: signIn.access_token }) }, 2)
    await collect(stemp.api.get('passes'))
    secrets.push(await stemp.auth.getAccessToken(), (await stemp.storage.get('default'))!.refreshToken!)
    stemp.server.fault('token', { kind: 'json', status: 400, body: { error: 'invalid_request', error_description: `bad token ${(await stemp.storage.get('default'))!.refreshToken}` } })
    await collect(stemp.auth.getAccessToken({ forceRefresh: true }))
    stemp.server.fault('token', { kind: 'html' })
    await collect(stemp.auth.getAccessToken({ forceRefresh: true }))
    stemp.server.fault('token', { kind: 'reset' }, 2)
    await collect(stemp.auth.getAccessToken({ forceRefresh: true }))
    stemp.server.revokeAll()
    await collect(stemp.auth.getAccessToken({ forceRefresh: true }))

    // Stenn with a wrong secret the server echoes back
    const stenn = await fixture('stenn')
    const wrong = 'wrong-secret-value-123'
    secrets.push(wrong, stenn.credentials.client_secret!)
    stenn.fault('token', { kind: 'json', status: 401, body: { error: 'invalid_client', error_description: `secret ${wrong} is not valid` } })
    await collect(createTokenAuth({ grant: clientCredentialsGrant({ url: stenn.url('/auth/v1/token'), clientId: 'stenn-client', clientSecret: wrong }) }).getAccessToken())

    // Starship with a wrong password the server echoes back
    const starship = await fixture('starship')
    secrets.push(starship.credentials.password!)
    starship.fault('token', { kind: 'json', status: 401, body: { error: 'Unauthorized', message: `password ${starship.credentials.password} rejected` } })
    await collect(createTokenAuth({ grant: jsonLoginGrant({ loginUrl: starship.url('/auth/login'), credentials: { ...starship.credentials } }) }).getAccessToken())

    expect(errors.length).toBe(8)
    for (const error of errors) {
      expect(isTokenError(error)).toBe(true)
      const e = error as TokenError
      const surfaces = [e.message, JSON.stringify(e), String(e.stack), String(e), JSON.stringify(Object.entries(e)), String((e.cause as Error | undefined)?.message ?? '')]
      for (const secret of secrets) for (const surface of surfaces) expect(surface).not.toContain(secret)
      // the Response is attached but not enumerable
      expect(Object.keys(e)).not.toContain('response')
    }
    // the error messages still say what happened
    expect(errors.map((error) => (error as TokenError).code)).toEqual([
      'ERR_INSUFFICIENT_SCOPE', 'ERR_STILL_UNAUTHORIZED', 'ERR_TOKEN_ENDPOINT', 'ERR_TOKEN_RESPONSE_INVALID',
      'ERR_TOKEN_ENDPOINT_UNREACHABLE', 'ERR_SESSION_ENDED', 'ERR_INVALID_CLIENT', 'ERR_INVALID_CLIENT',
    ])
    expect((errors[6] as TokenError).message).toContain('[redacted]')
  })

  it('URLs in messages keep origin and path only (no query string)', async () => {
    const server = await fixture('stemp')
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh?api_key=shh-secret'), body: 'json' }) })
    await auth.setTokens(server.signIn() as any)
    server.fault('token', { kind: 'html' })
    const error = await rejection(auth.getAccessToken({ forceRefresh: true }))
    expect(error.message).toContain(`${server.origin}/api/v1/apps/oauth2/refresh`)
    expect(error.message).not.toContain('shh-secret')
  })

  it('isTokenError works across realms (a plain object with the right name and code)', () => {
    const foreign = Object.assign(new Error('x'), { name: 'TokenError', code: 'ERR_SESSION_ENDED' })
    expect(isTokenError(foreign)).toBe(true)
    expect(isTokenError(foreign, 'ERR_SESSION_ENDED')).toBe(true)
    expect(isTokenError(foreign, 'ERR_STORAGE')).toBe(false)
    expect(isTokenError(new Error('x'))).toBe(false)
  })
})
