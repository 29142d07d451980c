/**
 * Exact-origin matching for the token allow-list.
 *
 * @module
 */

/** A predicate over request URLs built from an origins list or a custom function. */
export type OriginMatcher = (url: string) => boolean

/** @internal Build the matcher; throws a `TypeError` naming `origins` for bad input. */
export function originMatcher(origins: readonly string[] | ((url: URL) => boolean)): OriginMatcher {
  if (typeof origins === 'function') return (url) => URL.canParse(url) && origins(new URL(url))
  if (!Array.isArray(origins) || origins.length === 0) {
    throw new TypeError('"origins" must be a non-empty array of origins such as "https://api.example.com" (or a function).')
  }
  const allowed = new Set(
    origins.map((origin) => {
      if (typeof origin !== 'string' || !URL.canParse(origin)) throw new TypeError(`"origins" has an entry that is not an absolute URL: ${JSON.stringify(String(origin)).slice(0, 80)}`)
      return new URL(origin).origin
    }),
  )
  return (url) => {
    try {
      return allowed.has(new URL(url).origin)
    } catch {
      return false
    }
  }
}
