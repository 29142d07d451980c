// The leak scenario's servers, real node:http on 127.0.0.1, each its own origin:
//  - api:  the allow-listed API and its OAuth token endpoint (client_secret_basic, strict
//          refresh-token rotation with reuse detection), redirects on demand, fault injection;
//  - evil: a second origin that records everything it receives and lets any CORS request through
//          (it echoes whatever a preflight asks for), to see what a browser would send it;
//  - app:  (optional) serves a page and a script, for Chromium.
// Every request to every server is logged with the scenario step the runtime announced last.
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Hit {
  server: 'api' | 'evil' | 'app'
  step: string
  method: string
  path: string
  search: string
  headers: Record<string, string>
  body: string
  status: number
}

/** Faults a scenario can ask for by name (`POST /__control/fault?name=…&times=…`). */
export type FaultName =
  | 'api-401-echo' // 401 whose body quotes the access token presented
  | 'token-500-echo' // 500 whose body quotes the refresh token presented and the client secret
  | 'token-html' // 200 text/html
  | 'token-invalid-rotate' // rotates, then answers 200 JSON without access_token but with the new refresh_token
  | 'token-302' // 302 to the evil origin
  | 'token-307' // 307 to the evil origin (a POST with its body would follow)
  | 'token-reset' // connection reset
  | 'token-invalid-grant-echo' // 400 invalid_grant quoting the refresh token presented

export interface LeakServers {
  api: string
  evil: string
  app: string | undefined
  clientId: string
  clientSecret: string
  tenant: string
  /** A fresh token response (a sign-in), with a refresh token. */
  signIn(): Record<string, unknown>
  /** Every value that must never leak, labelled: each access and refresh token issued, the client secret, its Basic header. */
  secrets(): Record<string, string>
  log: Hit[]
  hits(server: Hit['server'], step?: string): Hit[]
  /** Token-endpoint calls (in `step`, or all). */
  tokenCalls(step?: string): number
  reuse(): number
  close(): Promise<void>
}

const API_CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE',
  'access-control-allow-headers': 'authorization, content-type, x-tenant, accept',
  'access-control-expose-headers': 'www-authenticate, location',
}

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; origin: string }> {
  const server = createServer(handler)
  server.keepAliveTimeout = 1000
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })))
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })

const flat = (headers: IncomingMessage['headers']) => Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : String(value)]))

/** Start api + evil (+ app when `page` is given: `{ html, script }` served at `/` and `/scenario.js`). */
export async function startLeakServers(page?: { html: string; script: string }): Promise<LeakServers> {
  const clientId = 'leak-client'
  const clientSecret = `cs_${randomBytes(12).toString('hex')}`
  const tenant = 'acme'
  const log: Hit[] = []
  let step = 'setup'
  const accessTokens = new Map<string, { exp: number }>()
  const refreshTokens = new Map<string, { used: boolean }>()
  const issued: string[] = []
  const faults: Record<'api' | 'token', FaultName[]> = { api: [], token: [] }
  let reuse = 0
  let evilOrigin = ''

  const record = (server: Hit['server'], req: IncomingMessage, body: string, res: ServerResponse) => {
    const url = new URL(req.url!, 'http://x')
    const hit: Hit = { server, step, method: req.method!, path: url.pathname, search: url.search, headers: flat(req.headers), body, status: 0 }
    log.push(hit)
    res.on('finish', () => (hit.status = res.statusCode))
    res.on('close', () => (hit.status ||= -1))
    return url
  }
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { ...API_CORS, 'content-type': 'application/json', ...headers })
    res.end(JSON.stringify(body))
  }
  const issue = () => {
    const accessToken = `at_${randomBytes(16).toString('hex')}`
    const refreshToken = `rt_${randomBytes(16).toString('hex')}`
    accessTokens.set(accessToken, { exp: Date.now() + 3_600_000 })
    refreshTokens.set(refreshToken, { used: false })
    issued.push(accessToken, refreshToken)
    return { access_token: accessToken, token_type: 'Bearer', expires_in: 3600, refresh_token: refreshToken, scope: 'data:read' }
  }
  const basic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`

  const tokenEndpoint = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const form = new URLSearchParams(body)
    const presented = form.get('refresh_token') ?? ''
    const fault = faults.token.shift()
    switch (fault) {
      case 'token-500-echo':
        return json(res, 500, { error: 'server_error', error_description: `could not refresh ${presented} for client ${clientSecret}` })
      case 'token-html':
        res.writeHead(200, { ...API_CORS, 'content-type': 'text/html' })
        return res.end(`<!doctype html><p>Sign in again (${presented})</p>`)
      case 'token-302':
      case 'token-307':
        res.writeHead(fault === 'token-302' ? 302 : 307, { ...API_CORS, location: `${evilOrigin}/collect?step=${step}` })
        return res.end()
      case 'token-reset':
        return req.socket.destroy()
      case 'token-invalid-grant-echo':
        return json(res, 400, { error: 'invalid_grant', error_description: `refresh token ${presented} is revoked` })
    }
    if (req.headers.authorization !== basic) return json(res, 401, { error: 'invalid_client' })
    if (form.get('grant_type') !== 'refresh_token') return json(res, 400, { error: 'unsupported_grant_type' })
    const record = refreshTokens.get(presented)
    if (!record) return json(res, 400, { error: 'invalid_grant' })
    if (record.used) {
      reuse++
      return json(res, 400, { error: 'invalid_grant', error_description: 'reused' })
    }
    record.used = true
    const out = issue()
    if (fault === 'token-invalid-rotate') return json(res, 200, { refresh_token: out.refresh_token, token_type: 'Bearer' })
    return json(res, 200, out)
  }

  const apiHandler = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req)
    const url = record('api', req, body, res)
    if (req.method === 'OPTIONS') {
      res.writeHead(204, API_CORS)
      return res.end()
    }
    if (url.pathname.startsWith('/__control/')) {
      const what = url.pathname.slice('/__control/'.length)
      if (what === 'mark') step = url.searchParams.get('step') ?? step
      if (what === 'expire') for (const record of accessTokens.values()) record.exp = 0
      if (what === 'fault') {
        const name = url.searchParams.get('name') as FaultName
        for (let i = 0; i < Number(url.searchParams.get('times') ?? 1); i++) faults[name.startsWith('api-') ? 'api' : 'token'].push(name)
      }
      return json(res, 200, { ok: true })
    }
    if (req.method === 'POST' && url.pathname === '/oauth/token') return tokenEndpoint(req, res, body)
    if (url.pathname === '/api/redirect') {
      res.writeHead(Number(url.searchParams.get('status') ?? 302), { ...API_CORS, location: url.searchParams.get('to')! })
      return res.end()
    }
    if (url.pathname.startsWith('/api/')) {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '')
      if (faults.api[0] === 'api-401-echo') {
        faults.api.shift()
        return json(res, 401, { error: 'invalid_token', echoed: token }, { 'www-authenticate': 'Bearer error="invalid_token"' })
      }
      const record = accessTokens.get(token)
      if (!record || record.exp <= Date.now()) return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' })
      if (req.headers['x-tenant'] !== tenant) return json(res, 400, { error: 'tenant_required' })
      if (url.pathname === '/api/forbidden') return json(res, 403, { error: 'insufficient_scope' }, { 'www-authenticate': 'Bearer error="insufficient_scope", scope="data:write"' })
      return json(res, 200, { ok: true })
    }
    return json(res, 404, { error: 'not_found' })
  }

  // The worst-case third party: answers every preflight with whatever was asked for.
  const evilHandler = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req)
    const url = record('evil', req, body, res)
    const cors = {
      'access-control-allow-origin': req.headers.origin ?? '*',
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': String(req.headers['access-control-request-method'] ?? 'GET, POST'),
      'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? '*'),
      'access-control-expose-headers': 'www-authenticate',
    }
    if (url.pathname === '/strict') {
      // CORS that allows reading the response, and no request header beyond the safelisted ones
      res.writeHead(req.method === 'OPTIONS' ? 204 : 200, { 'access-control-allow-origin': '*', 'content-type': 'application/json' })
      return res.end(req.method === 'OPTIONS' ? undefined : JSON.stringify({ evil: true }))
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors)
      return res.end()
    }
    if (url.pathname === '/unauthorized') {
      res.writeHead(401, { ...cors, 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' })
      return res.end(JSON.stringify({ error: 'invalid_token' }))
    }
    res.writeHead(200, { ...cors, 'content-type': 'application/json' })
    res.end(JSON.stringify({ evil: true }))
  }

  const api = await listen((req, res) => void apiHandler(req, res))
  const evil = await listen((req, res) => void evilHandler(req, res))
  evilOrigin = evil.origin
  const app = page
    ? await listen((req, res) => {
        const url = record('app', req, '', res)
        if (url.pathname === '/scenario.js') {
          res.writeHead(200, { 'content-type': 'text/javascript' })
          return res.end(page.script)
        }
        res.writeHead(url.pathname === '/' ? 200 : 404, { 'content-type': 'text/html' })
        res.end(url.pathname === '/' ? page.html : '')
      })
    : undefined
  const servers = [api, evil, ...(app ? [app] : [])]

  return {
    api: api.origin,
    evil: evil.origin,
    app: app?.origin,
    clientId,
    clientSecret,
    tenant,
    signIn: issue,
    secrets() {
      const secrets: Record<string, string> = { clientSecret, basicAuthorization: basic.slice('Basic '.length) }
      issued.forEach((value, i) => (secrets[`${value.startsWith('at_') ? 'accessToken' : 'refreshToken'}#${Math.floor(i / 2)}`] = value))
      return secrets
    },
    log,
    hits: (server, inStep) => log.filter((hit) => hit.server === server && (inStep === undefined || hit.step === inStep)),
    tokenCalls: (inStep) => log.filter((hit) => hit.server === 'api' && hit.method === 'POST' && hit.path === '/oauth/token' && (inStep === undefined || hit.step === inStep)).length,
    reuse: () => reuse,
    close: () =>
      Promise.all(
        servers.map(
          ({ server }) =>
            new Promise<void>((resolve) => {
              server.closeAllConnections()
              server.close(() => resolve())
            }),
        ),
      ).then(() => undefined),
  }
}
