// One BFF node of the DPoP fleet scenario: its own process, its own engine, the shared Redis and
// the DPoP key from configuration (the same for every node). Imports the built package by name,
// as a deployed server would.
import ky from 'ky'
import { createClient } from 'redis'
import { createTokenAuth, isTokenError, refreshTokenGrant } from 'ky-token-refresh'
import { dpop } from 'ky-token-refresh/dpop'
import { redisStorage } from 'ky-token-refresh/storage/redis'

const [tokenUrl, apiOrigin, redisUrl, count, startAt, prefix] = process.argv.slice(2)
const client = await createClient({ url: redisUrl }).connect()
const auth = createTokenAuth({
  grant: refreshTokenGrant({ url: tokenUrl, clientId: 'spa' }),
  storage: redisStorage({ client, prefix }),
  origins: [apiOrigin],
  sender: dpop({ key: JSON.parse(process.env.DPOP_KEY) }),
})
const api = ky.create({ prefix: apiOrigin, hooks: auth.hooks })
let refreshes = 0
auth.on('refresh', () => refreshes++)
await auth.getAccessToken() // read the shared session (and cache it) before the barrier
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAt) - Date.now())))
const results = await Promise.allSettled(Array.from({ length: Number(count) }, () => api.get('api/items').json()))
const codes = results.map((result) => (result.status === 'fulfilled' ? 'ok' : isTokenError(result.reason) ? result.reason.code : String(result.reason)))
console.log(JSON.stringify({ ok: codes.filter((code) => code === 'ok').length, codes: [...new Set(codes)], refreshes }))
await client.quit()
