// workerd side of the Workers fleet benchmark (bench/fleet-workerd.ts bundles this with esbuild and
// runs 4 copies as 4 isolates in one Miniflare, sharing one TokenCoordinator Durable Object
// namespace and one KV namespace). The library is used as a Worker would use it: refresh-token
// grant, tokens in the Durable Object, Workers KV as a read cache, default options.
//
// Each storm has its own session (`s`): its own engine in every isolate and its own Durable Object
// (prefix), so no storm inherits memory or coordinator state from another.
import ky, { type KyInstance } from 'ky'
import { createTokenAuth, isTokenError, refreshTokenGrant, type TokenAuth } from '../src/index.ts'
import type { KVNamespaceLike } from '../src/storage/cloudflare-kv.ts'
import { durableObjectStorage, TokenCoordinator, type DurableObjectNamespaceLike } from '../src/storage/durable-object.ts'

export { TokenCoordinator }

interface Env {
  API_ORIGIN: string
  COORD: DurableObjectNamespaceLike
  TOKENS: KVNamespaceLike
}

// Durable Object round trips made by this isolate: every stub.fetch is one.
let coordinatorCalls = 0
const counted = (namespace: DurableObjectNamespaceLike): DurableObjectNamespaceLike => ({
  idFromName: (name) => namespace.idFromName(name),
  get: (id) => {
    const stub = namespace.get(id)
    return { fetch: (input, init) => (coordinatorCalls++, stub.fetch(input, init)) }
  },
})

interface Session { auth: TokenAuth; api: KyInstance; refreshes: number }
const sessions = new Map<string, Session>()
function session(env: Env, name: string): Session {
  let found = sessions.get(name)
  if (!found) {
    const auth = createTokenAuth({
      grant: refreshTokenGrant({ url: `${env.API_ORIGIN}/api/v1/apps/oauth2/refresh`, body: 'json' }),
      storage: durableObjectStorage({ namespace: counted(env.COORD), cache: env.TOKENS, prefix: `bench-${name}:` }),
    })
    const created: Session = { auth, api: ky.create({ baseUrl: `${env.API_ORIGIN}/api/v1/`, hooks: auth.hooks }), refreshes: 0 }
    auth.on('refresh', () => created.refreshes++)
    sessions.set(name, (found = created))
  }
  return found
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url)
    const name = url.searchParams.get('s') ?? 'default'
    if (url.pathname === '/seed') {
      await session(env, name).auth.setTokens(await request.json())
      return Response.json({ ok: true })
    }
    if (url.pathname === '/burst') {
      // `n` concurrent API requests, fired together at the instant `at` (epoch ms) if given. Each
      // is timed here, inside the isolate, with performance.now() from just before ky is called to
      // its parsed body (workerd advances its clocks on I/O: the end mark is the response's arrival).
      const current = session(env, name)
      const n = Number(url.searchParams.get('n') ?? 25)
      const at = Number(url.searchParams.get('at') ?? 0)
      if (at) await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())))
      const fired = Date.now()
      const callsBefore = coordinatorCalls
      const refreshesBefore = current.refreshes
      const latencies: number[] = []
      const errors: string[] = []
      await Promise.all(
        Array.from({ length: n }, async () => {
          const started = performance.now()
          try {
            await current.api.get('passes').json()
            latencies.push(performance.now() - started)
          } catch (error) {
            errors.push(isTokenError(error) ? error.code : String(error))
          }
        }),
      )
      return Response.json({ fired, ended: Date.now(), latencies, errors, coordinatorCalls: coordinatorCalls - callsBefore, refreshes: current.refreshes - refreshesBefore })
    }
    if (url.pathname === '/drop') {
      sessions.get(name)?.auth.dispose()
      sessions.delete(name)
      return Response.json({ ok: true })
    }
    return new Response('not found', { status: 404 })
  },
}
