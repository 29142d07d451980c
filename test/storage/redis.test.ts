// Redis: the storage contract on a real redis-server, then four Node processes sharing one
// session at expiry, against the stemp fixture with strict rotation and reuse detection.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenAuth, refreshTokenGrant, type Grant, type StoredTokens } from '../../src/index.ts'
import { redisStorage } from '../../src/storage/redis.ts'
import { startRedis, type RedisServer } from '../helpers/redis-server.ts'
import { fixture, rejection } from '../helpers.ts'
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
    const server = await fixture("stemp", { tokenDelay: 2_000 })
    const storage = redisStorage({ client, prefix: 'slow:' })
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage })
    await auth.setTokens(server.signIn() as any)
    server.expireAccessTokens()
    const nodes = await fleet(server.origin, "slow:", 4, 10, 500) // lease 500 ms, endpoint 2 s
    expect(nodes.map((node) => [node.ok, node.codes.join()])).toEqual(Array(4).fill([10, "ok"]))
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

describe('Redis with a subscriber: events instead of polling', () => {
  // Every command a client sends, for counting coordination traffic.
  function counted(target: RedisClientType) {
    const commands: string[][] = []
    return { commands, client: { sendCommand: (args: string[]) => (commands.push(args), target.sendCommand(args)) } }
  }
  async function subscriberOf() {
    const subscriber = client.duplicate()
    await subscriber.connect()
    opened.push(subscriber)
    return subscriber
  }
  const opened: RedisClientType[] = []
  afterAll(async () => {
    await Promise.all(opened.map((connection) => connection.quit()))
  })

  it('a waiting process resumes on the commit and adopts without the lease: 2 claims, at most 3 commands', async () => {
    const server = await fixture('stemp', { tokenDelay: 600 })
    const prefix = `events-${n++}:`
    const a = counted(client)
    const b = counted(client)
    const grant = refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' })
    const one = createTokenAuth({ grant, storage: redisStorage({ client: a.client, subscriber: await subscriberOf(), prefix }) })
    const two = createTokenAuth({ grant, storage: redisStorage({ client: b.client, subscriber: await subscriberOf(), prefix }) })
    await one.setTokens(server.signIn() as any)
    await two.getAccessToken() // cached in both
    const order: string[] = []
    one.on('refresh', () => order.push('one committed'))
    b.commands.length = 0
    const first = one.getAccessToken({ forceRefresh: true }).then(() => order.push('one done'))
    await new Promise((resolve) => setTimeout(resolve, 100)) // one holds the lease; the endpoint takes 600 ms
    const stale = (await two.storage.get('default'))!.accessToken
    const second = two.getAccessToken({ forceRefresh: true }).then((token) => (order.push('two done'), token))
    const [, token] = await Promise.all([first, second])
    expect(order.indexOf('one committed')).toBeLessThan(order.indexOf('two done'))
    expect(token).not.toBe(stale) // two adopted the token one committed
    expect(server.counts).toMatchObject({ token: 1, reuse: 0 })
    const claims = b.commands.filter((command) => command[0] === 'EVAL' && String(command[1]).includes('accessToken ~= ARGV[1]'))
    expect(claims).toHaveLength(2) // one answered "held" while one refreshed, one after the commit message: adopt
    expect(b.commands.filter((command) => command[0] === 'SET')).toEqual([]) // it never took the lease
    expect(b.commands.length).toBeLessThanOrEqual(3) // the two claims (and at most one read)
  })

  it('a logout in one process stops the others from serving the token at once (before any cache TTL)', async () => {
    const server = await fixture('stemp')
    const prefix = `logout-${n++}:`
    const grant = refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' })
    const one = createTokenAuth({ grant, storage: redisStorage({ client, subscriber: await subscriberOf(), prefix }), cache: { ttl: 3_600_000 } })
    const two = createTokenAuth({ grant, storage: redisStorage({ client, subscriber: await subscriberOf(), prefix }), cache: { ttl: 3_600_000 } })
    await one.setTokens(server.signIn() as any)
    expect(typeof (await two.getAccessToken())).toBe('string') // two serves it from memory now
    const heard = new Promise<number>((resolve) => two.on('tokens', ({ cause }) => cause === 'remote' && resolve(performance.now())))
    const started = performance.now()
    await one.logout({ revoke: false })
    const latency = (await heard) - started
    expect((await rejection(two.getAccessToken())).code).toBe('ERR_TOKEN_MISSING')
    console.info(`[redis] logout in process 1 → process 2 refuses: ${latency.toFixed(1)} ms`)
  })

  it('a process does not hear its own writes; token keys carry the TTL', async () => {
    const server = await fixture('stemp')
    const prefix = `ttl-${n++}:`
    const storage = redisStorage({ client, subscriber: await subscriberOf(), prefix, ttl: 3_600 })
    const auth = createTokenAuth({ grant: refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' }), storage })
    const remote: string[] = []
    auth.on('tokens', ({ cause }) => cause === 'remote' && remote.push(cause))
    await auth.setTokens(server.signIn() as any)
    await auth.getAccessToken({ forceRefresh: true })
    const ttl = Number(await client.sendCommand(['TTL', `${prefix}tokens:default`]))
    expect(ttl).toBeGreaterThan(3_500)
    expect(ttl).toBeLessThanOrEqual(3_600)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(remote).toEqual([])
  })
})
