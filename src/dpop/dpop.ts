/**
 * DPoP (RFC 9449) as a sender constraint for `createTokenAuth({ sender })`: a proof JWT on every
 * token-endpoint call and every API attempt, server nonces learned per origin, and one retry with
 * a fresh proof when a server answers `use_dpop_nonce`.
 *
 * Why a proof per attempt (never reused): servers keep a `jti` replay cache, and a proof is bound
 * to one method and URL (`htm`, `htu`), one access token (`ath`) and one nonce. Why nonces per
 * origin: the authorization server and each resource server issue their own (RFC 9449 §8, §9).
 *
 * What is computed once per key (see `keys.ts`): the public JWK, its thumbprint and the encoded
 * protected header. Per request: a random `jti`, the payload JSON, one SHA-256 per new access
 * token (`ath`, cached for the current token) and one signature.
 *
 * @module
 */
import type { JWK } from 'jose'
import type { SenderConstraint } from '../grants/sender.js'
import { b64u, loadKey, signCompact, type LoadedKey, type PrivateKeyInput, type SigningAlgorithm } from './keys.js'

/** Options for {@link dpop}. */
export interface DPoPOptions {
  /**
   * The proof key, or a promise of it (loaded once, on first use):
   * - browsers: `browserDPoPKey()` (a non-extractable ES256 pair, generated once and kept in
   *   IndexedDB, so the same key survives reloads and is shared by the origin's tabs);
   * - servers: the private key from configuration, a JWK object or a PKCS #8 PEM string, the
   *   **same** for every process that shares the token storage;
   * - tests or single-process tools: `generateDPoPKey()` (memory only).
   *
   * Tokens are bound to this key: a process or tab with another key cannot use them. When the key
   * is not persisted (a new one after a reload or restart), the stored access token is refused by
   * the API (401, then one refresh); for a public client the refresh token is bound too, so the
   * refresh fails with `ERR_SESSION_ENDED` and the user signs in again. Confidential clients'
   * refresh tokens are not bound, so their next refresh simply binds new tokens to the new key.
   */
  key: PrivateKeyInput | Promise<PrivateKeyInput>
  /** The JWS algorithm. Default: from the key (ES256 for P-256, EdDSA for Ed25519, RS256 for RSA; ES256 for a PEM). */
  alg?: SigningAlgorithm
  /** The clock for `iat` (epoch ms). Default `Date.now`. A skewed clock is fixed by the servers' nonces. */
  now?: () => number
  /** How many origins' nonces are remembered (oldest forgotten first). Default 32. */
  maxNonces?: number
}

/** The public facts of a loaded DPoP key. */
export interface DPoPKeyInfo {
  /** RFC 7638 SHA-256 thumbprint: the `jkt` servers bind tokens to (and `dpop_jkt` in an authorization request). */
  jkt: string
  /** The public key as a JWK (public members only). */
  jwk: JWK
  /** The JWS algorithm of the proofs. */
  alg: SigningAlgorithm
}

/** What {@link dpop} returns: a sender constraint, plus tools for token calls made outside the library. */
export interface DPoP extends SenderConstraint {
  /**
   * A `fetch` that adds a proof (and the learned nonce, with one retry on `use_dpop_nonce`) to each
   * call: use it for token-endpoint calls made outside this library, e.g. the authorization-code
   * exchange after sign-in, so the tokens you pass to `auth.setTokens()` are bound to this key.
   */
  readonly fetch: typeof globalThis.fetch
  /** Load the key (if not yet) and describe it: thumbprint, public JWK, algorithm. */
  info(): Promise<DPoPKeyInfo>
  /**
   * A proof for one request: `method` and `url` (query and fragment are left out of `htu`), with
   * `ath` when `accessToken` is given and the nonce last learned from the URL's origin.
   */
  proof(method: string, url: string, accessToken?: string): Promise<string>
}

// RFC 9449 §8.1: nonce = 1*NQCHAR
const NONCE = /^[\x21\x23-\x5b\x5d-\x7e]{1,1024}$/

/**
 * Build a DPoP sender constraint for `createTokenAuth({ sender })`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449
 * @example
 * ```ts
 * import { createTokenAuth, refreshTokenGrant } from 'ky-token-refresh'
 * import { browserDPoPKey, dpop } from 'ky-token-refresh/dpop'
 *
 * const sender = dpop({ key: browserDPoPKey() })
 * const auth = createTokenAuth({ grant: refreshTokenGrant({ url, clientId }), origins: [api], sender })
 * ```
 */
export function dpop(options: DPoPOptions): DPoP {
  if (typeof options !== 'object' || options === null || options.key === undefined || options.key === null) {
    throw new TypeError('dpop() needs { key }: browserDPoPKey() in browsers, the private JWK or PEM from configuration on servers.')
  }
  const now = options.now ?? Date.now
  const maxNonces = options.maxNonces ?? 32
  const nonces = new Map<string, string>()
  let loaded: LoadedKey | undefined
  let loading: Promise<LoadedKey> | undefined
  const key = (): Promise<LoadedKey> | LoadedKey =>
    loaded ??
    (loading ??= Promise.resolve(options.key)
      .then((input) => loadKey(input, options.alg, 'DPoP'))
      .then(
        (ready) => {
          // The protected header never changes for a key: encode it once.
          header = b64u(JSON.stringify({ typ: 'dpop+jwt', alg: ready.alg, jwk: ready.jwk }))
          return (loaded = ready)
        },
        (error: unknown) => {
          loading = undefined // a later call tries again (e.g. IndexedDB was briefly unavailable)
          throw error
        },
      ))
  let header = ''
  // `ath` for the current access token: one SHA-256 per token, not per request.
  let athToken = ''
  let athValue = ''
  const athOf = async (token: string) => {
    if (token === athToken) return athValue
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))
    athToken = token
    return (athValue = b64u(new Uint8Array(digest)))
  }
  const learn = (url: string, response: Response) => {
    const nonce = response.headers.get('dpop-nonce')
    if (!nonce || !NONCE.test(nonce)) return
    const origin = originOf(url)
    if (nonces.get(origin) === nonce) return
    nonces.delete(origin)
    nonces.set(origin, nonce)
    if (nonces.size > maxNonces) nonces.delete(nonces.keys().next().value!)
  }

  const proof = async (method: string, url: string, accessToken?: string): Promise<string> => {
    const signer = loaded ?? (await key())
    const cut = url.search(/[?#]/)
    const nonce = nonces.get(originOf(url))
    const claims: Record<string, unknown> = { jti: crypto.randomUUID(), htm: method.toUpperCase(), htu: cut < 0 ? url : url.slice(0, cut), iat: Math.floor(now() / 1000) }
    if (accessToken !== undefined) claims.ath = await athOf(accessToken)
    if (nonce !== undefined) claims.nonce = nonce
    return signCompact(signer, `${header}.${b64u(JSON.stringify(claims))}`)
  }

  const tokenFetch = (base: typeof globalThis.fetch): typeof globalThis.fetch => async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url).href
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET')
    const spare = input instanceof Request ? input.clone() : input
    for (let attempt = 0; ; attempt++) {
      const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined))
      headers.set('dpop', await proof(method, url))
      const response = await base(attempt === 0 ? spare : input, { ...init, headers })
      learn(response.url || url, response)
      // One retry, with the nonce the server just sent, when it asked for one (RFC 9449 §8). Not
      // when the body carries a client assertion (private_key_jwt): it is single-use, so the
      // challenge goes back to the caller, which signs a new one (the library's grants do).
      if (attempt === 0 && !carriesAssertion(init?.body) && (await asksForNonce(response))) {
        void response.body?.cancel().catch(() => {})
        continue
      }
      return response
    }
  }

  return {
    scheme: 'DPoP',
    tokenType: 'DPoP',
    headers: ['dpop'],
    tokenFetch,
    fetch: tokenFetch((input, init) => globalThis.fetch(input, init)),
    async authorize(request, token) {
      const signed = await proof(request.method, request.url, token)
      request.headers.set('authorization', `DPoP ${token}`)
      request.headers.set('dpop', signed)
    },
    observe(response, request) {
      learn(response.url || request.url, response)
    },
    challenge(response) {
      return response.status === 401 && response.headers.has('dpop-nonce') && /\buse_dpop_nonce\b/.test(response.headers.get('www-authenticate') ?? '')
    },
    async info() {
      const { thumbprint, jwk, alg } = await key()
      return { jkt: thumbprint, jwk: { ...jwk }, alg }
    },
    proof,
  }
}

// Authorization servers answer 400 {"error":"use_dpop_nonce"} with a DPoP-Nonce header (RFC 9449
// §8); some also say it in WWW-Authenticate (and with 401).
async function asksForNonce(response: Response): Promise<boolean> {
  if ((response.status !== 400 && response.status !== 401) || !response.headers.has('dpop-nonce')) return false
  if (/\buse_dpop_nonce\b/.test(response.headers.get('www-authenticate') ?? '')) return true
  if (!/json/i.test(response.headers.get('content-type') ?? '')) return false
  try {
    const body = (await response.clone().json()) as { error?: unknown } | null
    return body?.error === 'use_dpop_nonce'
  } catch {
    return false
  }
}

function carriesAssertion(body: unknown): boolean {
  if (body instanceof URLSearchParams) return body.has('client_assertion')
  return typeof body === 'string' && /(^|&)client_assertion=|"client_assertion"\s*:/.test(body)
}

// `scheme://host[:port]` of a serialised URL, without parsing it.
function originOf(url: string): string {
  const slash = url.indexOf('/', url.indexOf('//') + 2)
  return slash < 0 ? url : url.slice(0, slash)
}
