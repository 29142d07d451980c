// The hot path over real loopback HTTP: bare ky vs ky + our hooks against a node:http server.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import ky from 'ky'
import { createTokenAuth, refreshTokenGrant } from 'ky-token-refresh'
import { nativeFetch } from './world.ts'

export async function loopback(quick: boolean) {
  const token = 'loopback-token'
  const server = createServer((req, res) => {
    const ok = req.headers.authorization === `Bearer ${token}`
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' })
    res.end(ok ? '{"ok":true}' : '{"error":"unauthorized"}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const auth = createTokenAuth({ grant: refreshTokenGrant({ url: `${origin}/token` }), fetch: nativeFetch })
  await auth.setTokens({ access_token: token, expires_in: 3600, refresh_token: 'rt' })
  const clients = {
    ky: ky.create({ baseUrl: `${origin}/`, fetch: nativeFetch, headers: { authorization: `Bearer ${token}` } }),
    'ky + ky-token-refresh': ky.create({ baseUrl: `${origin}/`, fetch: nativeFetch, hooks: auth.hooks }),
  }
  const requests = quick ? 1_000 : 4_000
  const concurrency = 16
  const samples: Record<string, number[]> = { ky: [], 'ky + ky-token-refresh': [] }
  for (let repeat = 0; repeat < (quick ? 3 : 7); repeat++) {
    for (const [name, client] of repeat % 2 ? Object.entries(clients).reverse() : Object.entries(clients)) {
      const started = performance.now()
      let next = 0
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next++ < requests) await client.get('items').json()
      }))
      samples[name]!.push(performance.now() - started)
    }
  }
  server.close()
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  return Object.entries(samples).map(([client, values]) => ({ client, requests, concurrency, ms: Math.round(median(values)), '× bare ky': (median(values) / median(samples.ky!)).toFixed(3) }))
}
