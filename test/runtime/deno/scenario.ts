// The core scenario under real Deno, on the built package (dist/) exactly as published: inject,
// proactive refresh at expiry, 401 → refresh → retry, rotation, single flight. Deno resolves `ky`
// and `jose` from node_modules through package.json. Prints one JSON line of measurements.
import ky from 'ky'

// Deno's globals, declared here so the Node-side typecheck of test/ accepts this file.
declare const Deno: { args: string[]; version: { deno: string } }
import { createTokenAuth, memoryStorage, refreshTokenGrant } from '../../../dist/index.js'

const [api, sessionJSON] = Deno.args
const session = JSON.parse(sessionJSON!)
let offset = 0
const storage = memoryStorage()
const auth = createTokenAuth({
  grant: refreshTokenGrant({ url: `${api}/api/v1/apps/oauth2/refresh`, body: 'json' }),
  storage,
  now: () => Date.now() + offset,
})
const refreshes: boolean[] = []
auth.on('refresh', ({ rotated }) => refreshes.push(rotated))
const seen: (string | null)[] = []
const client = ky.create({ baseUrl: `${api}/api/v1/`, hooks: auth.hooks }).extend({
  hooks: { beforeRequest: [({ request }) => void seen.push(request.headers.get('authorization'))] },
})

await auth.setTokens(session)
const rt0 = (await storage.get('default'))!.refreshToken
await client.get('passes').json()
const injected = seen[0] === `Bearer ${session.access_token}`

// Proactive: jump past expiry, 100 concurrent requests → one shared refresh.
offset = 1_800_000
const proactive = await Promise.all(Array.from({ length: 100 }, () => client.get('passes').json<{ ok: boolean }>()))
const rt1 = (await storage.get('default'))!.refreshToken

// Reactive: the server expires every token early; 50 concurrent requests get a 401 each and
// share one refresh, then each is replayed once.
await fetch(`${api}/__fixture/expire`, { method: 'POST' })
const reactive = await Promise.all(Array.from({ length: 50 }, () => client.post('passes', { json: { n: 1 } }).json<{ ok: boolean }>()))
const rt2 = (await storage.get('default'))!.refreshToken

console.log(JSON.stringify({
  runtime: `deno ${Deno.version.deno}`,
  injected,
  proactiveOk: proactive.every((response) => response.ok),
  reactiveOk: reactive.every((response) => response.ok),
  rotated: rt1 !== rt0 && rt2 !== rt1 && typeof rt2 === 'string',
  refreshes: refreshes.length,
}))
