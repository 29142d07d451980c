// Runs test/runtime/deno/scenario.ts under real Deno (the `deno` npm package ships the binary).
import { execFile } from 'node:child_process'
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
