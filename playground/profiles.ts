/**
 * The playground's profiles: one per API recipe in the README, each with a one-line description,
 * the controls that do nothing for it (and why), and the configuration the page builds. The page
 * constructs the token engine from {@link configFor} and the code panel prints the very same
 * value, so the code shown is the code running.
 *
 * Adding a profile: add its id to {@link ProfileId}, an entry to {@link PROFILES} and an
 * `<option>` in index.html; `disabled` names the controls its mock cannot honour (with the reason
 * shown), `headerNotes` explains request headers in the inspector. A profile with a `sender`
 * (the DPoP profile, served by ./dpop-mock.ts) also gets: the sign-in through `sender.fetch` (the
 * code exchange, so the tokens are bound to the key), the sender printed as `const sender = …` in
 * the code panel, nonce challenges counted apart from 401s (counter, summary, timeline, inspector),
 * and the "Rotate the API's DPoP nonce" control.
 * Nothing else in the page is profile-specific.
 */
import { clientCredentialsGrant, jsonLoginGrant, memoryStorage, refreshTokenGrant, staticToken } from '../src/index.ts'

export type ProfileId = 'stemp' | 'stenn' | 'dokstamp' | 'starship' | 'static' | 'dpop'
/** Controls a profile can switch off. */
export type ControlId = 'signin' | 'expire' | 'revoke' | 'forbid' | 'mode' | 'ttl' | 'logout' | 'storage' | 'rotate-nonce'

/** What /mock/_config hands the page (demo only: server-side secrets in a browser). */
export interface MockConfig { credentials: Record<string, string>; apiToken: string }

/** A value used for real but printed as an expression in the code panel (secrets never appear). */
export class Secret {
  readonly value: string
  readonly expression: string
  constructor(value: string, expression: string) {
    this.value = value
    this.expression = expression
  }
}
/** A function call, built for real by {@link build} and printed as source by {@link source}. */
export class Call {
  readonly fn: keyof typeof FACTORIES
  readonly args: unknown[]
  readonly from: string
  constructor(fn: keyof typeof FACTORIES, args: unknown[], from = 'ky-token-refresh') {
    this.fn = fn
    this.args = args
    this.from = from
  }
}

const FACTORIES = {
  refreshTokenGrant,
  clientCredentialsGrant,
  jsonLoginGrant,
  staticToken,
  memoryStorage,
  indexedDBStorage: async (options: { dbName: string }) => (await import('../src/storage/indexeddb.ts')).indexedDBStorage(options),
  // The DPoP entry (jose included) is loaded only when the DPoP profile is picked, as an app would.
  dpop: async (options: { key: unknown }) => (await import('../src/dpop/index.ts')).dpop(options as Parameters<typeof import('../src/dpop/index.ts').dpop>[0]),
  browserDPoPKey: async () => (await import('../src/dpop/index.ts')).browserDPoPKey(),
}

export interface ProfileSpec {
  id: ProfileId
  name: string
  /** One line: what the API is and how it authenticates. */
  description: string
  /** The API's base path on the mock and the resource the page requests. */
  apiPath: string
  resource: string
  /** Where tokens come from, shown in summaries ("POST …/refresh"). */
  tokenPath: string
  refreshTokens: boolean
  /** The "Sign in" step: button label and the expected outcome in words. */
  signIn: { label: string; expect: string }
  disabled: Partial<Record<ControlId, string>>
  /** Explanations of request headers the inspector shows for this profile. */
  headerNotes?: Record<string, string>
  /** The README section with this profile's recipe. */
  readme: string
  grant(base: string, config: MockConfig): Call
  /** Extra createTokenAuth options beyond the common ones. */
  options?: Record<string, unknown>
  /**
   * A sender constraint (`createTokenAuth({ sender })`): DPoP. The page then signs in through
   * `sender.fetch` (the code exchange, so the tokens are bound to the key), counts nonce
   * challenges apart from 401s, and offers the nonce control.
   */
  sender?: () => Call
}

const NO_NONCE = 'Bearer tokens carry no proof, so this API has no DPoP nonce to rotate: pick the DPoP profile.'

const STATIC_REASON = {
  signin: 'A static API token is configured in code: there is nothing to sign in to.',
  expire: 'A static API token never expires.',
  revoke: 'The mock revokes OAuth sessions; a static API token stays valid.',
  forbid: 'The mock’s 403 switch applies to OAuth access tokens, not the static token.',
  mode: 'No token endpoint is ever called for a static token.',
  ttl: 'A static API token has no lifetime.',
  logout: 'A static token is never stored, so there is nothing to log out of.',
  storage: 'A static token is never stored.',
} as const

export const PROFILES: Record<ProfileId, ProfileSpec> = {
  stemp: {
    id: 'stemp',
    name: 'stemp',
    description: 'Digital passes API. OAuth2: the app signs in once, then the library trades the refresh token for new tokens (JSON body); every refresh rotates the refresh token.',
    apiPath: '/mock/stemp/api/v1/',
    resource: 'passes',
    tokenPath: 'POST …/oauth2/refresh',
    refreshTokens: true,
    signIn: { label: 'Sign in', expect: 'The app stores access token #1 and refresh token generation 1.' },
    disabled: { 'rotate-nonce': NO_NONCE },
    readme: 'README.md#recipes-for-the-four-apis',
    grant: (base) => new Call('refreshTokenGrant', [{ url: `${base}/api/v1/apps/oauth2/refresh`, body: 'json' }]),
  },
  stenn: {
    id: 'stenn',
    name: 'Stenn',
    description: 'Invoice-finance API for servers. Client credentials (form-encoded): no refresh token; the library simply asks for a new token on expiry or a 401.',
    apiPath: '/mock/stenn/v1/',
    resource: 'companies',
    tokenPath: 'POST …/auth/v1/token',
    refreshTokens: false,
    signIn: { label: 'Get a token (client credentials)', expect: 'One token call with the client id and secret: access token #1, no refresh token.' },
    disabled: { 'rotate-nonce': NO_NONCE },
    readme: 'README.md#recipes-for-the-four-apis',
    grant: (base, config) =>
      new Call('clientCredentialsGrant', [{ url: `${base}/auth/v1/token`, clientId: config.credentials.client_id, clientSecret: new Secret(config.credentials.client_secret!, 'process.env.STENN_CLIENT_SECRET!') }]),
  },
  dokstamp: {
    id: 'dokstamp',
    name: 'DokStamp',
    description: 'Document-signing API for servers. Client credentials, no refresh token, and an X-Tenant header that travels with the token (only to allowed origins).',
    apiPath: '/mock/dokstamp/api/',
    resource: 'documents',
    tokenPath: 'POST …/oauth/token',
    refreshTokens: false,
    signIn: { label: 'Get a token (client credentials)', expect: 'One token call with the client id and secret: access token #1, no refresh token.' },
    disabled: { 'rotate-nonce': NO_NONCE },
    headerNotes: { 'X-Tenant': 'added by the library with the token, only for allowed origins' },
    readme: 'README.md#recipes-for-the-four-apis',
    grant: (base, config) =>
      new Call('clientCredentialsGrant', [{ url: `${base}/oauth/token`, clientId: config.credentials.client_id, clientSecret: new Secret(config.credentials.client_secret!, 'process.env.DOKSTAMP_CLIENT_SECRET!') }]),
    options: { headers: { 'X-Tenant': 'acme' } },
  },
  starship: {
    id: 'starship',
    name: 'Starship Rewards',
    description: 'Rewards catalogue API for servers. JSON email/password login, then JSON refresh with rotation; after a rejected refresh token it logs in once more.',
    apiPath: '/mock/starship/api/v1/',
    resource: 'products',
    tokenPath: 'POST …/auth/refresh',
    refreshTokens: true,
    signIn: { label: 'Log in (email + password)', expect: 'One login call: access token #1 and refresh token generation 1.' },
    disabled: { 'rotate-nonce': NO_NONCE },
    readme: 'README.md#recipes-for-the-four-apis',
    grant: (base, config) =>
      new Call('jsonLoginGrant', [{ loginUrl: `${base}/auth/login`, refreshUrl: `${base}/auth/refresh`, credentials: { email: config.credentials.email, password: new Secret(config.credentials.password!, 'process.env.STARSHIP_PASSWORD!') } }]),
  },
  static: {
    id: 'static',
    name: 'stemp (static API token)',
    description: 'stemp’s server-to-server API token (sk_live_…): sent as is, never refreshed; a 401 is ERR_STATIC_TOKEN_REJECTED.',
    apiPath: '/mock/static/api/v1/',
    resource: 'passes',
    tokenPath: '(none)',
    refreshTokens: false,
    signIn: { label: 'Sign in', expect: 'Nothing to do: the token is in the code.' },
    disabled: { ...STATIC_REASON, 'rotate-nonce': NO_NONCE },
    readme: 'README.md#recipes-for-the-four-apis',
    grant: (_base, config) => new Call('staticToken', [new Secret(config.apiToken, 'process.env.STEMP_API_TOKEN!')]),
  },
  dpop: {
    id: 'dpop',
    name: 'DPoP',
    description: 'A payments API that only takes DPoP-bound tokens (RFC 9449): every call carries a proof signed by this browser’s key, the server verifies it, and both the token endpoint and the API require their nonce. Refresh tokens rotate and are bound to the key too.',
    apiPath: '/mock/dpop/api/v1/',
    resource: 'payments',
    tokenPath: 'POST …/dpop/token',
    refreshTokens: true,
    signIn: { label: 'Sign in (DPoP-bound tokens)', expect: 'The code exchange goes out with a proof, gets a nonce challenge (400 use_dpop_nonce) and is retried once with the nonce: access token #1 and refresh token generation 1, both bound to this browser’s key.' },
    disabled: {},
    headerNotes: {
      Authorization: 'DPoP, not Bearer: the token alone is useless without a proof from the key it is bound to',
      DPoP: 'proof of possession: a JWT signed by this browser’s key, new for every attempt',
    },
    readme: 'README.md#sender-constrained-tokens-dpop-rfc-9449',
    grant: (base, config) => new Call('refreshTokenGrant', [{ url: `${base}/token`, clientId: config.credentials.client_id }]),
    sender: () => new Call('dpop', [{ key: new Call('browserDPoPKey', [], 'ky-token-refresh/dpop') }], 'ky-token-refresh/dpop'),
  },
}

export const STORAGE: Record<string, { label: string; description: string; readme: string; call: () => Call }> = {
  memory: {
    label: 'memory (this tab)',
    description: 'Tokens live in this tab only and are gone on reload; another tab signs in on its own.',
    readme: 'README.md#storage-where-tokens-live-and-who-shares-one-refresh',
    call: () => new Call('memoryStorage', []),
  },
  indexeddb: {
    label: 'IndexedDB (all tabs)',
    description: 'Tokens are shared by every tab of this origin: Web Locks let one tab refresh for all, BroadcastChannel tells the others.',
    readme: 'README.md#storage-where-tokens-live-and-who-shares-one-refresh',
    call: () => new Call('indexedDBStorage', [{ dbName: 'ky-token-refresh-playground' }], 'ky-token-refresh/storage/indexeddb'),
  },
}

/** The page's whole configuration for one profile and storage: what it builds and what it prints. */
export function configFor(profile: ProfileSpec, storageName: string, origin: string, config: MockConfig) {
  return {
    auth: {
      grant: profile.grant(`${origin}/mock/${profile.id}`, config),
      ...(profile.id !== 'static' && { storage: (STORAGE[storageName] ?? STORAGE.memory!).call() }),
      key: `playground:${profile.id}`,
      origins: [origin],
      refreshBefore: 5_000,
      ...profile.options,
      ...(profile.sender && { sender: profile.sender() }),
    } as Record<string, unknown>,
    ky: { baseUrl: `${origin}${profile.apiPath}`, retry: 0 } as Record<string, unknown>,
  }
}

/** Turn a configuration value into the real thing: calls made, secrets revealed. */
export async function build(value: unknown): Promise<any> {
  if (value instanceof Secret) return value.value
  if (value instanceof Call) return (FACTORIES[value.fn] as (...args: unknown[]) => unknown)(...(await Promise.all(value.args.map(build))))
  if (Array.isArray(value)) return Promise.all(value.map(build))
  if (value && typeof value === 'object') return Object.fromEntries(await Promise.all(Object.entries(value).map(async ([key, item]) => [key, await build(item)])))
  return value
}

/** Print a configuration value as TypeScript source. */
export function source(value: unknown, indent = ''): string {
  const inner = `${indent}  `
  if (value instanceof Secret) return value.expression
  if (value instanceof Call) return `${value.fn}(${value.args.map((arg) => source(arg, indent)).join(', ')})`
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
  if (typeof value === 'number') return value >= 10_000 || value % 1000 === 0 && value >= 1000 ? String(value).replace(/\B(?=(\d{3})+(?!\d))/g, '_') : String(value)
  if (Array.isArray(value)) return `[${value.map((item) => source(item, indent)).join(', ')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).map(([key, item]) => (item instanceof Secret && item.expression === key ? key : `${/^[A-Za-z_$][\w$]*$/.test(key) ? key : source(key)}: ${source(item, inner)}`))
    const flat = `{ ${entries.join(', ')} }`
    return flat.length + indent.length <= 64 && !flat.includes('\n') ? flat : `{\n${entries.map((entry) => `${inner}${entry},`).join('\n')}\n${indent}}`
  }
  return String(value)
}

/** The code panel: the exact createTokenAuth / ky.create configuration the page runs. */
export function codeFor(profile: ProfileSpec, config: ReturnType<typeof configFor>): string {
  const imports = new Map<string, Set<string>>([['ky-token-refresh', new Set(['createTokenAuth'])]])
  const collect = (value: unknown) => {
    if (value instanceof Call) {
      if (!imports.has(value.from)) imports.set(value.from, new Set())
      imports.get(value.from)!.add(value.fn)
      value.args.forEach(collect)
    } else if (value && typeof value === 'object' && !(value instanceof Secret)) Object.values(value).forEach(collect)
  }
  collect(config.auth)
  const lines = [`import ky from 'ky'`, ...[...imports].map(([from, names]) => `import { ${[...names].join(', ')} } from '${from}'`), '']
  const sender = config.auth.sender
  if (sender instanceof Call) {
    // The sender gets a name: the sign-in below uses it too.
    lines.push('// DPoP: proofs signed by a non-extractable ES256 key kept in IndexedDB (the same key after a reload).', `const sender = ${source(sender)}`)
    lines.push(`const auth = createTokenAuth(${source({ ...config.auth, sender: new Secret('', 'sender') })})`)
    const grant = config.auth.grant as Call
    const tokenUrl = (grant.args[0] as { url: string; clientId: string })
    lines.push(
      `// Sign-in: exchange the authorization code through sender.fetch, so the tokens are bound to the`,
      `// key (here the page "receives" the code 'playground' in place of the OAuth redirect).`,
      `const codeExchange = new URLSearchParams({ grant_type: 'authorization_code', code, client_id: '${tokenUrl.clientId}' })`,
      `const tokenResponse = await (await sender.fetch('${tokenUrl.url}', { method: 'POST', body: codeExchange })).json()`,
      `await auth.setTokens(tokenResponse) // token_type must be 'DPoP'`,
    )
  } else lines.push(`const auth = createTokenAuth(${source(config.auth)})`)
  if (profile.id === 'stemp') lines.push(`// Sign-in (the page POSTs /mock/_signin in place of the OAuth redirect):`, `await auth.setTokens(tokenResponse) // { access_token, expires_in, refresh_token, … }`)
  else if (profile.id !== 'static' && !(sender instanceof Call)) lines.push(`// "${profile.signIn.label}" = await auth.getAccessToken({ forceRefresh: true }); the first request would do it too.`)
  lines.push('', `const api = ky.create(${source({ ...config.ky, hooks: new Secret('', 'auth.hooks') })})`, `const ${profile.resource} = await api.get('${profile.resource}').json()`)
  lines.push('', '// Not needed in your app: the playground also passes `fetch` wrappers to both, which tag', '// each call (x-playground-tag) and time it for the timeline and the request inspector.')
  return lines.join('\n')
}
