// The leak and redirect guarantees of the "Trust" list, on Node's fetch (undici), where redirects
// are visible to the library and `util.inspect` is what a careless logger calls. Node-only: a
// browser (and happy-dom) follows redirects itself and drops Authorization across origins, which
// the Chromium leak scan in test/browser covers.
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { inspect } from 'node:util'
import ky, { HTTPError } from 'ky'
import { describe, expect, it } from 'vitest'
import { clientCredentialsGrant, createTokenAuth, refreshTokenGrant, staticToken } from '../src/index.ts'
import { MODES, client, fixture, rejection, wire } from './helpers.ts'

/** Every string reachable from `root`: own properties (enumerable or not), cause chains, Headers, Request/Response. */
function reachableStrings(root: unknown): string[] {
  const out: string[] = []
  const seen = new Set<unknown>()
  const visit = (value: unknown, depth: number): void => {
    if (typeof value === 'string') return void out.push(value)
    if (typeof value !== 'object' || value === null || seen.has(value) || depth > 12) return
    seen.add(value)
    if (value instanceof Headers) return void value.forEach((v, k) => out.push(`${k}: ${v}`))
    if (value instanceof Request || value instanceof Response) {
      out.push(value.url)
      visit(value.headers, depth + 1)
    }
    if (value instanceof Map) for (const [k, v] of value) (visit(k, depth + 1), visit(v, depth + 1))
    if (value instanceof Set || Array.isArray(value)) for (const v of value) visit(v, depth + 1)
    for (const key of Reflect.ownKeys(value)) {
      let child: unknown
      try {
        child = (value as Record<PropertyKey, unknown>)[key]
      } catch {
        continue
      }
      visit(child, depth + 1)
    }
  }
  visit(root, 0)
  return out
}

/** Every way a user might log `error`, joined: the scan target for secrets. */
function logged(error: unknown): string {
  const forms = [
    inspect(error),
    inspect(error, { depth: Infinity, showHidden: true }),
    String(error),
    JSON.stringify(error) ?? '',
    JSON.stringify(structuredCloneSafe(error)) ?? '',
    ...reachableStrings(error),
  ]
  return forms.join('\n')
}
/** Calls every function that is an own property of `target` with a few guesses, and returns every string reachable from what comes back. */
async function probeFunctions(target: object): Promise<string[]> {
  const guesses = [undefined, Symbol(), Symbol('ky-token-refresh'), 'ky-token-refresh', {}, 0, null]
  const found: string[] = []
  for (const key of Reflect.ownKeys(target)) {
    const fn = (target as Record<PropertyKey, unknown>)[key]
    if (typeof fn !== 'function') continue
    for (const guess of guesses) {
      try {
        found.push(...reachableStrings(await fn.call(target, guess)))
      } catch {}
    }
  }
  return found
}
function structuredCloneSafe(value: unknown) {
  try {
    const clone = structuredClone(value) as Error
    return { name: clone.name, message: clone.message, stack: clone.stack, cause: String((clone as { cause?: unknown }).cause ?? '') }
  } catch {
    return undefined
  }
}

/** A bare 127.0.0.1 server that records what it receives and answers `status`. */
async function recorder(status = 200) {
  const seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = []
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers })
    req.resume()
    res.writeHead(status, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' }).end('{"where":"recorder"}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { origin, seen, close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) }
}

/** A server on the API's allow-list that redirects every request to `target` with `status`. */
async function redirector(target: string, status: number) {
  const server = createServer((req, res) => {
    req.resume()
    res.writeHead(status, { location: target + req.url }).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { origin, close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) }
}

for (const mode of MODES) {
  describe(`1. nothing a user may log shows a token (auth.${mode})`, () => {
    const cases = [
      ['ERR_STILL_UNAUTHORIZED', 'passes', 401],
      ['ERR_INSUFFICIENT_SCOPE', 'organization', 403],
      ['a plain 500 passed through', 'passes', 500],
    ] as const
    for (const [name, path, status] of cases) {
      it(`${name}: util.inspect (default and full depth), String, JSON and a walk of cause/options/request hold no token`, async () => {
        const { server, auth, api } = await client('stemp', { mode, kyOptions: { retry: 0 } })
        const signIn = server.signIn() as any
        await auth.setTokens(signIn)
        if (status !== 403) server.fault('api', { kind: 'status', status, body: '{"error":"nope"}' }, 5)
        const error = await rejection(api.get(path))
        const text = logged(error)
        expect(text).not.toContain(signIn.access_token)
        expect(text).not.toContain(signIn.refresh_token)
        const renewed = (await auth.storage.get('default'))!
        expect(text).not.toContain(renewed.accessToken)
        expect(text).not.toContain(renewed.refreshToken)
        expect(text).toMatch(/\bBearer \[redacted\]/) // the header is visible as having been sent, not its value
        if (status === 500) expect(error).toBeInstanceOf(HTTPError)
      })
    }

    it('a careless user calling every function on error.options.retry, with any argument, gets no token', async () => {
      const { server, auth, api } = await client('stemp', { mode, kyOptions: { retry: 0 } })
      const signIn = server.signIn() as any
      await auth.setTokens(signIn)
      server.fault('api', { kind: 'status', status: 500, body: '{"error":"nope"}' })
      const error = (await rejection(api.get('passes'))) as unknown as { options: { retry: object } }
      const text = (await probeFunctions(error.options.retry)).join('\n')
      expect(text).not.toContain(signIn.access_token)
      expect(text).not.toContain(signIn.refresh_token)
      // The probe finds a record handed out by a closure that does not check its caller.
      const naive = { [Symbol('ky-token-refresh')]: () => ({ sent: [signIn.access_token] }) }
      expect((await probeFunctions(naive)).join('\n')).toContain(signIn.access_token)
    })

    it('two auth instances on one ky instance: an error holds neither token, and each redacts its own (found by review)', async () => {
      const { origin, close } = await recorder(401)
      const user = 'userTokenAAAAAAAAAAAAAAAAAAAA'
      const service = 'serviceKeyBBBBBBBBBBBBBBBBBBB'
      const a = createTokenAuth({ grant: staticToken(user), origins: [origin] })
      const b = createTokenAuth({ grant: staticToken(service), origins: [origin], header: 'X-Api-Key' })
      const api = mode === 'extend'
        ? a.extend(b.extend(ky.create({ baseUrl: origin, retry: 0 })))
        : ky.create({ baseUrl: origin, retry: 0, hooks: { init: [...a.hooks.init!, ...b.hooks.init!], beforeRequest: [...b.hooks.beforeRequest!, ...a.hooks.beforeRequest!], beforeRetry: [...b.hooks.beforeRetry!, ...a.hooks.beforeRetry!], beforeError: [...b.hooks.beforeError!, ...a.hooks.beforeError!] } })
      const error = await rejection(api.get('x'))
      await close()
      const text = logged(error)
      expect(text).not.toContain(user)
      expect(text).not.toContain(service)
    })

    it('a user hook that wraps and logs every function on options.retry logs no token (found by review)', async () => {
      const { server, auth } = await client('stemp', { mode })
      const out: unknown[] = []
      const tracer = ({ options }: { options: { retry: unknown } }) => {
        const retry = options.retry as Record<PropertyKey, unknown>
        for (const key of Reflect.ownKeys(retry)) {
          const fn = retry[key]
          if (typeof fn === 'function') retry[key] = (...args: unknown[]) => {
            const result = fn.apply(retry, args)
            out.push(args, result)
            return result
          }
        }
      }
      const base = ky.create({ baseUrl: server.url('/api/v1/') })
      const api = mode === 'extend'
        ? auth.extend(base).extend({ hooks: { beforeRequest: [tracer as never] } })
        : base.extend({ hooks: { ...auth.hooks, beforeRequest: [...auth.hooks.beforeRequest!, tracer as never] } })
      const signIn = server.signIn() as any
      await auth.setTokens(signIn)
      server.expireAccessTokens()
      expect(await api.get('passes').json()).toMatchObject({ ok: true }) // 401, one refresh, one replay
      expect(server.counts.token).toBe(1)
      const renewed = (await auth.storage.get('default'))!
      const text = inspect(await Promise.all(out.map((value) => Promise.resolve(value).catch(() => undefined))), { depth: Infinity, showHidden: true })
      for (const secret of [signIn.access_token, signIn.refresh_token, renewed.accessToken, renewed.refreshToken]) expect(text).not.toContain(secret)
    })

    it('ERR_STATIC_TOKEN_REJECTED and a network error hold no static token', async () => {
      const server = await fixture('stemp')
      const token = 'sk_live_notknowntotheserver0123'
      const auth = createTokenAuth({ grant: staticToken(token), origins: [server.origin, 'http://127.0.0.1:9'] })
      const api = wire(auth, mode, { retry: 0 })
      const rejected = await rejection(api.get(server.url('/api/v1/passes')))
      expect(rejected.code).toBe('ERR_STATIC_TOKEN_REJECTED')
      expect(logged(rejected)).not.toContain(token)
      const network = await rejection(api.get('http://127.0.0.1:9/api'))
      expect(logged(network)).not.toContain(token)
    })

    it('an error body that echoes the bearer token is scrubbed', async () => {
      const { server, auth, api } = await client('stemp', { mode, kyOptions: { retry: 0 } })
      const signIn = server.signIn() as any
      await auth.setTokens(signIn)
      server.fault('api', { kind: 'status', status: 500, body: JSON.stringify({ echoed: `Bearer ${signIn.access_token}` }) })
      const error = await rejection(api.get('passes'))
      expect(logged(error)).not.toContain(signIn.access_token)
    })
  })

  describe(`6. per-request state stays with its request (auth.${mode})`, () => {
    it('one retry object shared by concurrent requests of two users: each 401 is renewed and replayed with its own user\'s token', async () => {
      const shared = { limit: 2, methods: ['get'] }
      const sent: { who: string; family: string }[] = []
      const familyOf = (authorization: string | null) => JSON.parse(Buffer.from((authorization ?? '').split('.')[1] ?? '', 'base64url').toString() || '{}').sub as string | undefined
      const { server, auth, api } = await client('stemp', {
        mode,
        kyOptions: {
          retry: shared,
          fetch: (input, init) => {
            const request = input as Request
            sent.push({ who: new URL(request.url).pathname.split('/').at(-2)!, family: familyOf(request.headers.get('authorization'))! })
            return fetch(input, init)
          },
        },
      })
      const alice = server.signIn() as any
      const bob = server.signIn() as any
      await auth.setTokens(alice, { key: 'alice' })
      await auth.setTokens(bob, { key: 'bob' })
      const family: Record<string, string | undefined> = { alice: familyOf(`Bearer ${alice.access_token}`), bob: familyOf(`Bearer ${bob.access_token}`) }
      expect(family.alice).toBeTruthy()
      expect(family.alice).not.toBe(family.bob)
      server.expireAccessTokens()
      const who = Array.from({ length: 20 }, (_, i) => (i % 2 ? 'alice' : 'bob'))
      const results = await Promise.all(who.map((name) => api.get(`${name}/passes`, { context: { authKey: name } }).json<{ ok: boolean }>()))
      expect(results.every((result) => result.ok)).toBe(true)
      expect(server.counts.unauthorized).toBe(20)
      expect(sent).toHaveLength(40) // 20 × (401, replay)
      for (const request of sent) expect(request.family).toBe(family[request.who])
      expect(server.counts.token).toBe(2) // one refresh per user
      expect(server.counts.reuse).toBe(0)
      expect(shared).toEqual({ limit: 2, methods: ['get'] }) // the caller's object is never written to
    })
  })

  describe(`4. extra headers and the token stay on their origins across redirects (auth.${mode})`, () => {
    // DokStamp: client credentials, X-Tenant on every call. `hop` is on the allow-list and redirects.
    async function dokstamp(hopTarget: (api: string) => string, status: number) {
      const server = await fixture('dokstamp')
      const hop = await redirector(hopTarget(server.origin), status)
      const auth = createTokenAuth({
        grant: clientCredentialsGrant({ url: server.url('/oauth/token'), clientId: server.credentials.client_id!, clientSecret: server.credentials.client_secret! }),
        origins: [hop.origin, server.origin],
        headers: { 'X-Tenant': 'acme' },
      })
      return { server, hop, auth, api: wire(auth, mode, { retry: 0 }) }
    }

    for (const status of [301, 302, 303, 307, 308]) {
      it(`a ${status} from the API to another origin carries neither Authorization nor X-Tenant there, and its 401 refreshes nothing`, async () => {
        const evil = await recorder(401)
        const { server, hop, auth, api } = await dokstamp(() => evil.origin, status)
        try {
          const token = await auth.getAccessToken()
          const error = await rejection(api.post(`${hop.origin}/api/documents`, { json: { a: 1 } }))
          expect(evil.seen).toHaveLength(1)
          expect(evil.seen[0]!.headers.authorization).toBeUndefined()
          expect(evil.seen[0]!.headers['x-tenant']).toBeUndefined()
          expect(server.counts.token).toBe(1) // the redirect target's 401 is not our token's problem
          expect(error).toBeInstanceOf(HTTPError)
          expect((error as HTTPError).response.status).toBe(401)
          expect(logged(error)).not.toContain(token)
        } finally {
          await hop.close()
          await evil.close()
        }
      })
    }

    it('a redirect that stays on the allow-list keeps the credentials (and a POST body on 307)', async () => {
      const { server, hop, api } = await dokstamp((origin) => origin, 307)
      try {
        const body = await api.post(`${hop.origin}/api/documents`, { json: { a: 1 } }).json<{ ok: boolean; received: number }>()
        expect(body).toMatchObject({ ok: true, received: 7 })
        expect(server.counts).toMatchObject({ api: 1, unauthorized: 0 })
      } finally {
        await hop.close()
      }
    })
  })
}

describe('16. every method ky supports gets the same treatment (Node)', () => {
  it('a QUERY that gets a 401 is refreshed and replayed once', async () => {
    const { server, auth, api } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    const response = await api('passes', { method: 'QUERY', body: 'q' })
    expect(response.status).toBe(200)
    expect(server.counts).toMatchObject({ token: 1, unauthorized: 1, api: 2 })
  })

  it('a QUERY that gets a 500 is sent three times, as bare ky sends it', async () => {
    const ours = await recorder(500)
    const bare = await recorder(500)
    try {
      const auth = createTokenAuth({ grant: staticToken('sk_live_query0123'), origins: [ours.origin] })
      const retry = { limit: 2, delay: () => 0 }
      expect(await rejection(ky.create({ hooks: auth.hooks, retry })(`${ours.origin}/search`, { method: 'QUERY', body: 'q' }))).toBeInstanceOf(HTTPError)
      expect(await rejection(ky(`${bare.origin}/search`, { method: 'QUERY', body: 'q', retry }))).toBeInstanceOf(HTTPError)
      expect(bare.seen).toHaveLength(3)
      expect(ours.seen).toHaveLength(3)
      expect(ours.seen.every((request) => request.method === 'QUERY' && request.headers.authorization === 'Bearer sk_live_query0123')).toBe(true)
    } finally {
      await ours.close()
      await bare.close()
    }
  })

})

describe('adversarial review, Node (each broke a guarantee before its fix)', () => {
  it('an error a user\'s beforeRetry hook wraps carries no token (ky skips beforeError for it)', async () => {
    const { server, auth, api } = await client('stemp', { kyOptions: { retry: { limit: 1, statusCodes: [503], delay: () => 0 } } })
    await auth.setTokens(server.signIn() as any)
    const token = await auth.getAccessToken()
    server.fault('api', { kind: 'status', status: 503 })
    const wrapped = api.extend({ hooks: { beforeRetry: [({ error }) => { throw new Error('giving up', { cause: error }) }] } })
    const error = await rejection(wrapped.get('passes'))
    expect(error.message).toBe('giving up')
    expect(logged(error)).not.toContain(token)
  })

  for (const mode of MODES) {
    it(`(auth.${mode}) a redirect off the allow-list and back: the token is not sent, and the final 401 refreshes nothing`, async () => {
      const server = await fixture('stemp')
      const seen: (string | undefined)[] = []
      let evil = ''
      const allowed = createServer((req, res) => {
        seen.push(req.headers.authorization)
        req.resume()
        if (req.url === '/start') return void res.writeHead(302, { location: `${evil}/bounce` }).end()
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end()
      })
      await new Promise<void>((resolve) => allowed.listen(0, '127.0.0.1', resolve))
      const allowedOrigin = `http://127.0.0.1:${(allowed.address() as AddressInfo).port}`
      const bouncer = await redirector(`${allowedOrigin}/protected`, 302)
      evil = bouncer.origin
      try {
        const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), origins: [server.origin, allowedOrigin] })
        await auth.setTokens(server.signIn() as any)
        const api = wire(auth, mode, { retry: 0 })
        await rejection(api.get(`${allowedOrigin}/start`))
        expect(seen[0]).toMatch(/^Bearer /) // sent to the allowed origin first
        expect(seen.slice(1)).toEqual([undefined]) // after the detour, never again
        expect(server.counts.token).toBe(0)
      } finally {
        await bouncer.close()
        await new Promise<void>((resolve) => (allowed.closeAllConnections(), allowed.close(() => resolve())))
      }
    })
  }
})

