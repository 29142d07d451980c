// One BFF node of the fleet scenario: its own process, its own engine, the shared Redis.
// Imports the built package by name, as a deployed server would.
import ky from 'ky'
import { createClient } from 'redis'
import { createTokenAuth, isTokenError, refreshTokenGrant } from 'ky-token-refresh'
import { redisStorage } from 'ky-token-refresh/storage/redis'

const [apiOrigin, redisUrl, count, startAt, lockTtl, prefix] = process.argv.slice(2)
const client = await createClient({ url: redisUrl }).connect()
const auth = createTokenAuth({
  grant: refreshTokenGrant({ url: `${apiOrigin}/api/v1/apps/oauth2/refresh`, body: 'json' }),
  storage: redisStorage({ client, lockTtl: Number(lockTtl), prefix }),
})
const api = ky.create({ baseUrl: `${apiOrigin}/api/v1/`, hooks: auth.hooks })
let refreshes = 0
auth.on('refresh', () => refreshes++)
await auth.getAccessToken() // read the shared session (and cache it) before the barrier
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAt) - Date.now())))
const results = await Promise.allSettled(Array.from({ length: Number(count) }, () => api.get('passes').json()))
const codes = results.map((result) => (result.status === 'fulfilled' ? 'ok' : isTokenError(result.reason) ? result.reason.code : String(result.reason)))
console.log(JSON.stringify({ ok: codes.filter((code) => code === 'ok').length, codes: [...new Set(codes)], refreshes }))
await client.quit()
