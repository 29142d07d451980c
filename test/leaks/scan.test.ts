// The leak scanner itself: it must find a secret wherever a log line, a serializer or a debugger
// could reach it, or the runtime leak scans prove nothing.
import { describe, expect, it } from 'vitest'
import { leaksIn, leaksInText, reachableStrings } from './scan.ts'

const SECRET = 'sekrit-0123456789'
const found = (root: unknown) => leaksIn(reachableStrings(root), { secret: SECRET }).map(({ path }) => path)

describe('reachableStrings()', () => {
  it('finds a secret in every kind of place, with the path that reaches it', () => {
    const hidden = {}
    Object.defineProperty(hidden, 'value', { value: SECRET, enumerable: false })
    const symbolic = { [Symbol('k')]: SECRET }
    const getter = { get token() { return SECRET } }
    class Holder {
      #private = 'unreachable by any code outside the class'
      get exposed() { return `${this.#private.length}:${SECRET}` }
    }
    const cases: [string, unknown][] = [
      ['plain', { a: { b: [1, { c: SECRET }] } }],
      ['non-enumerable', hidden],
      ['symbol key', symbolic],
      ['own getter', getter],
      ['class getter', new Holder()],
      ['Map key', new Map([[SECRET, 1]])],
      ['Map value', new Map([['k', { v: SECRET }]])],
      ['Set', new Set([SECRET])],
      ['Headers', new Headers({ authorization: `Bearer ${SECRET}` })],
      ['Request url', new Request(`http://x.test/?t=${SECRET}`)],
      ['Request headers', new Request('http://x.test/', { headers: { authorization: `Bearer ${SECRET}` } })],
      ['Response headers', new Response(null, { headers: { 'x-token': SECRET } })],
      ['URL', new URL(`http://x.test/${SECRET}`)],
      ['URLSearchParams', new URLSearchParams({ refresh_token: SECRET })],
      ['bytes', new TextEncoder().encode(`{"t":"${SECRET}"}`)],
      ['ArrayBuffer', new TextEncoder().encode(SECRET).buffer],
      ['error message', new Error(`bad ${SECRET}`)],
      ['error cause chain', new Error('outer', { cause: new Error('middle', { cause: { data: SECRET } }) })],
      ['AggregateError', new AggregateError([new Error(SECRET)])],
      ['error with attached request', Object.assign(new Error('x'), { request: new Request('http://x.test/', { headers: { authorization: `Bearer ${SECRET}` } }) })],
      ['non-enumerable response on an error', Object.defineProperty(new Error('x'), 'response', { value: new Response(null, { headers: { 'x-token': SECRET } }), enumerable: false })],
      ['function property', Object.assign(() => {}, { secret: SECRET })],
    ]
    for (const [name, root] of cases) expect(found(root), name).not.toEqual([])
    expect(found(cases[0]![1])).toEqual(['$.a.b[1].c'])
    expect(found(cases[8]![1])).toContain('$[authorization]')
  })

  it('visits each object once (cycles terminate) and reports nothing where nothing is', () => {
    const a: Record<string, unknown> = { name: 'a' }
    const b: Record<string, unknown> = { name: 'b', a }
    a.b = b
    a.self = a
    expect(found(a)).toEqual([])
    expect(reachableStrings(a).map(({ value }) => value).sort()).toEqual(['a', 'b'])
  })

  it('does not consume bodies', async () => {
    const response = new Response(`body ${SECRET}`)
    reachableStrings(response)
    expect(response.bodyUsed).toBe(false)
    expect(await response.text()).toContain(SECRET)
  })

  it('leaksInText() names each secret a text contains', () => {
    expect(leaksInText(`a ${SECRET} b`, { one: SECRET, two: 'absent', empty: '' })).toEqual(['one'])
  })
})
