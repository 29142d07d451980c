// Per-key engine state is bounded: a backend-for-frontend serves one token set per user session,
// so memory must not grow with every session that ever passed through, and a session deleted in
// storage must stop being served from memory. Observed through storage reads (a key served from
// memory reads nothing; a dropped one is read again), never through internals.
import { describe, expect, it } from 'vitest'
import { createTokenAuth, memoryStorage, refreshTokenGrant, type TokenStorage } from '../src/index.ts'
import { rejection } from './helpers.ts'

function counting() {
  const base = memoryStorage()
  const reads = new Map<string, number>()
  const storage: TokenStorage = { ...base, get: (key) => (reads.set(key, (reads.get(key) ?? 0) + 1), base.get(key)) }
  return { storage, reads, base }
}
const grant = refreshTokenGrant({ url: 'http://127.0.0.1:9/token', body: 'json' })
const tokens = (n: number) => ({ access_token: `at${n}`, expires_in: 3600, refresh_token: `rt${n}` })

describe('bounded memory', () => {
  it('keeps at most cache.maxKeys token sets; the least recently used are read again from storage', async () => {
    const { storage, reads } = counting()
    let clock = 1_000_000
    const auth = createTokenAuth({ grant, storage, cache: { maxKeys: 100 }, now: () => clock })
    const writer = createTokenAuth({ grant, storage })
    for (let i = 0; i < 1_000; i++) await writer.setTokens(tokens(i), { key: `user-${i}` })
    for (let i = 0; i < 1_000; i++) expect(await auth.getAccessToken({ key: `user-${i}` })).toBe(`at${i}`)
    expect(reads.get('user-999')).toBe(1)
    expect(reads.get('user-0')).toBe(1)
    clock += 1 // well inside the TTL
    expect(await auth.getAccessToken({ key: 'user-999' })).toBe('at999') // recent: from memory
    expect(reads.get('user-999')).toBe(1)
    expect(await auth.getAccessToken({ key: 'user-0' })).toBe('at0') // dropped long ago: read again
    expect(reads.get('user-0')).toBe(2)
    let fromMemory = 0
    for (let i = 0; i < 1_000; i++) {
      const before = reads.get(`user-${i}`)
      await auth.getAccessToken({ key: `user-${i}` })
      if (reads.get(`user-${i}`) === before) fromMemory++
    }
    expect(fromMemory).toBeLessThanOrEqual(100)
  })

  it('a token set deleted in storage stops being served once cache.ttl has passed, even without watch()', async () => {
    const { storage, base } = counting()
    let clock = 1_000_000
    const auth = createTokenAuth({ grant, storage, cache: { ttl: 5_000 }, now: () => clock })
    await auth.setTokens(tokens(1))
    await base.delete('default') // another process logged out; this storage cannot announce it
    expect(await auth.getAccessToken()).toBe('at1') // inside the TTL: still served from memory
    clock += 5_000
    expect((await rejection(auth.getAccessToken())).code).toBe('ERR_TOKEN_MISSING')
  })

  it('a token set holding a rotated refresh token that storage refused is never dropped', async () => {
    const base = memoryStorage()
    let refuse = false
    const storage: TokenStorage = { ...base, compareAndSet: (...args) => (refuse ? Promise.reject(new Error('down')) : base.compareAndSet!(...args)) }
    let n = 0
    const presented: (string | undefined)[] = []
    const rotating = {
      name: 'rotating',
      url: 'http://127.0.0.1:9/token',
      rotates: true,
      request: async (current: { refreshToken?: string } | undefined, { now }: { now: () => number }) => {
        presented.push(current?.refreshToken)
        return { accessToken: `new${++n}`, refreshToken: `rt-new${n}`, receivedAt: now(), expiresAt: now() + 3_600_000 }
      },
    }
    const auth = createTokenAuth({ grant: rotating, storage, cache: { maxKeys: 2 } })
    await auth.setTokens(tokens(0), { key: 'kept' })
    refuse = true
    expect(await auth.getAccessToken({ key: 'kept', forceRefresh: true })).toBe('new1') // saved only in memory
    refuse = false
    for (let i = 0; i < 10; i++) await auth.setTokens(tokens(i), { key: `other-${i}` })
    await auth.getAccessToken({ key: 'kept', forceRefresh: true }) // presents rt-new1, then saves
    expect(presented).toEqual(['rt0', 'rt-new1']) // never the spent rt0 twice
    expect((await base.get('kept'))!.refreshToken).toBe('rt-new2')
  })
})
