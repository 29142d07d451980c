// Runs test/runtime/deno/scenario.ts under real Deno (the `deno` npm package ships the binary).
import { execFile } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { fixture } from '../../helpers.ts'

const run = promisify(execFile)

describe('Deno', () => {
  it('runs the core scenario unchanged on the built package', async () => {
    const server = await fixture('stemp')
    const { stdout } = await run('node_modules/.bin/deno', ['run', `--allow-net=127.0.0.1`, '--allow-read', '--allow-env', 'test/runtime/deno/scenario.ts', server.origin, JSON.stringify(server.signIn())], {
      encoding: 'utf8',
      env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
    })
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!)
    expect(result.runtime).toMatch(/^deno 2\./)
    expect(result).toMatchObject({ injected: true, proactiveOk: true, reactiveOk: true, rotated: true, refreshes: 2 })
    // 1 + 100 proactive + 50 × (401 + replay); one refresh per expiry; no reuse.
    expect(server.counts).toMatchObject({ token: 2, api: 201, unauthorized: 50, reuse: 0 })
    expect(server.bodies).toHaveLength(50)
  }, 60_000)
})

describe('Deno KV (denoKVStorage) across Deno processes', () => {
  const deno = (args: string[]) =>
    run('node_modules/.bin/deno', ['run', '--unstable-kv', '--allow-net=127.0.0.1', '--allow-read', '--allow-write', '--allow-env', 'test/runtime/deno/kv-node.ts', ...args], {
      encoding: 'utf8',
      env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
    }).then(({ stdout }) => JSON.parse(stdout.trim().split('\n').at(-1)!))

  it('keeps the storage contract on real Deno KV (copies, one CAS winner of 20, exclusive lock)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'deno-kv-'))
    expect(await deno(['contract', 'unused', join(dir, 'kv.db')])).toEqual({ absent: true, casFromNothing: true, casWrongRev: false, concurrentWinners: 1, maxHolders: 1, deleted: true })
  }, 60_000)

  it('with watch(), a waiting engine resumes on the lease release (not a poll loop); token writes carry the TTL', async () => {
    const server = await fixture('stemp', { tokenDelay: 700 })
    const dir = await mkdtemp(join(tmpdir(), 'deno-kv-'))
    const result = await deno(['events', server.origin, join(dir, 'kv.db'), JSON.stringify(server.signIn())])
    // A lease attempt reads the lock entry once; release and re-acquire: 2 attempts, plus the
    // owner check of the release and its heartbeat (polling from 25 ms would make 6 or more).
    expect(result.same).toBe(true)
    expect(result.lockReads).toBeLessThanOrEqual(4)
    expect(result.expiries).toEqual([86_400_000])
    expect(server.counts).toMatchObject({ token: 1, reuse: 0 })
  }, 60_000)

  it('3 Deno processes × 20 requests at expiry on one KV database: exactly 1 refresh per generation, 0 reuse', async () => {
    const server = await fixture('stemp')
    const db = join(await mkdtemp(join(tmpdir(), 'deno-kv-')), 'kv.db')
    await deno(['seed', server.origin, db, JSON.stringify(server.signIn())])
    for (let generation = 1; generation <= 2; generation++) {
      server.expireAccessTokens()
      const startAt = String(Date.now() + 2_000)
      const nodes = await Promise.all([1, 2, 3].map(() => deno(['hammer', server.origin, db, '20', startAt])))
      expect(nodes.map((node) => [node.ok, node.codes])).toEqual([[20, ['ok']], [20, ['ok']], [20, ['ok']]])
      expect(nodes.reduce((sum, node) => sum + node.refreshes, 0)).toBe(1)
      expect(server.counts).toMatchObject({ token: generation, reuse: 0, concurrentRefresh: 0 })
    }
  }, 60_000)
})
