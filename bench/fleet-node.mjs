// One process of the fleet benchmark (bench/fleet.ts): its own engine, the built package
// imported by name as a deployed server would, and either memory storage (the single-process
// reference) or the shared Redis (with or without a subscriber connection).
//
// Driven over stdin/stdout, one JSON object per line:
//   → {"ready":true}              connected, session read from storage (or seeded, memory)
//   ← warm                         fire `count` concurrent requests a few times (valid token)
//   → {"warm":true,"latencies":[…]}  (the last round, timed)
//   ← go <epoch ms>                fire `count` requests at that instant (the access token has
//                                  just been expired server-side: every request meets a 401)
//   → {"latencies":[…], …}         per-request latencies and the Redis traffic of the storm
//   ← quit
import { createInterface } from 'node:readline'
import ky from 'ky'
import { createClient } from 'redis'
import { createTokenAuth, isTokenError, memoryStorage, refreshTokenGrant } from 'ky-token-refresh'
import { redisStorage } from 'ky-token-refresh/storage/redis'

const config = JSON.parse(process.argv[2])
const { api: apiOrigin, storage: kind, count } = config
const clock = () => performance.timeOrigin + performance.now() // epoch ms, sub-ms resolution

// Redis traffic, counted where it leaves the process: every command sent on the client
// connection (with the time it was sent and answered), every message the subscriber received.
const traffic = { commands: [], messages: [] }
let counting = false
let subscribed
const connections = []
let storage
if (kind === 'memory') {
  storage = memoryStorage()
} else {
  const client = await createClient({ url: config.redis }).connect()
  connections.push(client)
  const counted = {
    sendCommand(args) {
      if (!counting) return client.sendCommand(args)
      const entry = { command: args[0], nx: args[0] === 'SET' && args.includes('NX'), sent: clock(), answered: 0, reply: null }
      traffic.commands.push(entry)
      return client.sendCommand(args).then((reply) => {
        entry.answered = clock()
        entry.reply = typeof reply === 'string' || typeof reply === 'number' ? reply : reply === null ? null : typeof reply
        return reply
      })
    },
  }
  let subscriber
  if (kind === 'redis-sub') {
    const connection = client.duplicate()
    await connection.connect()
    connections.push(connection)
    subscriber = {
      subscribe: (channel, listener) =>
        (subscribed = connection.subscribe(channel, (message) => {
          if (counting) traffic.messages.push({ at: clock(), kind: message[0] })
          listener(message)
        })),
    }
  }
  storage = redisStorage({ client: counted, ...(subscriber && { subscriber }), prefix: config.prefix })
}

const auth = createTokenAuth({ grant: refreshTokenGrant({ url: `${apiOrigin}/api/v1/apps/oauth2/refresh`, body: 'json' }), storage })
const api = ky.create({ baseUrl: `${apiOrigin}/api/v1/`, hooks: auth.hooks })
let refreshes = 0
let committedAt = 0
auth.on('refresh', () => ((refreshes++), (committedAt = clock())))
if (config.tokens) await auth.setTokens(config.tokens)
await auth.getAccessToken() // read the shared session (and cache it), as a running server has
await subscribed // the engine's watch() subscribed at creation: the subscription is live before the storm
const send = (value) => process.stdout.write(`${JSON.stringify(value)}\n`)
send({ ready: true })

async function warm() {
  // A running server: JIT warm, a pool of keep-alive connections to the API (one per concurrent request).
  // The last round is timed: the same burst with a valid token, this machine's floor right now.
  let latencies = []
  for (let round = 0; round < 3; round++) {
    latencies = await Promise.all(Array.from({ length: count }, async () => {
      const started = performance.now()
      await api.get('passes').json()
      return performance.now() - started
    }))
  }
  globalThis.gc?.()
  send({ warm: true, latencies })
}

async function storm(startAt) {
  traffic.commands.length = 0
  traffic.messages.length = 0
  refreshes = 0
  committedAt = 0
  counting = true
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())))
  const fired = clock()
  const ends = []
  const results = await Promise.allSettled(
    Array.from({ length: count }, async () => {
      const started = performance.now()
      try {
        return await api.get('passes').json()
      } finally {
        ends.push({ ms: performance.now() - started, at: clock() })
      }
    }),
  )
  counting = false
  const codes = results.map((result) => (result.status === 'fulfilled' ? 'ok' : isTokenError(result.reason) ? result.reason.code : String(result.reason)))
  send({
    fired,
    late: fired - startAt,
    latencies: ends.map((end) => end.ms),
    lastEnd: Math.max(...ends.map((end) => end.at)),
    failed: codes.filter((code) => code !== 'ok').length,
    errors: [...new Set(codes.filter((code) => code !== 'ok'))],
    refreshes,
    committedAt,
    commands: traffic.commands,
    messages: traffic.messages,
  })
}

for await (const line of createInterface({ input: process.stdin })) {
  const [verb, arg] = line.trim().split(' ')
  if (verb === 'warm') await warm()
  else if (verb === 'go') await storm(Number(arg))
  else if (verb === 'quit') break
}
auth.dispose()
await Promise.all(connections.map((connection) => connection.quit()))
process.exit(0)
