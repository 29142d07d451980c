/**
 * Loading the keys that DPoP proofs and `private_key_jwt` assertions are signed with. jose does
 * the parsing (JWK, PKCS #8 PEM), the public-key export and the RFC 7638 thumbprint; what comes
 * out is a WebCrypto `CryptoKey` that stays non-extractable, plus everything a proof needs that
 * never changes for a key (the public JWK, the algorithm, the encoded protected header), computed
 * once.
 *
 * Why here and not in the core: jose is only downloaded by users who import
 * `ky-token-refresh/dpop`.
 *
 * @module
 */
import { base64url, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8, type JWK } from 'jose'
import { localFailure } from '../grants/sender.js'

/** JWS algorithms accepted for DPoP proofs and client assertions. */
export type SigningAlgorithm = 'ES256' | 'ES384' | 'ES512' | 'EdDSA' | 'Ed25519' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512'

/**
 * A private key from configuration or a key pair you hold:
 * - a `CryptoKeyPair` (`generateDPoPKey()`, `browserDPoPKey()`, or your own; the private key may
 *   be non-extractable, the public key must be exportable, as WebCrypto makes it);
 * - a private JWK (an object with `d`), e.g. `JSON.parse(process.env.DPOP_KEY)`;
 * - a PKCS #8 PEM string (`-----BEGIN PRIVATE KEY-----`), e.g. from a secret manager.
 */
export type PrivateKeyInput = CryptoKeyPair | JWK | string

/** @internal A key ready to sign with. */
export interface LoadedKey {
  readonly privateKey: CryptoKey
  /** The public key as a JWK with public members only. */
  readonly jwk: JWK
  readonly alg: SigningAlgorithm
  /** RFC 7638 SHA-256 thumbprint of the public key (the `jkt` a server binds tokens to). */
  readonly thumbprint: string
  /** The key id of a configured JWK, if it had one. */
  readonly kid: string | undefined
  /** WebCrypto's parameters for `subtle.sign` with this algorithm. */
  readonly params: AlgorithmIdentifier | EcdsaParams | RsaPssParams
}

const PUBLIC_MEMBERS: Record<string, readonly string[]> = { EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], RSA: ['e', 'kty', 'n'] }

/**
 * Generate a key pair for DPoP whose private key can never be exported (`extractable: false`):
 * it lives in this process's (or tab's) memory only, so tokens bound to it die with the process.
 * In browsers use `browserDPoPKey()` to keep it across reloads; on servers configure one key for
 * every process instead.
 */
export function generateDPoPKey(alg: SigningAlgorithm = 'ES256'): Promise<CryptoKeyPair> {
  return generateKeyPair(alg, { extractable: false }) as Promise<CryptoKeyPair>
}

/** @internal Load `input` for signing with `alg` (default: from the key). Failures are local (nothing sent) TypeErrors. */
export async function loadKey(input: PrivateKeyInput, alg: SigningAlgorithm | undefined, what: string): Promise<LoadedKey> {
  try {
    if (isKeyPair(input)) {
      const chosen = alg ?? algorithmOf(input.privateKey)
      const jwk = publicMembers(await exportJWK(input.publicKey))
      return finish(input.privateKey, jwk, chosen, undefined)
    }
    if (typeof input === 'string') {
      if (!/-----BEGIN PRIVATE KEY-----/.test(input)) throw new TypeError('a string key must be a PKCS #8 PEM ("-----BEGIN PRIVATE KEY-----"); convert "EC PRIVATE KEY"/"RSA PRIVATE KEY" PEMs with `openssl pkcs8 -topk8 -nocrypt`')
      const chosen = alg ?? 'ES256'
      const exportable = await importPKCS8(input, chosen, { extractable: true })
      const jwk = publicMembers(await exportJWK(exportable))
      return finish(await importPKCS8(input, chosen), jwk, chosen, undefined)
    }
    if (typeof input === 'object' && input !== null && typeof (input as JWK).kty === 'string') {
      const source = input as JWK
      if (typeof source.d !== 'string') throw new TypeError('the JWK has no private part ("d"); configure the private key (the server gets the public one)')
      const chosen = alg ?? (source.alg as SigningAlgorithm | undefined) ?? algorithmOfJwk(source)
      const { ext: _ext, key_ops: _ops, ...clean } = source
      const privateKey = (await importJWK(clean, chosen, { extractable: false })) as CryptoKey
      return finish(privateKey, publicMembers(source), chosen, typeof source.kid === 'string' ? source.kid : undefined)
    }
    throw new TypeError('expected a CryptoKeyPair, a private JWK or a PKCS #8 PEM string')
  } catch (error) {
    throw localFailure(new TypeError(`The ${what} key could not be loaded: ${(error as Error)?.message ?? String(error)}. Nothing was sent; check the "key" option.`, { cause: error }))
  }
}

async function finish(privateKey: CryptoKey, jwk: JWK, alg: SigningAlgorithm, kid: string | undefined): Promise<LoadedKey> {
  return { privateKey, jwk, alg, thumbprint: await calculateJwkThumbprint(jwk), kid, params: signParams(alg) }
}

function isKeyPair(value: unknown): value is CryptoKeyPair {
  const pair = value as Partial<CryptoKeyPair> | undefined
  return typeof pair === 'object' && pair !== null && typeof pair.privateKey === 'object' && typeof pair.publicKey === 'object' && pair.privateKey !== null && pair.publicKey !== null
}

// Only the public members, whatever the source carried: a proof header must never hold "d".
function publicMembers(jwk: JWK): JWK {
  const members = PUBLIC_MEMBERS[jwk.kty ?? '']
  if (!members) throw new TypeError(`unsupported key type "${String(jwk.kty)}" (use an EC P-256 key, Ed25519 or RSA)`)
  const out: Record<string, unknown> = {}
  for (const member of members) out[member] = (jwk as Record<string, unknown>)[member]
  return out as JWK
}

function algorithmOf(key: CryptoKey): SigningAlgorithm {
  const algorithm = key.algorithm as EcKeyAlgorithm & RsaHashedKeyAlgorithm
  if (algorithm.name === 'ECDSA') return ({ 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' } as const)[algorithm.namedCurve as 'P-256'] ?? fail(algorithm.namedCurve)
  if (algorithm.name === 'Ed25519') return 'EdDSA'
  const bits = (algorithm.hash as { name?: string } | undefined)?.name?.replace('SHA-', '')
  if (algorithm.name === 'RSASSA-PKCS1-v1_5') return `RS${bits}` as SigningAlgorithm
  if (algorithm.name === 'RSA-PSS') return `PS${bits}` as SigningAlgorithm
  return fail(algorithm.name)
}

function algorithmOfJwk(jwk: JWK): SigningAlgorithm {
  if (jwk.kty === 'EC') return ({ 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' } as const)[jwk.crv as 'P-256'] ?? fail(jwk.crv)
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA'
  if (jwk.kty === 'RSA') return 'RS256'
  return fail(`${jwk.kty} ${jwk.crv ?? ''}`)
}

function fail(what: unknown): never {
  throw new TypeError(`cannot sign with a ${String(what)} key; pass "alg" or use an EC P-256 key (ES256)`)
}

function signParams(alg: SigningAlgorithm): LoadedKey['params'] {
  if (alg.startsWith('ES')) return { name: 'ECDSA', hash: `SHA-${alg.slice(2)}` }
  if (alg === 'EdDSA' || alg === 'Ed25519') return { name: 'Ed25519' }
  if (alg.startsWith('RS')) return { name: 'RSASSA-PKCS1-v1_5' }
  return { name: 'RSA-PSS', saltLength: Number(alg.slice(2)) / 8 }
}

const encoder = new TextEncoder()

/** @internal base64url of a string's UTF-8 bytes, or of bytes. */
export function b64u(input: string | Uint8Array): string {
  return base64url.encode(typeof input === 'string' ? encoder.encode(input) : input)
}

/** @internal Sign `header.payload` (already encoded) with `key`; returns the compact JWS. */
export async function signCompact(key: LoadedKey, signingInput: string): Promise<string> {
  const signature = await crypto.subtle.sign(key.params, key.privateKey, encoder.encode(signingInput))
  return `${signingInput}.${base64url.encode(new Uint8Array(signature))}`
}
