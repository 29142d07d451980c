// The leak scan in real Deno: the library (src/, bundled with esbuild) against an allow-listed API
// and an "evil" origin on 127.0.0.1; see test/leaks/.
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { build } from 'esbuild'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { leakChecks, type LeakRun } from '../../leaks/checks.ts'
import type { ScenarioConfig } from '../../leaks/scenario.ts'
import { startLeakServers } from '../../leaks/servers.ts'

const run = promisify(execFile)
let result: LeakRun | undefined
let dir: string | undefined

beforeAll(async () => {
  const servers = await startLeakServers()
  const bundle = await build({ entryPoints: ['test/runtime/deno/leaks-entry.ts'], bundle: true, format: 'esm', platform: 'neutral', conditions: ['deno', 'browser'], mainFields: ['module', 'main'], write: false, logLevel: 'error' })
  dir = await mkdtemp(join(tmpdir(), 'deno-leaks-'))
  const file = join(dir, 'leaks.mjs')
  await writeFile(file, bundle.outputFiles[0]!.text)
  const config: ScenarioConfig = { api: servers.api, evil: servers.evil, clientId: servers.clientId, clientSecret: servers.clientSecret, tenant: servers.tenant, tokens: servers.signIn() }
  try {
    const { stdout } = await run('node_modules/.bin/deno', ['run', '--allow-net=127.0.0.1', '--no-prompt', file, JSON.stringify(config)], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
    })
    result = { servers, report: JSON.parse(stdout.trim().split('\n').at(-1)!) }
  } catch (error) {
    await servers.close()
    throw error
  }
}, 120_000)

afterAll(async () => {
  await result?.servers.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('leak scan in real Deno', () => {
  leakChecks(() => result!, { browser: false })
})

// Runtime behaviour under the library (SECURITY.md cites it): Deno's fetch resends a POST, once, on
// a new connection, when the server closes a reused keep-alive connection after reading the
// request. For a rotating refresh token that is a replay the library did not ask for (and that
// `attempts: 1` cannot turn off).
describe("Deno's own fetch (observed)", () => {
  it('resends a POST whose reused keep-alive connection is closed after the request was read', async () => {
    const seen: string[] = []
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => (body += chunk))
      req.on('end', () => {
        seen.push(`${req.url} ${body}`)
        if (req.url === '/drop') return void req.socket.destroy()
        res.end('ok')
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const script = join(dir!, 'replay.mjs')
    await writeFile(script, `
      await (await fetch('${origin}/warm', { method: 'POST', body: 'a' })).text()
      let outcome = 'resolved'
      try { await fetch('${origin}/drop', { method: 'POST', body: 'refresh_token=rt_1' }) } catch { outcome = 'rejected' }
      console.log(outcome)`)
    try {
      const { stdout } = await run('node_modules/.bin/deno', ['run', '--allow-net=127.0.0.1', '--no-prompt', script], { encoding: 'utf8', env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' } })
      expect(stdout.trim()).toBe('rejected')
      expect(seen).toEqual(['/warm a', '/drop refresh_token=rt_1', '/drop refresh_token=rt_1'])
    } finally {
      server.closeAllConnections()
      server.close()
    }
  }, 60_000)
})
