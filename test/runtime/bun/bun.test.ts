// Runs test/runtime/bun/scenario.ts under real Bun (the `bun` npm package ships the binary) on the
// built package, against the four API fixtures served from this process.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { fixture } from '../../helpers.ts'
import type { ApiKind } from '../../fixtures/apis.ts'

const run = promisify(execFile)
const PROACTIVE = 100
const REACTIVE = 50

describe('Bun', () => {
  it('runs the core scenario unchanged on the built package, for each of the four APIs', async () => {
    const kinds: ApiKind[] = ['stemp', 'stenn', 'dokstamp', 'starship']
    const servers = Object.fromEntries(await Promise.all(kinds.map(async (kind) => [kind, await fixture(kind)] as const)))
    const targets = Object.fromEntries(kinds.map((kind) => [kind, {
      origin: servers[kind]!.origin,
      credentials: servers[kind]!.credentials,
      ...(kind === 'stemp' && { session: servers[kind]!.signIn() }),
    }]))
    const { stdout } = await run('node_modules/.bin/bun', ['run', 'test/runtime/bun/scenario.ts', String(PROACTIVE), String(REACTIVE), JSON.stringify(targets)], {
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', DO_NOT_TRACK: '1' },
    })
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!)
    expect(result.runtime).toMatch(/^bun 1\./)
    for (const kind of kinds) {
      const server = servers[kind]!
      // stemp starts from a sign-in (no token call); the others fetch their first token on demand.
      // Then exactly one token call per storm: PROACTIVE requests at expiry, REACTIVE 401s.
      expect({ kind, ...result[kind] }).toEqual({
        kind,
        injected: true,
        tokenCalls: [kind === 'stemp' ? 0 : 1, 1, 1],
        ok: [true, true, true],
        refreshes: kind === 'stemp' ? 2 : 3, // every token the engine obtained
        rotated: true,
      })
      // 1 + PROACTIVE + REACTIVE × (401 + replay); no spent refresh token replayed.
      expect({ kind, ...server.counts }).toMatchObject({
        kind,
        token: kind === 'stemp' ? 2 : 3,
        api: 1 + PROACTIVE + 2 * REACTIVE,
        unauthorized: REACTIVE,
        reuse: 0,
        concurrentRefresh: 0,
      })
      expect(server.bodies).toHaveLength(REACTIVE)
      expect(new Set(server.bodies.map((body) => body.text))).toHaveProperty('size', REACTIVE)
    }
  }, 60_000)
})
