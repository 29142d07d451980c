// A fleet of Node processes sharing one DPoP key from configuration and one Redis: DPoP-bound
// access and refresh tokens (public client, so the refresh token is bound to the key too) are
// refreshed exactly once per expiry across the fleet, against oidc-provider with rotation and the
// jose-verifying resource server. Runs the built package (npm run build first).
import { execFile } from 'node:child_process'
import ky from 'ky'
import { promisify } from 'node:util'
import { exportJWK, generateKeyPair } from 'jose'
import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenAuth, refreshTokenGrant } from '../../src/index.ts'
import { dpop } from '../../src/dpop/index.ts'
import { redisStorage } from '../../src/storage/redis.ts'
import { startRedis, type RedisServer } from '../helpers/redis-server.ts'
import { signIn, startAuthorizationServer, startResourceServer } from './servers.ts'

const run = promisify(execFile)
let redis: RedisServer
let client: RedisClientType

beforeAll(async () => {
  redis = await startRedis()
  client = createClient({ url: redis.url })
  await client.connect()
})
afterAll(async () => {
  await client?.quit()
  await redis?.stop()
})

describe('a DPoP fleet on one Redis', () => {
  it('4 processes × 20 requests after a revocation, one configured key: 1 refresh per generation, 0 reuse, every proof accepted', async () => {
    let issuer = ''
    const rs = await startResourceServer(() => issuer)
    const as = await startAuthorizationServer({ resource: `${rs.origin}/` })
    issuer = as.issuer
    try {
      const { privateKey } = await generateKeyPair('ES256', { extractable: true })
      const key = await exportJWK(privateKey) // what a deployment keeps in its secret store
      const sender = dpop({ key })
      const storage = redisStorage({ client, prefix: 'dpop-fleet:' })
      const auth = createTokenAuth({ grant: refreshTokenGrant({ url: as.tokenUrl, clientId: 'spa' }), storage, origins: [rs.origin], sender })
      await auth.setTokens((await signIn(as.issuer, sender.fetch)) as never)
      await ky.create({ prefix: rs.origin, hooks: auth.hooks }).get('api/warm').json() // the RS has seen the token
      for (let generation = 1; generation <= 2; generation++) {
        const before = { ...as.counts }
        rs.revokeSeenTokens()
        const startAt = Date.now() + 3_000
        const outputs = await Promise.all(
          Array.from({ length: 4 }, () =>
            run(process.execPath, ['test/dpop/fleet-node.mjs', as.tokenUrl, rs.origin, redis.url, '20', String(startAt), 'dpop-fleet:'], { encoding: 'utf8', env: { ...process.env, DPOP_KEY: JSON.stringify(key) } }),
          ),
        )
        const nodes = outputs.map(({ stdout }) => JSON.parse(stdout.trim()) as { ok: number; codes: string[]; refreshes: number })
        expect(nodes.map((node) => [node.ok, node.codes.join()])).toEqual(Array(4).fill([20, 'ok']))
        expect(nodes.reduce((sum, node) => sum + node.refreshes, 0)).toBe(1)
        expect(as.counts.issued - before.issued).toBe(1)
        expect(as.counts.reuse).toBe(0)
      }
      expect(rs.lastJkt).toBe((await sender.info()).jkt)
      expect(as.counts.errors).toEqual([])
    } finally {
      await rs.close()
      await as.close()
    }
  }, 90_000)
})
