/**
 * `ky-token-refresh/dpop`: what needs a signing key, built on jose. DPoP (RFC 9449)
 * sender-constrained tokens for `createTokenAuth({ sender: dpop({ key }) })`, the keys to sign
 * with (a persisted, non-extractable browser key; a configured server key), and
 * `private_key_jwt` client authentication (RFC 7523).
 *
 * A separate entry so that bearer users never download jose: nothing here is reachable from
 * `ky-token-refresh` itself.
 *
 * @module
 */
export { dpop, type DPoP, type DPoPKeyInfo, type DPoPOptions } from './dpop.js'
export { generateDPoPKey, type PrivateKeyInput, type SigningAlgorithm } from './keys.js'
export { browserDPoPKey, deleteBrowserDPoPKey, type BrowserDPoPKeyOptions } from './browser-key.js'
export { privateKeyJwt, type PrivateKeyJwtOptions } from './private-key-jwt.js'
