// Leak scanning shared by every runtime: walk an object graph and return every string reachable
// from it, with the path that reaches it. Runs unchanged in Node, Deno, workerd and Chromium (it is
// bundled into each runtime's scenario), so it uses Web APIs only.
//
// What it follows: own properties, enumerable or not, string or symbol keyed (getters included);
// accessors on non-built-in prototypes (class getters); Error message/stack/cause/errors; Headers
// entries; Request and Response url, method, status, headers; URL and URLSearchParams; FormData;
// Map and Set contents; arrays; ArrayBuffer and typed arrays (decoded as UTF-8). Every object is
// visited once. Bodies of Request/Response/Blob are not read (that would consume them).

/** One string found in the graph, and how it was reached. */
export interface Found {
  path: string
  value: string
}

const BUILTIN_PROTOTYPES = new Set<unknown>(
  [Object, Function, Array, Error, Promise, Map, Set, WeakMap, WeakSet, Date, RegExp, ArrayBuffer, String, Number, Boolean, Symbol]
    .map((constructor) => constructor.prototype)
    .concat([Object.getPrototypeOf(Uint8Array.prototype)]),
)

const has = (name: string) => typeof (globalThis as Record<string, unknown>)[name] === 'function'
const is = (value: object, name: string) => has(name) && value instanceof ((globalThis as Record<string, any>)[name] as new () => object)

/** Every string reachable from `root`. `limit` bounds the number of objects visited. */
export function reachableStrings(root: unknown, { limit = 200_000 }: { limit?: number } = {}): Found[] {
  const found: Found[] = []
  const visited = new Set<object>()
  const queue: { value: unknown; path: string }[] = [{ value: root, path: '$' }]
  const push = (value: unknown, path: string) => queue.push({ value, path })
  const read = (get: () => unknown, path: string) => {
    try {
      push(get(), path)
    } catch (error) {
      found.push({ path: `${path}<threw>`, value: String((error as Error)?.message ?? error) })
    }
  }
  const headers = (value: Headers, path: string) => {
    for (const [name, header] of value.entries()) found.push({ path: `${path}[${name}]`, value: `${name}: ${header}` })
  }
  while (queue.length > 0) {
    const { value, path } = queue.shift()!
    if (typeof value === 'string') {
      found.push({ path, value })
      continue
    }
    if (typeof value === 'symbol') {
      if (value.description) found.push({ path, value: value.description })
      continue
    }
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null) continue
    if (visited.has(value)) continue
    if (visited.size >= limit) {
      found.push({ path, value: '<limit reached>' })
      break
    }
    visited.add(value)

    // Web classes whose state lives behind prototype getters or internal slots.
    if (is(value, 'Headers')) headers(value as Headers, path)
    if (is(value, 'Request') || is(value, 'Response')) {
      const message = value as Request | Response
      found.push({ path: `${path}.url`, value: message.url })
      headers(message.headers, `${path}.headers`)
      if ('method' in message) found.push({ path: `${path}.method`, value: message.method })
      if ('status' in message) found.push({ path: `${path}.status`, value: `${message.status} ${message.statusText}` })
      if ('redirected' in message && message.redirected) found.push({ path: `${path}.redirected`, value: 'redirected' })
    }
    if (is(value, 'URL')) found.push({ path: `${path}.href`, value: (value as URL).href })
    if (is(value, 'URLSearchParams')) found.push({ path: `${path}.toString()`, value: (value as URLSearchParams).toString() })
    if (is(value, 'FormData')) for (const [name, entry] of (value as FormData).entries()) push(entry, `${path}.get(${name})`)
    if (is(value, 'AbortSignal')) read(() => (value as AbortSignal).reason, `${path}.reason`)
    if (value instanceof Map) {
      let i = 0
      for (const [key, entry] of value) {
        push(key, `${path}.<key ${i}>`)
        push(entry, `${path}.<value ${i++}>`)
      }
    }
    if (value instanceof Set) {
      let i = 0
      for (const entry of value) push(entry, `${path}.<entry ${i++}>`)
    }
    if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
      const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
      found.push({ path: `${path}<utf-8>`, value: new TextDecoder().decode(bytes) })
      continue
    }
    if (value instanceof Error) {
      // Usually own properties (handled below), but a subclass may move them to getters.
      read(() => value.message, `${path}.message`)
      read(() => value.stack, `${path}.stack`)
      read(() => value.cause, `${path}.cause`)
    }

    // Own properties: enumerable or not, string or symbol keys; getters are called.
    for (const key of Reflect.ownKeys(value)) {
      if (typeof value === 'function' && (key === 'caller' || key === 'arguments')) continue
      const label = typeof key === 'symbol' ? `[${String(key)}]` : Array.isArray(value) && /^\d+$/.test(key) ? `[${key}]` : `.${key}`
      const descriptor = Object.getOwnPropertyDescriptor(value, key)
      if (!descriptor) continue
      if ('value' in descriptor) push(descriptor.value, path + label)
      else if (descriptor.get) read(() => descriptor.get!.call(value), path + label)
    }
    // Getters a class declares (e.g. `get token()`), skipping the built-in prototypes.
    // (The Web classes above are read through their public API instead: their getters consume bodies.)
    const web = ['Request', 'Response', 'Headers', 'AbortSignal', 'Blob', 'ReadableStream', 'URL', 'URLSearchParams', 'FormData'].some((name) => is(value, name))
    for (let proto = web ? null : Object.getPrototypeOf(value); proto && !BUILTIN_PROTOTYPES.has(proto); proto = Object.getPrototypeOf(proto)) {
      for (const key of Reflect.ownKeys(proto)) {
        if (key === 'constructor') continue
        const descriptor = Object.getOwnPropertyDescriptor(proto, key)
        if (descriptor?.get) read(() => descriptor.get!.call(value), `${path}.${String(key)}`)
      }
    }
  }
  return found
}

/** Where each secret occurs among `found`: `[label, path]` pairs (empty when nothing leaked). */
export function leaksIn(found: readonly Found[], secrets: Readonly<Record<string, string>>): { secret: string; path: string }[] {
  const leaks: { secret: string; path: string }[] = []
  for (const [label, secret] of Object.entries(secrets)) {
    if (!secret) continue
    for (const { path, value } of found) if (value.includes(secret)) leaks.push({ secret: label, path })
  }
  return leaks
}

/** Secrets occurring in a flat text (a serialized report, a server log). */
export function leaksInText(text: string, secrets: Readonly<Record<string, string>>): string[] {
  return Object.entries(secrets).filter(([, secret]) => secret && text.includes(secret)).map(([label]) => label)
}
