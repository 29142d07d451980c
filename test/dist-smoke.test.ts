// Imports the built package by its name, through package.json "exports", as a user would.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { fixture } from './helpers.ts'

const run = promisify(execFile)

describe('built package', () => {
  it('exists (npm test builds it before running vitest)', () => {
    expect(existsSync('dist/index.js')).toBe(true)
    expect(existsSync('dist/index.d.ts')).toBe(true)
  })

  it('every subpath in package.json "exports" resolves, with its types, and exports what the README names', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, { types: string; default: string } | string> }
    const expected: Record<string, string[]> = {
      '.': ['createTokenAuth', 'refreshTokenGrant', 'clientCredentialsGrant', 'jsonLoginGrant', 'staticToken', 'memoryStorage', 'TokenError', 'isTokenError', 'readTokenResponse'],
      './storage/memory': ['memoryStorage'],
      './storage/indexeddb': ['indexedDBStorage'],
      './storage/redis': ['redisStorage'],
      './storage/cloudflare-kv': ['cloudflareKVStorage'],
      './storage/durable-object': ['durableObjectStorage', 'TokenCoordinator'],
      './storage/deno-kv': ['denoKVStorage'],
      './dpop': ['dpop', 'generateDPoPKey', 'browserDPoPKey', 'deleteBrowserDPoPKey', 'privateKeyJwt'],
      './testing': ['testTokenStorage', 'scriptedGrant'],
    }
    expect(Object.keys(pkg.exports).filter((key) => key !== './package.json').sort()).toEqual(Object.keys(expected).sort())
    for (const [subpath, names] of Object.entries(expected)) {
      const entry = pkg.exports[subpath] as { types: string; default: string }
      expect(existsSync(entry.types)).toBe(true)
      const module = await import(`ky-token-refresh${subpath.slice(1)}`)
      for (const name of names) expect(typeof module[name]).toBe('function')
    }
  })

  it('imports by package name in a plain Node process and refreshes a token', async () => {
    const server = await fixture('stemp')
    const session = server.signIn()
    const script = `
      import ky from 'ky'
      import { createTokenAuth, refreshTokenGrant, isTokenError } from 'ky-token-refresh'
      import { memoryStorage } from 'ky-token-refresh/storage/memory'
      const auth = createTokenAuth({ grant: refreshTokenGrant({ url: '${server.url('/api/v1/apps/oauth2/refresh')}', body: 'json' }), storage: memoryStorage() })
      await auth.setTokens(${JSON.stringify(session)})
      const api = ky.create({ baseUrl: '${server.url('/api/v1/')}', hooks: auth.hooks })
      const first = await api.get('passes').json()
      await auth.getAccessToken({ forceRefresh: true })
      const second = await api.get('passes').json()
      console.log(JSON.stringify({ first: first.ok, second: second.ok, guard: typeof isTokenError }))
    `
    // A child process (async: this process serves the fixture): the import must resolve through
    // the package's own name and its package.json "exports" (Node's self-reference).
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    expect(JSON.parse(stdout.trim())).toEqual({ first: true, second: true, guard: 'function' })
    expect(server.counts).toMatchObject({ token: 1, api: 2 })
  })
})
