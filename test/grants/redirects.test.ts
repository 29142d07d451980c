// Token-endpoint calls never follow redirects: a 307/308 would re-POST the refresh token, the
// client secret or the login password to wherever `Location` points. Every grant's call (and the
// RFC 7009 revocation) must stop at the 3xx, with a typed error that names only the target's
// origin, and send nothing to the target. Real servers on 127.0.0.1 prove the "nothing".
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import {
  clientCredentialsGrant,
  createTokenAuth,
  jsonLoginGrant,
  memoryStorage,
  readTokenResponse,
  refreshTokenGrant,
  type Grant,
  type SessionEvents,
} from '../../src/index.ts'
import { rejection } from '../helpers.ts'

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST',
  'access-control-allow-headers': 'authorization, content-type, accept',
  'access-control-expose-headers': 'location',
}

const servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })))
})

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; origin: string }> {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

// The place a redirect points to: counts every connection and request it ever receives.
async function trap() {
  const seen = { connections: 0, requests: 0 }
  const { server, origin } = await listen((req, res) => {
    seen.requests++
    res.writeHead(200, { ...CORS, 'content-type': 'application/json' })
    res.end(JSON.stringify({ access_token: 'stolen', expires_in: 60, refresh_token: 'stolen' }))
  })
  server.on('connection', () => void seen.connections++)
  return { origin, seen }
}

// A token endpoint that answers every POST with `status` and `Location: location`.
async function redirector(status: number, location: string) {
  const seen = { posts: 0 }
  const { origin } = await listen((req, res) => {
    req.resume()
    if (req.method === 'OPTIONS') {
      res.writeHead(204, CORS)
      return res.end()
    }
    seen.posts++
    res.writeHead(status, { ...CORS, location, 'content-type': 'text/html' })
    res.end('<a href="elsewhere">moved</a>')
  })
  return { origin, seen }
}

const STATUSES = [301, 302, 303, 307, 308]
const SECRET = 'client-secret-value-1234'
const PASSWORD = 'pw-correct-horse-battery'
const REFRESH = 'srt_refresh_token_value_5678'

// One grant per token-endpoint call the library makes; each call is driven from createTokenAuth.
const calls: { name: string; grant: (url: string) => Grant; run: 'refresh' | 'logout' }[] = [
  { name: 'JSON refresh (stemp)', grant: (url) => refreshTokenGrant({ url, body: 'json' }), run: 'refresh' },
  { name: 'form refresh with client_secret_post', grant: (url) => refreshTokenGrant({ url, clientId: 'app', clientSecret: SECRET, clientAuth: 'client_secret_post' }), run: 'refresh' },
  { name: 'form refresh with client_secret_basic', grant: (url) => refreshTokenGrant({ url, clientId: 'app', clientSecret: SECRET }), run: 'refresh' },
  { name: 'client credentials', grant: (url) => clientCredentialsGrant({ url, clientId: 'app', clientSecret: SECRET }), run: 'refresh' },
  { name: 'JSON login', grant: (url) => jsonLoginGrant({ loginUrl: url, credentials: { email: 'api@company.test', password: PASSWORD } }), run: 'refresh' },
  { name: 'JSON login refresh', grant: (url) => jsonLoginGrant({ loginUrl: 'http://127.0.0.1:9/never', refreshUrl: url, credentials: { email: 'api@company.test', password: PASSWORD } }), run: 'refresh' },
  { name: 'RFC 7009 revocation', grant: (url) => refreshTokenGrant({ url: 'http://127.0.0.1:9/never', revocationUrl: url, clientId: 'app', clientSecret: SECRET, clientAuth: 'client_secret_post' }), run: 'logout' },
]

describe('token-endpoint calls never follow redirects', () => {
  for (const call of calls) {
    for (const status of STATUSES) {
      it(`${call.name}: ${status} → ERR_TOKEN_ENDPOINT, nothing sent to the target, tokens kept`, async () => {
        const target = await trap()
        const from = await redirector(status, `${target.origin}/oauth/token?client_secret=${SECRET}&next=/x`)
        const storage = memoryStorage()
        const auth = createTokenAuth({ grant: call.grant(`${from.origin}/oauth/token`), storage })
        const errors: SessionEvents['error'][] = []
        auth.on('error', (event) => errors.push(event))
        await auth.setTokens({ access_token: 'old-access', expires_in: 3600, refresh_token: REFRESH })
        const before = JSON.stringify(await storage.get('default'))

        let error
        if (call.run === 'logout') {
          await auth.logout()
          expect(errors).toHaveLength(1)
          error = errors[0]!.error as any
        } else {
          error = await rejection(auth.getAccessToken({ forceRefresh: true }))
          expect(JSON.stringify(await storage.get('default'))).toBe(before)
        }

        expect(error.code).toBe('ERR_TOKEN_ENDPOINT')
        expect(error.status).toBe(status)
        expect(error.message).toContain(String(status))
        expect(error.message).toContain(target.origin) // the target's origin only…
        expect(error.message).not.toContain('/oauth/token?') // …never its path or query
        for (const secret of [SECRET, PASSWORD, REFRESH, 'next=']) expect(JSON.stringify(error)).not.toContain(secret)
        expect(error.message).toMatch(call.run === 'logout' ? /final revocation URL/ : /final token URL/)
        expect(from.seen.posts).toBe(1) // not retried either
        expect(target.seen).toEqual({ connections: 0, requests: 0 })
      })
    }
  }

  it('a relative Location names the token endpoint\'s own origin', async () => {
    const from = await redirector(307, '/elsewhere/token?refresh_token=leak')
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: `${from.origin}/token`, body: 'json' }) })
    await auth.setTokens({ access_token: 'old-access', refresh_token: REFRESH })
    const error = await rejection(auth.getAccessToken({ forceRefresh: true }))
    expect(error.code).toBe('ERR_TOKEN_ENDPOINT')
    expect(error.message).toContain(`307`)
    expect(error.message).toContain(from.origin)
    expect(error.message).not.toContain('/elsewhere/token')
    expect(error.message).not.toContain('leak')
  })

  it('a Location whose host echoes the refresh token is scrubbed too', async () => {
    const from = await redirector(308, `http://${REFRESH}.example.test/token`)
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: `${from.origin}/token`, body: 'json' }) })
    await auth.setTokens({ access_token: 'old-access', refresh_token: REFRESH })
    const error = await rejection(auth.getAccessToken({ forceRefresh: true }))
    expect(error.code).toBe('ERR_TOKEN_ENDPOINT')
    expect(error.message).toContain('http://[redacted].example.test')
    expect(error.message).not.toContain(REFRESH)
  })

  it('a user-supplied fetch is asked not to follow redirects', async () => {
    const inits: RequestInit[] = []
    const auth = createTokenAuth({
      grant: refreshTokenGrant({ url: 'https://auth.example.test/token', body: 'json' }),
      fetch: async (_input, init) => {
        inits.push(init!)
        return new Response(JSON.stringify({ access_token: 'new-access', expires_in: 60 }), { headers: { 'content-type': 'application/json' } })
      },
    })
    await auth.setTokens({ access_token: 'old-access', refresh_token: REFRESH })
    expect(await auth.getAccessToken({ forceRefresh: true })).toBe('new-access')
    expect(inits.map((init) => init.redirect)).toEqual(['manual'])
  })

  it("a browser's opaqueredirect (status 0, no Location) is a redirect error too", async () => {
    const opaque = () => Object.defineProperties(new Response(null), { type: { value: 'opaqueredirect' }, status: { value: 0 }, ok: { value: false } })
    const storage = memoryStorage()
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: 'https://auth.example.test/token', body: 'json' }), storage, fetch: async () => opaque() })
    await auth.setTokens({ access_token: 'old-access', refresh_token: REFRESH })
    const before = JSON.stringify(await storage.get('default'))
    const error = await rejection(auth.getAccessToken({ forceRefresh: true }))
    expect(error.code).toBe('ERR_TOKEN_ENDPOINT')
    expect(error.message).toContain('https://auth.example.test/token')
    expect(error.message).toMatch(/redirect/)
    expect(error.message).toMatch(/final token URL/)
    expect(JSON.stringify(await storage.get('default'))).toBe(before)
    // readTokenResponse (for custom grants) says the same
    expect((await rejection(readTokenResponse(opaque()))).code).toBe('ERR_TOKEN_ENDPOINT')
  })
})
