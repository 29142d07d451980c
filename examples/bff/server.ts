// A backend-for-frontend: the browser holds only an HttpOnly session cookie; each browser
// session maps to its own token set (key `bff:<session id>`) in Redis, and every Node process of
// the fleet shares them. The browser never sees a token.
//
//   REDIS_URL=redis://127.0.0.1:6379 node examples/bff/server.ts
//
// Without UPSTREAM it starts the stemp mock API in-process, so the demo needs only Redis.
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import ky from 'ky'
import { createClient } from 'redis'
import { createTokenAuth, isTokenError, refreshTokenGrant } from 'ky-token-refresh'
import { redisStorage } from 'ky-token-refresh/storage/redis'
import { startFixture } from '../../test/fixtures/apis.ts'

const production = process.env.NODE_ENV === 'production'
const mock = process.env.UPSTREAM ? undefined : await startFixture('stemp')
const upstream = process.env.UPSTREAM ?? mock!.origin
const redis = await createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }).connect()

const auth = createTokenAuth({
  grant: refreshTokenGrant({ url: `${upstream}/api/v1/apps/oauth2/refresh`, body: 'json' }),
  storage: redisStorage({ client: redis, prefix: 'bff:' }),
})
const stemp = ky.create({ baseUrl: `${upstream}/api/v1/`, hooks: auth.hooks })

const PAGE = `<!doctype html><meta charset="utf-8"><title>BFF demo</title>
<button onclick="fetch('/login',{method:'POST'}).then(()=>out.textContent='signed in')">Sign in</button>
<button onclick="fetch('/api/passes').then(r=>r.text()).then(t=>out.textContent=t)">Load passes</button>
<button onclick="fetch('/logout',{method:'POST'}).then(()=>out.textContent='signed out')">Sign out</button>
<pre id="out"></pre>`

function sessionId(req: IncomingMessage): string | undefined {
  const match = /(?:^|;\s*)sid=([a-f0-9]{32})/.exec(req.headers.cookie ?? '')
  return match?.[1]
}

function cookie(value: string, maxAge: number): string {
  return `sid=${value}; HttpOnly; SameSite=Lax; Path=/; Max-Age=${maxAge}${production ? '; Secure' : ''}`
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}

const server = createServer(async (req, res) => {
  try {
    if (req.method === 'GET' && req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' })
      return res.end(PAGE)
    }
    if (req.method === 'POST' && req.url === '/login') {
      // Stands in for the OAuth callback: exchange the code server-side, keep the tokens here.
      const sid = randomBytes(16).toString('hex')
      const tokens = mock ? mock.signIn() : JSON.parse(process.env.STEMP_TOKENS ?? '{}')
      await auth.setTokens(tokens, { key: `session:${sid}` })
      return send(res, 200, { signedIn: true }, { 'set-cookie': cookie(sid, 2_592_000) })
    }
    const sid = sessionId(req)
    if (req.method === 'POST' && req.url === '/logout') {
      if (sid) await auth.logout({ key: `session:${sid}` })
      return send(res, 200, { signedIn: false }, { 'set-cookie': cookie('', 0) })
    }
    if (req.method === 'GET' && req.url?.startsWith('/api/')) {
      if (!sid) return send(res, 401, { error: 'not signed in' })
      const data = await stemp.get(req.url.slice(5), { context: { authKey: `session:${sid}` } }).json()
      return send(res, 200, data)
    }
    send(res, 404, { error: 'not found' })
  } catch (error) {
    // Only the code reaches the browser: never a token, never an upstream URL with secrets.
    const code = isTokenError(error) ? error.code : 'ERR_UPSTREAM'
    const status = code === 'ERR_SESSION_ENDED' || code === 'ERR_TOKEN_MISSING' ? 401 : 502
    send(res, status, { error: code })
  }
})

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`BFF listening on http://127.0.0.1:${port}`)
})
