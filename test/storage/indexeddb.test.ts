import 'fake-indexeddb/auto'
import ky from 'ky'
import { describe, expect, it } from 'vitest'
import { createTokenAuth, refreshTokenGrant, type TokenStorage } from '../../src/index.ts'
import { indexedDBStorage } from '../../src/storage/indexeddb.ts'
import { fixture } from '../helpers.ts'
import { testTokenStorage } from './contract.ts'

let n = 0
testTokenStorage('indexedDBStorage() on fake-indexeddb', () => indexedDBStorage({ dbName: `contract-${n++}` }), { compareAndSet: true, withLock: true })

/** Count the adapter reads the engine makes. */
function counted(storage: TokenStorage) {
  const counter = { reads: 0 }
  return { counter, storage: { ...storage, get: (key: string) => (counter.reads++, storage.get(key)) } as TokenStorage }
}

describe('indexedDBStorage() with the engine', () => {
  it('hot path: a valid cached token costs zero IndexedDB reads per request', async () => {
    const server = await fixture('stemp')
    const { counter, storage } = counted(indexedDBStorage({ dbName: `hot-${n++}` }))
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage })
    await auth.setTokens(server.signIn() as any)
    const api = ky.create({ baseUrl: server.url('/api/v1/'), hooks: auth.hooks })
    await Promise.all(Array.from({ length: 100 }, () => api.get('passes')))
    for (let i = 0; i < 100; i++) await api.get('passes')
    expect(counter.reads).toBe(0) // setTokens primed the in-memory copy
    expect(server.counts).toMatchObject({ api: 200, token: 0 })
  })

  it('a write in one "tab" invalidates the other tab\'s copy (BroadcastChannel), and logout reaches it', async () => {
    const server = await fixture('stemp')
    const dbName = `tabs-${n++}`
    const grant = refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' })
    const tabA = createTokenAuth({ grant, storage: indexedDBStorage({ dbName }) })
    const tabB = createTokenAuth({ grant, storage: indexedDBStorage({ dbName }) })
    const remote: string[] = []
    tabB.on('tokens', ({ cause }) => remote.push(cause))
    await tabA.setTokens(server.signIn() as any)
    await new Promise((resolve) => setTimeout(resolve, 50)) // A's sign-in notice reaches B
    const first = await tabB.getAccessToken() // B reads and keeps a copy
    await tabA.getAccessToken({ forceRefresh: true })
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(remote).toContain('remote')
    expect(await tabB.getAccessToken()).not.toBe(first)
    expect(await tabB.getAccessToken()).toBe(await tabA.getAccessToken())
    await tabA.logout()
    await new Promise((resolve) => setTimeout(resolve, 50))
    await expect(tabB.getAccessToken()).rejects.toMatchObject({ code: 'ERR_TOKEN_MISSING' })
    expect(server.counts).toMatchObject({ token: 1, reuse: 0 })
  })
})
