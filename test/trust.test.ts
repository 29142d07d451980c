// The "Trust" guarantees of the engine, each as an attack or a careless use that broke it on an
// earlier main: a call handed another session's token, dead sessions that come back, storage that
// lies or hangs, hooks that skip methods or `throwHttpErrors` shapes, and a failing token endpoint
// hammered by a burst. Runs in Node and in happy-dom.
import ky, { HTTPError } from 'ky'
import { describe, expect, it } from 'vitest'
import { createTokenAuth, memoryStorage, refreshTokenGrant, staticToken, type StoredTokens, type TokenStorage } from '../src/index.ts'
import { client, fixture, rejection } from './helpers.ts'

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('6. a call never receives tokens from after a logout it started before', () => {
  // Two engines (two tabs, two BFF workers) share one storage. Engine 2 holds the refresh lock on a
  // slow token endpoint; engine 1's request waits for it; user A logs out on engine 1 and user B
  // signs in. Engine 1's waiting request must end with ERR_LOGGED_OUT, never with B's token.
  async function twoEngines() {
    const server = await fixture('stemp', { tokenDelay: 300 })
    const storage = memoryStorage()
    const make = () => createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage })
    const one = make()
    const two = make()
    const seen: string[] = []
    const api = ky.create({
      baseUrl: server.url('/api/v1/'),
      hooks: { ...one.hooks, beforeRequest: [...one.hooks.beforeRequest!, ({ request }) => void seen.push(request.headers.get('authorization') ?? '')] },
    })
    return { server, storage, one, two, api, seen }
  }

  it('waiting on another engine\'s refresh lock', async () => {
    const { server, one, two, api, seen } = await twoEngines()
    await one.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    const holder = rejection(two.getAccessToken({ forceRefresh: true })) // takes the lock for 300 ms
    await wait(50)
    const pending = rejection(api.get('passes')) // expired: waits for the lock
    await wait(50)
    await one.logout()
    const userB = server.signIn() as any
    await one.setTokens(userB)
    const error = await pending
    expect(error.code).toBe('ERR_LOGGED_OUT')
    expect(seen).not.toContain(`Bearer ${userB.access_token}`)
    await holder
  })

  it('waiting on a shared refresh in the same engine', async () => {
    const { server, one, api, seen } = await twoEngines()
    await one.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    const first = rejection(one.getAccessToken({ forceRefresh: true }))
    await wait(50)
    const pending = rejection(api.get('passes'))
    await wait(20)
    await one.logout()
    const userB = server.signIn() as any
    await one.setTokens(userB)
    expect((await pending).code).toBe('ERR_LOGGED_OUT')
    expect((await first).code).toBe('ERR_LOGGED_OUT')
    expect(seen).not.toContain(`Bearer ${userB.access_token}`)
  })

  it('waiting on a slow storage read (the adopt path)', async () => {
    const server = await fixture('stemp')
    const base = memoryStorage()
    let slow = false
    const storage: TokenStorage = { ...base, get: async (key) => (slow && (await wait(200)), base.get(key)) }
    const grant = refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' })
    const one = createTokenAuth({ grant, storage })
    const other = createTokenAuth({ grant, storage })
    await other.setTokens(server.signIn() as any) // engine `one` has nothing cached: it must read
    slow = true
    const pending = rejection(one.getAccessToken())
    await wait(50)
    await one.logout()
    slow = false
    const userB = server.signIn() as any
    await other.setTokens(userB)
    const error = await pending
    expect(error.code).toBe('ERR_LOGGED_OUT')
  })

  it('a session replaced by another engine (logout + sign-in elsewhere) is refused, not adopted', async () => {
    const { server, one, two, api, seen } = await twoEngines()
    await one.setTokens(server.signIn() as any)
    await api.get('passes') // engine one caches user A
    server.expireAccessTokens()
    const holder = rejection(two.getAccessToken({ forceRefresh: true }))
    await wait(50)
    const pending = rejection(api.get('passes')) // A's expired token: waits for the lock
    await wait(50)
    await two.logout()
    const userB = server.signIn() as any
    await two.setTokens(userB)
    expect((await pending).code).toBe('ERR_LOGGED_OUT')
    expect(seen).not.toContain(`Bearer ${userB.access_token}`)
    await holder
  })
})

describe('7. a dead session stays dead, cleanly', () => {
  it('when the cleanup after invalid_grant fails, the caller still gets ERR_SESSION_ENDED, the event fires, and the dead refresh token is never presented again', async () => {
    const server = await fixture('stemp')
    const base = memoryStorage()
    let broken = false
    let deletes = 0
    const storage: TokenStorage = {
      ...base,
      get: async (key) => (broken ? Promise.reject(new Error('read: connection reset')) : base.get(key)),
      delete: async (key) => (deletes++, broken ? Promise.reject(new Error('delete: connection reset')) : base.delete(key)),
    }
    // The storage breaks the moment the token endpoint answers invalid_grant.
    const fetchAndBreak: typeof fetch = async (input, init) => {
      const response = await fetch(input, init)
      broken = true
      return response
    }
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage, fetch: fetchAndBreak })
    const ended: unknown[] = []
    auth.on('sessionEnded', ({ error }) => ended.push(error))
    await auth.setTokens(server.signIn() as any)
    server.revokeAll()
    const refreshing = auth.getAccessToken({ forceRefresh: true })
    const error = await rejection(refreshing)
    expect(error.code).toBe('ERR_SESSION_ENDED')
    expect(ended).toEqual([error])
    broken = false
    expect(await base.get('default')).toBeDefined() // cleanup failed: the dead set is still stored
    const again = await rejection(auth.getAccessToken({ forceRefresh: true }))
    expect(again.code).toBe('ERR_SESSION_ENDED')
    expect(server.counts.token).toBe(1) // never presented again
    expect(await base.get('default')).toBeUndefined() // cleanup retried on the next access
    expect(deletes).toBe(1) // the first cleanup failed at its read; the retry deleted
  })
})

describe('9. a rotated refresh token in an otherwise invalid response is never lost', () => {
  it('the storage write of the rescued token fails: it stays in memory, an error event fires, the next refresh presents it', async () => {
    const server = await fixture('stemp')
    const base = memoryStorage()
    let failWrites = false
    const storage: TokenStorage = {
      ...base,
      compareAndSet: (...args) => (failWrites ? Promise.reject(new Error('write refused')) : base.compareAndSet!(...args)),
      set: (...args) => (failWrites ? Promise.reject(new Error('write refused')) : base.set(...args)),
    }
    let mangle = false
    const auth = createTokenAuth({
      grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }),
      storage,
      fetch: async (input, init) => {
        const response = await fetch(input, init)
        if (!mangle) return response
        mangle = false
        const body = await response.json() // the server rotated for real; drop the access token
        return new Response(JSON.stringify({ ...body, access_token: '' }), { status: 200, headers: { 'content-type': 'application/json' } })
      },
    })
    const errors: unknown[] = []
    auth.on('error', ({ error }) => errors.push(error))
    await auth.setTokens(server.signIn() as any)
    mangle = true
    failWrites = true
    expect((await rejection(auth.getAccessToken({ forceRefresh: true }))).code).toBe('ERR_TOKEN_RESPONSE_INVALID')
    expect(errors.map((error: any) => error.code)).toEqual(['ERR_STORAGE'])
    failWrites = false
    await auth.getAccessToken({ forceRefresh: true }) // presents the rescued (rotated) token
    expect(server.counts).toMatchObject({ token: 2, reuse: 0 })
    expect((await base.get('default'))!.accessToken).toBe(await auth.getAccessToken())
  })
})

describe('10. stored data is validated on read', () => {
  const corrupt: [string, unknown][] = [
    ['a string', 'eyJhbGciOi'],
    ['an empty object', {}],
    ['a null accessToken', { accessToken: null, rev: 'r', receivedAt: 1 }],
    ['a numeric accessToken', { accessToken: 42, rev: 'r', receivedAt: 1 }],
    ['a token with a line break', { accessToken: 'abc\r\nX-Evil: 1', rev: 'r', receivedAt: 1 }],
    ['a non-numeric expiresAt', { accessToken: 'abc', rev: 'r', receivedAt: 1, expiresAt: 'soon' }],
    ['a numeric refreshToken', { accessToken: 'abc', rev: 'r', receivedAt: 1, refreshToken: 7 }],
  ]
  for (const [name, value] of corrupt) {
    it(`${name} is ERR_STORAGE and never sent`, async () => {
      const server = await fixture('stemp')
      const storage: TokenStorage = { ...memoryStorage(), get: async () => value as StoredTokens }
      const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage })
      const error = await rejection(ky.create({ baseUrl: server.url('/api/v1/'), hooks: auth.hooks }).get('passes'))
      expect(error.code).toBe('ERR_STORAGE')
      expect(error.message).toContain('not a token set')
      expect(server.counts).toMatchObject({ api: 0, token: 0 })
    })
  }
})

describe('11. no storage call can block a key forever', () => {
  it('a get() that never settles times out as ERR_STORAGE, and later calls work once storage recovers', async () => {
    const server = await fixture('stemp')
    const base = memoryStorage()
    let hang = false
    const storage: TokenStorage = { ...base, get: (key) => (hang ? new Promise(() => {}) : base.get(key)) }
    const grant = refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' })
    await createTokenAuth({ grant, storage }).setTokens(server.signIn() as any)
    const auth = createTokenAuth({ grant, storage, storageTimeout: 200 })
    hang = true
    const outcome = await Promise.race([rejection(auth.getAccessToken()), wait(2000).then(() => 'still pending')])
    expect((outcome as any).code).toBe('ERR_STORAGE')
    expect((outcome as any).message).toContain('200 ms')
    hang = false
    expect(typeof (await auth.getAccessToken())).toBe('string')
  })

  it('a refresh lock whose backend never answers times out, and does not poison later refreshes', async () => {
    const server = await fixture('stemp')
    const base = memoryStorage()
    let hang = true
    const storage: TokenStorage = { ...base, withLock: (key, fn, options) => (hang ? new Promise(() => {}) : base.withLock!(key, fn, options)) }
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage, lockTimeout: 200, storageTimeout: 100 })
    await auth.setTokens(server.signIn() as any)
    const outcome = await Promise.race([rejection(auth.getAccessToken({ forceRefresh: true })), wait(3000).then(() => 'still pending')])
    expect(['ERR_LOCK_TIMEOUT', 'ERR_STORAGE']).toContain((outcome as any).code)
    hang = false
    expect(typeof (await auth.getAccessToken({ forceRefresh: true }))).toBe('string')
    expect(server.counts).toMatchObject({ token: 1, reuse: 0 })
  })
})

describe('12. throwHttpErrors as a function', () => {
  for (const [name, throwHttpErrors] of [['throws on 5xx only', (status: number) => status >= 500], ['throws on everything', () => true]] as const) {
    it(`(${name}) a 401 still becomes one refresh and one replay`, async () => {
      const { server, auth, api } = await client('stemp', { kyOptions: { throwHttpErrors } })
      await auth.setTokens(server.signIn() as any)
      server.expireAccessTokens()
      const response = await api.get('passes')
      expect(response.status).toBe(200)
      expect(server.counts).toMatchObject({ token: 1, unauthorized: 1, api: 2 })
    })
  }
})

describe('13. origins entries are validated at setup', () => {
  for (const bad of ['localhost:8080', 'api.x.com:443', 'ftp://files.example.com', 'https://api.example.com/v1', 'https://api.example.com?x=1', '']) {
    it(`${JSON.stringify(bad)} is a TypeError naming the entry`, () => {
      expect(() => createTokenAuth({ grant: staticToken('sk_live_x'), origins: [bad] })).toThrow(TypeError)
      expect(() => createTokenAuth({ grant: staticToken('sk_live_x'), origins: [bad] })).toThrow(bad ? bad.slice(0, 12) : '""')
    })
  }
  it('an exact origin, with or without a trailing slash, is accepted', () => {
    expect(() => createTokenAuth({ grant: staticToken('sk_live_x'), origins: ['https://api.example.com', 'http://127.0.0.1:8080/'] })).not.toThrow()
  })
})

describe('14. an engine can be disposed', () => {
  it('dispose() removes its watch listener; Symbol.dispose does the same; a disposed engine refuses work', async () => {
    const listeners = new Set<(key: string) => void>()
    const storage: TokenStorage = { ...memoryStorage(), watch: (listener) => (listeners.add(listener), () => void listeners.delete(listener)) }
    const grant = refreshTokenGrant({ url: 'http://127.0.0.1:9/token', body: 'json' })
    const engines = Array.from({ length: 100 }, () => createTokenAuth({ grant, storage }))
    expect(listeners.size).toBe(100)
    for (const engine of engines.slice(0, 50)) engine.dispose()
    for (const engine of engines.slice(50)) engine[Symbol.dispose]()
    expect(listeners.size).toBe(0)
    const error = await rejection(engines[0]!.getAccessToken())
    expect(error.code).toBe('ERR_DISPOSED')
  })
})

describe('16. every method ky supports gets the same treatment', () => {
  it('ERR_STILL_UNAUTHORIZED says a refresh and a retry happened only when they did', async () => {
    const { server, auth, api } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    server.fault('api', { kind: 'status', status: 401 }, 2)
    const error = await rejection(api.get('passes'))
    expect(error.code).toBe('ERR_STILL_UNAUTHORIZED')
    expect(server.counts).toMatchObject({ token: 1 }) // the two faulted 401s are not counted as API calls
    expect(error.message).toContain('after one token refresh and one retry')
  })
})

describe('17. a failing token endpoint is not hammered', () => {
  it('a burst of 50 (in waves) against an endpoint answering HTML makes exactly 1 token call', async () => {
    const { server, auth, api } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    server.fault('token', { kind: 'html' }, 100)
    const errors: any[] = []
    for (let wave = 0; wave < 5; wave++) {
      errors.push(...(await Promise.all(Array.from({ length: 10 }, () => rejection(api.get('passes'))))))
      await wait(20)
    }
    expect(errors.every((error) => error.code === 'ERR_TOKEN_RESPONSE_INVALID')).toBe(true)
    expect(server.counts.token).toBe(1)
  })

  it('against 503s: 1 refresh attempt plus its documented retries (3 calls in all), whatever the burst', async () => {
    const { server, auth, api } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    server.fault('token', { kind: 'status', status: 503 }, 100)
    for (let wave = 0; wave < 3; wave++) {
      await Promise.all(Array.from({ length: 10 }, () => rejection(api.get('passes'))))
      await wait(10)
    }
    expect(server.counts.token).toBe(3)
  })

  it('the backoff grows while failures persist, honours Retry-After, and a success resets it; forceRefresh and a sign-in bypass it', async () => {
    const { server, auth, clock } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    clock.advance(1_800_000)
    server.fault('token', { kind: 'html' }, 3)
    await rejection(auth.getAccessToken())
    await rejection(auth.getAccessToken())
    expect(server.counts.token).toBe(1)
    clock.advance(1_100) // past the first 1 s backoff
    await rejection(auth.getAccessToken())
    expect(server.counts.token).toBe(2)
    clock.advance(1_100) // the backoff doubled to 2 s: still inside it
    await rejection(auth.getAccessToken())
    expect(server.counts.token).toBe(2)
    await rejection(auth.getAccessToken({ forceRefresh: true })) // bypasses the backoff
    expect(server.counts.token).toBe(3)
    await auth.getAccessToken({ forceRefresh: true }) // the endpoint works again: success resets
    expect(server.counts.token).toBe(4)
    clock.advance(1_800_000)
    server.fault('token', { kind: 'status', status: 429, retryAfter: '120' })
    await rejection(auth.getAccessToken())
    clock.advance(60_000)
    await rejection(auth.getAccessToken()) // Retry-After: 120 s not over yet
    expect(server.counts.token).toBe(5)
    await auth.setTokens(server.signIn() as any) // a new sign-in starts clean
    clock.advance(1_800_000)
    await auth.getAccessToken()
    expect(server.counts.token).toBe(6)
  })
})

describe('a failed early refresh still serves the valid token after the cache TTL re-read (found by the Deno/workerd leak scans)', () => {
  it('the token inside its early-refresh window is served when the refresh fails, whatever the in-memory copy\'s age', async () => {
    const { server, auth, clock, events } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    const token = await auth.getAccessToken()
    clock.advance(1_770_000) // 29.5 of 30 minutes: inside the 60 s early window, and past cache.ttl (60 s)
    server.fault('token', { kind: 'html' })
    expect(await auth.getAccessToken()).toBe(token)
    expect(events.error.map((event: any) => event.error.code)).toEqual(['ERR_TOKEN_RESPONSE_INVALID'])
  })
})

describe('after the server ended a session, its later callers get the same answer', () => {
  it('a request whose 401 arrives after the rejected refresh ends with ERR_SESSION_ENDED, not ERR_LOGGED_OUT (found in the playground revoke burst)', async () => {
    const { server, auth, api } = await client('stemp')
    await auth.setTokens(server.signIn() as any)
    server.revokeAll()
    server.fault('api', { kind: 'slow', ms: 300 }) // the first request's 401 comes late
    const late = rejection(api.get('passes'))
    await new Promise((resolve) => setTimeout(resolve, 30))
    const early = await rejection(api.get('passes')) // 401 → refresh rejected → session ended, storage cleared
    expect(early.code).toBe('ERR_SESSION_ENDED')
    expect((await late).code).toBe('ERR_SESSION_ENDED')
    expect(server.counts.token).toBe(1)
  })
})

describe('adversarial review (each broke a guarantee before its fix)', () => {
  it('dispose() while a refresh is at the token endpoint: the refresh still commits, the session survives', async () => {
    const { server, auth, storage, clock } = await client('stemp', { fixture: { tokenDelay: 200 } })
    await auth.setTokens(server.signIn() as any)
    const pending = auth.getAccessToken({ forceRefresh: true })
    await wait(50)
    auth.dispose()
    expect(typeof (await pending)).toBe('string') // the caller that was waiting gets the new token
    const next = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage, now: clock.now })
    expect(typeof (await next.getAccessToken({ forceRefresh: true }))).toBe('string')
    expect(server.counts).toMatchObject({ token: 2, reuse: 0 })
  })

  it('setTokens(TokenSet) refuses a receivedAt that is not a number; one later than expiresAt is simply expired', async () => {
    const { server, auth, clock } = await client('stemp')
    const body = server.signIn() as any
    const now = clock.now()
    for (const receivedAt of [Number.NaN, 'yesterday']) {
      await expect(auth.setTokens({ accessToken: body.access_token, refreshToken: body.refresh_token, expiresAt: now + 60_000, receivedAt } as any)).rejects.toThrow(TypeError)
    }
    await auth.setTokens({ accessToken: body.access_token, refreshToken: body.refresh_token, expiresAt: now + 60_000, receivedAt: now + 10 * 3_600_000 })
    clock.advance(2 * 3_600_000)
    expect(await auth.getAccessToken()).not.toBe(body.access_token) // expired: refreshed, not handed out
  })

  it('a shared storage that can neither lock nor claim is refused for a rotating grant', () => {
    const base = memoryStorage()
    const shared: TokenStorage = { name: 'naive', flags: { scope: 'global', consistency: 'strong' }, get: base.get, set: base.set, delete: base.delete }
    expect(() => createTokenAuth({ grant: refreshTokenGrant({ url: 'https://auth.example.test/token', body: 'json' }), storage: shared })).toThrow(/neither withLock\(\) nor claim\(\)/)
  })
})
