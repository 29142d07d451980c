// The whole-suite leak scan (test/setup/leak-scan.ts) must be able to fail: planted leaks, each
// at a place a careless logger reaches, are all found; a clean error is not flagged.
import { describe, expect, it } from 'vitest'
import { TokenError } from '../src/index.ts'
import { issuedSecret, producedByLibrary, takeLedger } from './fixtures/secrets.ts'
import { scanLedger } from './setup/leak-scan.ts'

const secret = 'srt_planted0123456789abcdef'

describe('the leak scan finds what it is meant to find', () => {
  const planted: [string, () => unknown][] = [
    ['a message', () => new Error(`refresh with ${secret} failed`)],
    ['a cause two levels down', () => new TokenError('ERR_STORAGE', 'clean', { cause: new Error('wrapper', { cause: new Error(secret) }) })],
    ['a request header of a cause', () => Object.assign(new Error('http'), { request: new Request('http://127.0.0.1/', { headers: { authorization: `Bearer ${secret}` } }) })],
    ['a non-enumerable property', () => Object.defineProperty(new Error('x'), 'hidden', { value: { deep: [secret] }, enumerable: false })],
    ['a Map in an event payload', () => ({ key: 'default', extra: new Map([['t', secret]]) })],
    ['a response header', () => ({ response: new Response(null, { headers: { 'x-echo': secret } }) })],
  ]
  for (const [where, make] of planted) {
    it(`in ${where}`, () => {
      expect(scanLedger([secret], [make()]).length).toBeGreaterThan(0)
    })
  }

  it('a clean TokenError and event are not flagged, and the ledger is per test', () => {
    expect(scanLedger([secret], [new TokenError('ERR_SESSION_ENDED', 'The refresh token was rejected.'), { key: 'default', cause: 'refresh' }])).toEqual([])
    issuedSecret(secret)
    producedByLibrary({ key: 'default' })
    expect(takeLedger()).toEqual({ issued: [secret], produced: [{ key: 'default' }] })
    expect(takeLedger()).toEqual({ issued: [], produced: [] })
  })
})
