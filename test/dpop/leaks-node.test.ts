// The DPoP header is a credential like Authorization: stripped when a redirect leaves the
// allow-list, given a fresh proof for each hop that stays on it, and redacted on what errors carry;
// the access token inside `Authorization: DPoP …` appears in no form a user may log. Node-only:
// here the library follows redirects itself (browsers follow them before any code runs).
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { createTokenAuth, refreshTokenGrant, staticToken } from '../../src/index.ts'
import { dpop, generateDPoPKey } from '../../src/dpop/index.ts'
import { issuedSecret } from '../fixtures/secrets.ts'
import { reachableStrings } from '../leaks/scan.ts'
import { MODES, rejection, wire } from '../helpers.ts'

type Handler = (url: string, headers: IncomingHttpHeaders) => { status: number; headers?: Record<string, string>; body?: string }

async function server(handler: Handler) {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = []
  const http = createServer((req, res) => {
    req.resume()
    seen.push({ url: req.url!, headers: req.headers })
    const { status, headers = {}, body = '{}' } = handler(req.url!, req.headers)
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body)
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  return { origin, seen, close: () => new Promise<void>((resolve) => (http.closeAllConnections(), http.close(() => resolve()))) }
}

const logged = (error: unknown) => [inspect(error), inspect(error, { depth: Infinity, showHidden: true }), String(error), JSON.stringify(error) ?? '', ...reachableStrings(error).map((found) => found.value)].join('\n')
const payload = (proof: string) => JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString())
const TOKEN = 'dpop-bound-access-token-0123456789'

for (const mode of MODES) {
  describe(`DPoP credentials stay on their origins and out of errors (auth.${mode})`, () => {
    it('a 500 that echoes the token: the error shows "DPoP [redacted]" and a redacted proof, and no token anywhere', async () => {
      issuedSecret(TOKEN)
      const api = await server((_url, headers) => ({ status: 500, body: JSON.stringify({ echoed: headers.authorization, proof: headers.dpop }) }))
      try {
        const auth = createTokenAuth({ grant: staticToken(TOKEN), origins: [api.origin], sender: dpop({ key: generateDPoPKey() }) })
        const error = await rejection(wire(auth, mode, { retry: 0 }).get(`${api.origin}/items`))
        expect(api.seen[0]!.headers.authorization).toBe(`DPoP ${TOKEN}`)
        const text = logged(error)
        expect(text).not.toContain(TOKEN)
        expect(text).toMatch(/DPoP \[redacted\]/)
        expect(error.request.headers.get('dpop')).toBe('[redacted]')
      } finally {
        await api.close()
      }
    })

    for (const status of [302, 307, 308]) {
      it(`a ${status} to another origin carries neither Authorization nor DPoP there; a hop that stays gets a fresh proof for its own URL`, async () => {
        const evil = await server(() => ({ status: 401, headers: { 'www-authenticate': 'DPoP error="invalid_token"' } }))
        const api = await server((url) => (url === '/final' ? { status: 200 } : url === '/away' ? { status, headers: { location: `${evil.origin}/steal` } } : { status, headers: { location: '/final' } }))
        try {
          const sender = dpop({ key: generateDPoPKey() })
          const auth = createTokenAuth({ grant: refreshTokenGrant({ url: `${api.origin}/token` }), origins: [api.origin], sender, fetch: async () => new Response('{}', { status: 500 }) })
          await auth.setTokens({ access_token: TOKEN, token_type: 'DPoP', expires_in: 300 })
          const ky = wire(auth, mode, { retry: 0 })
          // Stays on the allow-list: two proofs, each for its own URL.
          await ky.post(`${api.origin}/start`, { json: { a: 1 } })
          const [first, second] = api.seen.map((request) => payload(request.headers.dpop as string))
          expect([first.htu, second.htu]).toEqual([`${api.origin}/start`, `${api.origin}/final`])
          expect(first.jti).not.toBe(second.jti)
          // Leaves it: nothing reaches the other origin, and its 401 refreshes nothing.
          const events: unknown[] = []
          auth.on('withheld', (event) => events.push(event))
          const error = await rejection(ky.get(`${api.origin}/away`))
          expect(evil.seen).toHaveLength(1)
          expect(evil.seen[0]!.headers.authorization).toBeUndefined()
          expect(evil.seen[0]!.headers.dpop).toBeUndefined()
          expect(error.message).toMatch(/the request was redirected: http:\/\/127\.0\.0\.1:\d+ is not an allowed origin/)
          expect(events).toEqual([{ url: `${evil.origin}/steal`, status: 401, reason: 'redirect' }])
          expect(logged(error)).not.toContain(TOKEN)
        } finally {
          await api.close()
          await evil.close()
        }
      })
    }
  })
}
