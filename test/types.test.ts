// Type-level checks (enforced by `tsc -p test/tsconfig.json` in `npm test`) plus their runtime twins.
import ky, { type Hooks } from 'ky'
import { describe, expectTypeOf, it, expect } from 'vitest'
import {
  createTokenAuth,
  isTokenError,
  refreshTokenGrant,
  type AuthContext,
  type Grant,
  type SessionEvents,
  type TokenError,
  type TokenErrorCode,
  type TokenStorage,
} from '../src/index.ts'
import { redisStorage, type RedisLike } from '../src/storage/redis.ts'

describe('public types', () => {
  const auth = createTokenAuth({ grant: refreshTokenGrant({ url: 'https://auth.example.test/token' }) })

  it('auth.hooks is a ky Hooks object that ky.create accepts', () => {
    expectTypeOf(auth.hooks).toMatchTypeOf<Hooks>()
    expect(ky.create({ hooks: auth.hooks })).toBeTypeOf('function')
  })

  it('AuthContext is usable as ky\'s context (an open record)', () => {
    const context: AuthContext = { auth: false }
    const api = ky.create({ hooks: auth.hooks })
    expectTypeOf(api.get).toBeCallableWith('https://api.example.test/x', { context })
    expectTypeOf<AuthContext>().toMatchTypeOf<Record<string, unknown>>()
    expect(context.auth).toBe(false)
  })

  it('isTokenError narrows, and codes are a closed union', () => {
    const error: unknown = new Error('x')
    if (isTokenError(error)) expectTypeOf(error).toEqualTypeOf<TokenError>()
    expectTypeOf<'ERR_SESSION_ENDED'>().toMatchTypeOf<TokenErrorCode>()
    // @ts-expect-error not a code
    const bad: TokenErrorCode = 'ERR_NOPE'
    void bad
    expect(isTokenError(error)).toBe(false)
  })

  it('event payloads carry no token fields', () => {
    expectTypeOf<SessionEvents['refresh']>().toEqualTypeOf<{ key: string; rotated: boolean; expiresAt?: number }>()
    expectTypeOf<keyof SessionEvents['tokens']>().toEqualTypeOf<'key' | 'cause' | 'expiresAt'>()
    expect(auth.on('refresh', () => {})).toBeTypeOf('function')
  })

  it('grants and storages are plain structural interfaces', () => {
    const grant: Grant = { name: 'custom', request: async (_current, { now }) => ({ accessToken: 'a', receivedAt: now() }) }
    const client: RedisLike = { sendCommand: async () => null }
    const storage: TokenStorage = redisStorage({ client })
    expect(createTokenAuth({ grant, storage, origins: ['https://api.example.test'] }).storage.name).toBe('redis')
  })
})
