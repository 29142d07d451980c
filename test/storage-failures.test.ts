import { describe, expect, it } from 'vitest'
import { createTokenAuth, memoryStorage, refreshTokenGrant, type TokenStorage } from '../src/index.ts'
import { fixture, rejection } from './helpers.ts'

// A storage backend that breaks in one place, `times` times (Infinity = for good).
function broken(part: 'get' | 'compareAndSet' | 'withLock', times = Infinity): TokenStorage {
  const base = memoryStorage()
  let failures = 0
  const original = base[part] as (...args: any[]) => Promise<any>
  return {
    ...base,
    [part]: (...args: any[]) => (failures++ < times ? Promise.reject(new Error(`${part}: connection refused`)) : original.apply(base, args)),
  }
}

async function setup(storage: TokenStorage) {
  const server = await fixture('stemp')
  const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage })
  const errors: unknown[] = []
  auth.on('error', ({ error }) => errors.push(error))
  await auth.setTokens(server.signIn() as any)
  return { server, auth, errors }
}

describe('storage failures', () => {
  for (const part of ['get', 'withLock'] as const) {
    it(`a failing ${part} is ERR_STORAGE before the refresh token is spent`, async () => {
      const { server, auth } = await setup(broken(part))
      const error = await rejection(auth.getAccessToken({ forceRefresh: true }))
      expect(error.code).toBe('ERR_STORAGE')
      expect(error.cause.message).toBe(`${part}: connection refused`)
      expect(error.message).toContain('"memory" token storage')
      expect(server.counts.token).toBe(0)
    })
  }

  it('a write that fails after the server rotated keeps the new tokens in memory (never lost) and saves them on the next refresh', async () => {
    const storage = broken('compareAndSet', 1)
    const { server, auth, errors } = await setup(storage)
    const before = (await storage.get('default'))!
    const token = await auth.getAccessToken({ forceRefresh: true }) // rotated; the save fails
    expect(token).not.toBe(before.accessToken)
    expect(errors).toHaveLength(1)
    expect((errors[0] as any).code).toBe('ERR_STORAGE')
    expect((await storage.get('default'))!.rev).toBe(before.rev) // storage still holds the spent token
    expect(await auth.getAccessToken()).toBe(token) // this engine goes on with the new one
    // The next refresh presents the rotated (unsaved) refresh token, not the spent one, and saves.
    const third = await auth.getAccessToken({ forceRefresh: true })
    expect(server.counts).toMatchObject({ token: 2, reuse: 0 })
    expect((await storage.get('default'))!.accessToken).toBe(third)
  })

  it('a write that keeps failing never makes the engine replay a spent refresh token', async () => {
    const { server, auth, errors } = await setup(broken('compareAndSet'))
    for (let i = 0; i < 3; i++) await auth.getAccessToken({ forceRefresh: true })
    expect(errors).toHaveLength(3)
    expect(server.counts).toMatchObject({ token: 3, reuse: 0 })
  })
})
