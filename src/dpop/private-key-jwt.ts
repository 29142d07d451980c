/**
 * `private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9): instead of a shared
 * secret, the client signs a short-lived JWT with its private key for every token-endpoint call.
 *
 * Why it lives beside DPoP: both sign with a key you hold, through jose, which only users of this
 * subpath download. The core's grants take the signer through their `clientAssertion` option.
 *
 * @module
 */
import { SignJWT } from 'jose'
import type { ClientAssertion } from '../grants/token-endpoint.js'
import { loadKey, type LoadedKey, type PrivateKeyInput, type SigningAlgorithm } from './keys.js'

/** Options for {@link privateKeyJwt}. */
export interface PrivateKeyJwtOptions {
  /**
   * The client's private key: a private JWK (its `kid` is sent in the header), a PKCS #8 PEM
   * string, or a `CryptoKeyPair`; or a promise of one. The server holds the public key (the
   * client's registered `jwks` or `jwks_uri`).
   */
  key: PrivateKeyInput | Promise<PrivateKeyInput>
  /** The JWS algorithm. Default: from the key (the JWK's `alg`, ES256 for P-256, RS256 for RSA; ES256 for a PEM). */
  alg?: SigningAlgorithm
  /** The `kid` header. Default: the JWK's `kid`, if any. */
  kid?: string
  /**
   * The assertion's `aud`. Default: the URL of the endpoint being called (the token endpoint).
   * Set the issuer identifier for servers that require it (FAPI 2.0, RFC 7523bis).
   */
  audience?: string
  /** Lifetime in seconds (`exp - iat`). Default 60. */
  lifetime?: number
}

/**
 * A signer of client assertions for `clientAuth: 'private_key_jwt'` (pass it as the grant's
 * `clientAssertion`). Each call signs a new assertion: `iss` = `sub` = client id, `aud`, a unique
 * `jti`, `iat` and a short `exp`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2
 * @example
 * ```ts
 * import { clientCredentialsGrant } from 'ky-token-refresh'
 * import { privateKeyJwt } from 'ky-token-refresh/dpop'
 *
 * const grant = clientCredentialsGrant({
 *   url: 'https://auth.example.com/oauth/token',
 *   clientId: 'reporting-service',
 *   clientAssertion: privateKeyJwt({ key: JSON.parse(process.env.CLIENT_JWK!) }),
 * })
 * ```
 */
export function privateKeyJwt(options: PrivateKeyJwtOptions): ClientAssertion {
  if (typeof options !== 'object' || options === null || options.key === undefined || options.key === null) {
    throw new TypeError('privateKeyJwt() needs { key }: the client\'s private JWK or PKCS #8 PEM.')
  }
  const lifetime = options.lifetime ?? 60
  if (!Number.isFinite(lifetime) || lifetime <= 0) throw new TypeError('"lifetime" must be a positive number of seconds.')
  let loading: Promise<LoadedKey> | undefined
  return {
    async sign({ clientId, endpoint }) {
      const key = await (loading ??= Promise.resolve(options.key)
        .then((input) => loadKey(input, options.alg, 'client assertion'))
        .catch((error: unknown) => {
          loading = undefined
          throw error
        }))
      const kid = options.kid ?? key.kid
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({})
        .setProtectedHeader({ alg: key.alg, typ: 'JWT', ...(kid !== undefined && { kid }) })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(options.audience ?? endpoint)
        .setJti(crypto.randomUUID())
        .setIssuedAt(now)
        .setExpirationTime(now + lifetime)
        .sign(key.privateKey)
    },
  }
}
