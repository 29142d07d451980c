// One browser tab of the cross-tab scenario: the real library on IndexedDB + Web Locks +
// BroadcastChannel, driven by test/browser/tabs.test.ts through window.tab.
import ky from 'ky'
import { createTokenAuth, isTokenError, refreshTokenGrant, type TokenStorage } from '../../src/index.ts'
import { indexedDBStorage } from '../../src/storage/indexeddb.ts'

const api = new URLSearchParams(location.search).get('api')!
const reads = { count: 0 }
const base = indexedDBStorage({ dbName: 'tabs-test' })
const storage: TokenStorage = { ...base, get: (key) => (reads.count++, base.get(key)) }
const events: string[] = []
const auth = createTokenAuth({ grant: refreshTokenGrant({ url: `${api}/api/v1/apps/oauth2/refresh`, body: 'json' }), storage, refreshBefore: 60_000 })
auth.on('tokens', ({ cause }) => events.push(`tokens:${cause}`))
auth.on('refresh', () => events.push('refresh'))
const client = ky.create({ baseUrl: `${api}/api/v1/`, hooks: auth.hooks, retry: 0 })

const tab = {
  reads,
  events,
  setTokens: (body: Record<string, unknown>) => auth.setTokens(body as never),
  prime: () => auth.getAccessToken().then(() => true),
  async fire(n: number) {
    const results = await Promise.allSettled(Array.from({ length: n }, () => client.get('passes').json()))
    return results.map((result) => (result.status === 'fulfilled' ? 'ok' : isTokenError(result.reason) ? result.reason.code : String(result.reason)))
  },
  logout: () => auth.logout({ revoke: false }),
  // Take the refresh lock and never give it back, as a tab that hangs mid-refresh would.
  holdLock() {
    void navigator.locks.request('ky-token-refresh:tabs-test/tokens:default', () => new Promise(() => {}))
    return true
  },
}
Object.assign(window, { tab, ready: true })
