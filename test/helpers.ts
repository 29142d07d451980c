import ky, { type KyInstance } from 'ky'
import { afterEach } from 'vitest'
import {
  clientCredentialsGrant,
  createTokenAuth,
  jsonLoginGrant,
  memoryStorage,
  refreshTokenGrant,
  type SessionEvents,
  type TokenAuth,
  type TokenAuthOptions,
  type TokenStorage,
} from '../src/index.ts'
import { producedByLibrary } from './fixtures/secrets.ts'
import { startFixture, testClock, type ApiKind, type Fixture, type FixtureOptions } from './fixtures/apis.ts'

const open: Fixture[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((fixture) => fixture.close()))
})

/** Start a fixture that is closed after the test. */
export async function fixture(kind: ApiKind, options: FixtureOptions = {}): Promise<Fixture> {
  const started = await startFixture(kind, options)
  open.push(started)
  return started
}

export interface Client {
  server: Fixture
  auth: TokenAuth
  api: KyInstance
  storage: TokenStorage
  clock: ReturnType<typeof testClock>
  events: { [E in keyof SessionEvents]: SessionEvents[E][] }
}

const API_PREFIX: Record<ApiKind, string> = { stemp: '/api/v1/', stenn: '/v1/', dokstamp: '/api/', starship: '/api/v1/' }

/** A fixture plus a configured client for it, as the README recipes build them. */
export async function client(
  kind: ApiKind,
  overrides: Partial<TokenAuthOptions> & { fixture?: FixtureOptions; kyOptions?: Parameters<typeof ky.create>[0]; mode?: Mode } = {},
): Promise<Client> {
  const clock = testClock()
  const server = await fixture(kind, { clock: clock.now, ...overrides.fixture })
  const storage = overrides.storage ?? memoryStorage()
  const grant =
    kind === 'stemp' ? refreshTokenGrant({ url: server.url('/api/v1/apps/oauth2/refresh'), body: 'json' })
    : kind === 'starship' ? jsonLoginGrant({ loginUrl: server.url('/auth/login'), refreshUrl: server.url('/auth/refresh'), credentials: () => ({ ...server.credentials }) })
    : clientCredentialsGrant({ url: server.url(kind === 'stenn' ? '/auth/v1/token' : '/oauth/token'), clientId: server.credentials.client_id!, clientSecret: server.credentials.client_secret! })
  const { fixture: _f, kyOptions, mode = 'hooks', ...rest } = overrides
  const auth = createTokenAuth({
    grant,
    storage,
    now: clock.now,
    refreshBefore: kind === 'starship' ? 300_000 : 60_000,
    ...(kind === 'dokstamp' && { headers: { 'X-Tenant': 'acme' } }),
    ...rest,
  })
  const events = { tokens: [], refresh: [], sessionEnded: [], error: [] } as Client['events']
  for (const type of Object.keys(events) as (keyof SessionEvents)[]) auth.on(type, (event: any) => (events[type].push(event), producedByLibrary(event)))
  const api = wire(auth, mode, { baseUrl: server.url(API_PREFIX[kind]), ...kyOptions })
  return { server, auth, api, storage, clock, events }
}

/** The two ways to plug the library into ky: `auth.hooks` (per request) and `auth.extend(api)` (per instance). */
export type Mode = 'hooks' | 'extend'
export const MODES: readonly Mode[] = ['hooks', 'extend']

/** A ky instance authenticated by `auth` in the given mode. */
export function wire(auth: TokenAuth, mode: Mode, options: Parameters<typeof ky.create>[0] = {}): KyInstance {
  return mode === 'hooks' ? ky.create({ ...options, hooks: { ...auth.hooks, ...options.hooks } }) : auth.extend(ky.create(options))
}

/** Await a promise expected to reject and return the rejection. */
export async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise
  } catch (error) {
    producedByLibrary(error) // scanned for every issued secret after the test (test/setup/leak-scan.ts)
    return error
  }
  throw new Error('expected the promise to reject')
}
