// Redis: the storage contract on a real redis-server, then four Node processes sharing one
// session at expiry, against the stemp fixture with strict rotation and reuse detection.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenAuth, refreshTokenGrant, type Grant, type StoredTokens } from '../../src/index.ts'
import { redisStorage } from '../../src/storage/redis.ts'
import { startRedis, type RedisServer } from '../helpers/redis-server.ts'
import { fixture } from '../helpers.ts'
import { testTokenStorage } from './contract.ts'

const run = promisify(execFile)
let redis: RedisServer
let client: RedisClientType
let n = 0

beforeAll(async () => {
  redis = await startRedis()
  client = createClient({ url: redis.url })
  await client.connect()
})
afterAll(async () => {
  await client?.quit()
  await redis?.stop()
})

testTokenStorage('redisStorage() on redis-server', () => redisStorage({ client, prefix: `contract-${n++}:` }), { compareAndSet: true, withLock: true })

/** Start `processes` Node processes that each fire `count` requests at the same instant. */
async function fleet(apiOrigin: string, prefix: string, processes: number, count: number, lockTtl = 10_000) {
  const startAt = Date.now() + 2_500 // every process is connected and primed by then
  const outputs = await Promise.all(
    Array.from({ length: processes }, () =>
      run(process.execPath, ['test/runtime/node/redis-node.mjs', apiOrigin, redis.url, String(count), String(startAt), String(lockTtl), prefix], { encoding: 'utf8' }),
    ),
  )
  return outputs.map(({ stdout }) => JSON.parse(stdout.trim()) as { ok: number; codes: string[]; refreshes: number })
}

describe('a fleet of Node processes on one Redis', () => {
  it('4 processes × 25 requests at expiry: exactly 1 refresh per generation, 0 reuse detections', async () => {
    const server = await fixture('stemp')
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage: redisStorage({ client, prefix: 'fleet:' }) })
    await auth.setTokens(server.signIn() as any)
    for (let generation = 1; generation <= 2; generation++) {
      server.expireAccessTokens()
      const nodes = await fleet(server.origin, 'fleet:', 4, 25)
      expect(nodes.map((node) => node.ok)).toEqual([25, 25, 25, 25])
      expect(nodes.reduce((sum, node) => sum + node.refreshes, 0)).toBe(1)
      expect(server.counts).toMatchObject({ token: generation, reuse: 0, concurrentRefresh: 0 })
    }
  }, 60_000)

  it('a token endpoint slower than the lock lease: no second refresh, no stale overwrite, 0 reuse', async () => {
    const server = await fixture('stemp', { tokenDelay: 1_500 })
    const storage = redisStorage({ client, prefix: 'slow:' })
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage })
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    const nodes = await fleet(server.origin, 'slow:', 4, 10, 300) // lease 300 ms, endpoint 1.5 s
    expect(nodes.map((node) => node.ok)).toEqual([10, 10, 10, 10])
    expect(server.counts).toMatchObject({ token: 1, reuse: 0, concurrentRefresh: 0 })
    // The lease was extended while the holder waited; the stored refresh token is the rotated one.
    expect((await storage.get('default'))!.rev).toBeTypeOf('string')
  }, 60_000)

  it('fencing: a holder that lost its lock cannot overwrite newer tokens; it adopts them', async () => {
    const storage = redisStorage({ client, prefix: `fence-${n++}:` })
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const slowGrant: Grant = {
      name: 'slow',
      url: 'https://auth.example.test/token',
      async request(_current, { now }) {
        await gate // stalls past its lease
        return { accessToken: 'from-the-stalled-holder', refreshToken: 'rt-stale', receivedAt: now(), expiresAt: now() + 60_000 }
      },
    }
    const auth = createTokenAuth({ grant: slowGrant, storage })
    await auth.setTokens({ accessToken: 'old', refreshToken: 'rt-0', receivedAt: Date.now(), expiresAt: Date.now() - 1 })
    const pending = auth.getAccessToken()
    await new Promise((resolve) => setTimeout(resolve, 100))
    // Meanwhile another node (whose lease came after the lapse) refreshed the same session.
    const { sid } = (await storage.get('default'))!
    const newer: StoredTokens = { accessToken: 'from-the-new-holder', refreshToken: 'rt-1', receivedAt: Date.now(), expiresAt: Date.now() + 60_000, rev: 'newer', sid: sid! }
    await storage.set('default', newer)
    release()
    expect(await pending).toBe('from-the-new-holder')
    expect(await storage.get('default')).toEqual(newer)
  })
})
