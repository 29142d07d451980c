/**
 * Exact-origin matching for the token allow-list. Entries are checked at setup: a string that is
 * not an absolute http(s) origin ("localhost:8080" parses as a URL with the scheme "localhost:")
 * would otherwise match nothing, or the wrong thing, without a word.
 *
 * @module
 */

/** A predicate over request URLs built from an origins list or a custom function. */
export type OriginMatcher = (url: string) => boolean

/** @internal Build the matcher; throws a `TypeError` naming the first bad entry. */
export function originMatcher(origins: readonly string[] | ((url: URL) => boolean)): OriginMatcher {
  if (typeof origins === 'function') return (url) => URL.canParse(url) && origins(new URL(url))
  if (!Array.isArray(origins) || origins.length === 0) {
    throw new TypeError('"origins" must be a non-empty array of origins such as "https://api.example.com" (or a function).')
  }
  // Request and response URLs reach us serialised (`Request.url`, `URL.href`): the origin followed
  // by "/". A prefix test on that form is exact and skips a URL parse on every request; userinfo
  // ("https://user@host/") or an unserialised string fails it, which only refuses the token.
  const prefixes = [...new Set(origins.map(toOrigin))].map((origin) => `${origin}/`)
  return (url) => {
    for (const prefix of prefixes) if (url.startsWith(prefix)) return true
    return false
  }
}

/** `entry` as an origin (`scheme://host[:port]`), or a `TypeError` that names it and says why. */
export function toOrigin(entry: unknown): string {
  const shown = JSON.stringify(String(entry)).slice(0, 80)
  const fail = (why: string): never => {
    throw new TypeError(`"origins" has an entry that is not an http(s) origin: ${shown} (${why}). Write it as "https://api.example.com" or "http://127.0.0.1:8080".`)
  }
  if (typeof entry !== 'string' || !URL.canParse(entry)) return fail('not an absolute URL')
  const url = new URL(entry)
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return fail(`scheme "${url.protocol}" is not http: or https:`)
  if (url.username || url.password) return fail('it contains credentials')
  if (url.pathname !== '/' || url.search || url.hash) return fail('origins have no path, query or fragment; the token goes to every path of the origin')
  return url.origin
}
