// The public `ky-token-refresh/testing` subpath: the storage contract catches broken adapters
// (run through a minimal runner, as node:test or mocha would), and the scripted grant drives an
// engine through rotation, an outage and a dead session.
import { describe, expect, it } from 'vitest'
import { createTokenAuth, memoryStorage, type TokenStorage } from '../src/index.ts'
import { scriptedGrant, testTokenStorage } from '../src/testing/index.ts'
import { rejection } from './helpers.ts'

/** Run the contract with a runner of our own; resolve each case's outcome. */
async function contractOutcomes(storage: () => TokenStorage, claims = { compareAndSet: true, withLock: true }) {
  const cases: { name: string; body: () => Promise<void> }[] = []
  testTokenStorage('under test', storage, claims, { describe: (_name, body) => body(), it: (name, body) => void cases.push({ name, body }) })
  const outcomes: Record<string, string> = {}
  for (const { name, body } of cases) outcomes[name] = await body().then(() => 'pass', (error: Error) => error.message)
  return outcomes
}

describe('ky-token-refresh/testing', () => {
  it('the contract passes a correct adapter with any runner', async () => {
    const outcomes = await contractOutcomes(memoryStorage)
    expect(Object.values(outcomes)).toEqual(Array(8).fill('pass'))
  })

  it('the contract fails a compare-and-set that always writes, a shared-object get, and a lock that does not exclude', async () => {
    const casAlwaysWrites = () => {
      const base = memoryStorage()
      return { ...base, compareAndSet: async (key: string, _rev: string | undefined, next: any) => (await base.set(key, next), true) }
    }
    const map = new Map<string, any>()
    const sharing = () => ({ ...memoryStorage(), get: async (key: string) => map.get(key), set: async (key: string, value: any) => void map.set(key, value) })
    const noLock = () => ({ ...memoryStorage(), withLock: <T>(_key: string, fn: () => Promise<T>) => fn() })
    const unconditionalDelete = () => {
      const base = memoryStorage()
      return { ...base, delete: (key: string) => base.delete(key) }
    }
    expect((await contractOutcomes(unconditionalDelete))['delete with an expected revision removes only that revision']).toMatch(/must not remove another revision/)
    expect((await contractOutcomes(casAlwaysWrites))['compareAndSet writes only over the expected revision']).toMatch(/must refuse/)
    expect((await contractOutcomes(sharing))['returns copies: mutating a read value does not change what is stored']).toMatch(/must copy/)
    expect((await contractOutcomes(noLock))['withLock: holders for one key never overlap; other keys are not blocked']).toMatch(/must not overlap/)
    expect((await contractOutcomes(memoryStorage, { compareAndSet: false, withLock: true }))['has a name and flags']).toMatch(/compareAndSet must be absent/)
  })

  it('scriptedGrant: rotation, an outage, then a dead session, with every refresh token it was given', async () => {
    const { grant, calls, issued } = scriptedGrant([{ tokens: {} }, { error: 'ERR_TOKEN_ENDPOINT' }, { error: 'ERR_SESSION_ENDED' }])
    const auth = createTokenAuth({ grant, origins: ['https://api.example.test'] })
    await auth.setTokens({ access_token: 'at-0', refresh_token: 'rt-0', expires_in: 3600 })
    expect(await auth.getAccessToken({ forceRefresh: true })).toBe('at-1')
    expect((await rejection(auth.getAccessToken({ forceRefresh: true }))).code).toBe('ERR_TOKEN_ENDPOINT')
    expect((await rejection(auth.getAccessToken({ forceRefresh: true }))).code).toBe('ERR_SESSION_ENDED')
    expect(calls).toEqual([{ refreshToken: 'rt-0' }, { refreshToken: 'rt-1' }, { refreshToken: 'rt-1' }])
    expect(issued).toEqual(['at-1'])
    expect(await auth.storage.get('default')).toBeUndefined()
  })
})
