/**
 * What a token may look like before it is stored or put in a header. A token with CR/LF, NUL or a
 * space would make every later request throw (or worse, split a header); refusing it at the door
 * keeps storage clean and the error typed.
 *
 * @module
 */

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/
// RFC 6749 Appendix A.17: refresh-token = 1*VSCHAR (%x20-7E)
const VSCHARS = /^[\x20-\x7E]+$/

/** Is `value` usable as an access token in `Authorization: Bearer <value>` (RFC 6750 b64token)? */
export function isAccessToken(value: unknown): value is string {
  return typeof value === 'string' && B64TOKEN.test(value)
}

/** Is `value` a well-formed refresh token (RFC 6749: one or more visible ASCII characters or spaces)? */
export function isRefreshToken(value: unknown): value is string {
  return typeof value === 'string' && VSCHARS.test(value)
}
