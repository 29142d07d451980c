// The runnable BFF example, started as a user would (node examples/bff/server.ts), on a real
// redis-server: the browser side sees a session cookie and data, never a token.
import { spawn, type ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRedis, type RedisServer } from '../../helpers/redis-server.ts'

let redis: RedisServer
let bff: ChildProcess
let origin: string

beforeAll(async () => {
  redis = await startRedis()
  bff = spawn(process.execPath, ['examples/bff/server.ts'], { env: { ...process.env, PORT: '0', REDIS_URL: redis.url }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  bff.stderr!.on('data', (chunk) => (stderr += chunk))
  origin = await new Promise<string>((resolve, reject) => {
    let out = ''
    bff.stdout!.on('data', (chunk) => {
      out += chunk
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (match) resolve(match[1]!)
    })
    bff.once('exit', (code) => reject(new Error(`BFF exited with ${code}: ${stderr}`)))
  })
}, 30_000)

afterAll(async () => {
  bff?.kill()
  await redis?.stop()
})

describe('examples/bff', () => {
  it('maps an HttpOnly session cookie to a token set in Redis; no token reaches the browser', async () => {
    const login = await fetch(`${origin}/login`, { method: 'POST' })
    const setCookie = login.headers.get('set-cookie')!
    expect(setCookie).toMatch(/^sid=[a-f0-9]{32}; HttpOnly; SameSite=Lax; Path=\//)
    expect(setCookie).not.toContain('Secure') // only in production
    const sid = setCookie.split(';')[0]!
    const loginBody = await login.text()
    const passes = await fetch(`${origin}/api/passes`, { headers: { cookie: sid } })
    const text = await passes.text()
    expect(passes.status).toBe(200)
    expect(JSON.parse(text)).toMatchObject({ ok: true, path: '/api/v1/passes' })
    for (const body of [loginBody, text]) expect(body).not.toMatch(/eyJ|srt_|access_token|refresh_token/)
    expect((await fetch(`${origin}/api/passes`)).status).toBe(401) // no cookie, no data
    await fetch(`${origin}/logout`, { method: 'POST', headers: { cookie: sid } })
    const after = await fetch(`${origin}/api/passes`, { headers: { cookie: sid } })
    expect(after.status).toBe(401)
    expect(await after.json()).toEqual({ error: 'ERR_TOKEN_MISSING' })
  })
})
