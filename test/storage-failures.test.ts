import { describe, expect, it } from 'vitest'
import { createTokenAuth, memoryStorage, refreshTokenGrant, type TokenStorage } from '../src/index.ts'
import { fixture, rejection } from './helpers.ts'

// A storage backend that breaks in one place at a time.
function broken(part: 'get' | 'compareAndSet' | 'withLock'): TokenStorage {
  const base = memoryStorage()
  const fail = () => Promise.reject(new Error(`${part}: connection refused`))
  return { ...base, [part]: fail }
}

describe('storage failures are ERR_STORAGE and change nothing', () => {
  for (const part of ['get', 'compareAndSet', 'withLock'] as const) {
    it(`a failing ${part}`, async () => {
      const server = await fixture('stemp')
      const storage = broken(part)
      const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage })
      await auth.setTokens(server.signIn() as any)
      const error = await rejection(auth.getAccessToken({ forceRefresh: true }))
      expect(error.code).toBe('ERR_STORAGE')
      expect(error.cause.message).toBe(`${part}: connection refused`)
      expect(error.message).toContain('"memory" token storage')
      // Where the failure came before the token endpoint, the refresh token was not spent.
      expect(server.counts.token).toBe(part === 'compareAndSet' ? 1 : 0)
    })
  }
})
