// A Worker that uses the library exactly as a user would: refresh-token grant, tokens in the
// TokenCoordinator Durable Object, Workers KV as a read cache. Several copies of this script run
// as separate isolates in workerd (test/runtime/workerd/workerd.test.ts drives them).
import ky from 'ky'
import { createTokenAuth, isTokenError, refreshTokenGrant, type TokenAuth } from '../../../src/index.ts'
import { cloudflareKVStorage, type KVNamespaceLike } from '../../../src/storage/cloudflare-kv.ts'
import { durableObjectStorage, TokenCoordinator, type DurableObjectNamespaceLike } from '../../../src/storage/durable-object.ts'

export { TokenCoordinator }

interface Env {
  API_ORIGIN: string
  COORD: DurableObjectNamespaceLike
  TOKENS: KVNamespaceLike
}

let auth: TokenAuth | undefined
let refreshes = 0
// Durable Object round trips made by this isolate (each stub.fetch is one).
let coordinatorCalls = 0
const counted = (namespace: DurableObjectNamespaceLike): DurableObjectNamespaceLike => ({
  idFromName: (name) => namespace.idFromName(name),
  get: (id) => {
    const stub = namespace.get(id)
    return { fetch: (input, init) => (coordinatorCalls++, stub.fetch(input, init)) }
  },
})

// `fresh` builds a new engine with an empty memory, as a newly started isolate has.
function setup(env: Env, fresh = false): TokenAuth {
  if (auth && !fresh) return auth
  const created = createTokenAuth({
    grant: refreshTokenGrant({ url: `${env.API_ORIGIN}/api/v1/apps/oauth2/refresh`, body: 'json', revocationUrl: `${env.API_ORIGIN}/oauth2/revoke` }),
    storage: durableObjectStorage({ namespace: counted(env.COORD), cache: env.TOKENS, lockTtl: 2_000 }),
  })
  created.on('refresh', () => refreshes++)
  if (!fresh) auth = created
  return created
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url)
    const auth = setup(env, url.searchParams.has('cold'))
    if (url.pathname === '/seed') {
      await auth.setTokens(await request.json())
      return Response.json({ ok: true })
    }
    if (url.pathname === '/hammer') {
      const api = ky.create({ baseUrl: `${env.API_ORIGIN}/api/v1/`, hooks: auth.hooks })
      const n = Number(url.searchParams.get('n') ?? 10)
      const results = await Promise.allSettled(Array.from({ length: n }, () => api.get('passes').json()))
      const codes = results.map((result) => (result.status === 'fulfilled' ? 'ok' : isTokenError(result.reason) ? result.reason.code : String(result.reason)))
      return Response.json({ ok: codes.filter((code) => code === 'ok').length, codes: [...new Set(codes)], refreshes, userAgent: navigator.userAgent })
    }
    if (url.pathname === '/stats') return Response.json({ coordinatorCalls })
    if (url.pathname === '/logout') {
      const errors: string[] = []
      auth.on('error', ({ error }) => errors.push(String(error)))
      await auth.logout()
      return Response.json({ ok: true, errors })
    }
    if (url.pathname === '/kv-alone') {
      try {
        createTokenAuth({ grant: refreshTokenGrant({ url: `${env.API_ORIGIN}/token`, body: 'json' }), storage: cloudflareKVStorage({ namespace: env.TOKENS }) })
        return Response.json({ refused: false })
      } catch (error) {
        return Response.json({ refused: true, message: (error as Error).message })
      }
    }
    return new Response('not found', { status: 404 })
  },
}
