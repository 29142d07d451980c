// The whole-suite leak scan: after every test, every error and event the library handed it (as
// recorded by test/helpers.ts) is inspected at full depth (util.inspect with every hidden property,
// String, JSON, and a walk of every reachable string: cause, options, request, response, headers)
// and searched for every token, refresh token, secret and password the fixtures issued in that
// test. A hit fails the test and names the path.
import { inspect } from 'node:util'
import { afterEach, expect } from 'vitest'
import { takeLedger } from '../fixtures/secrets.ts'
import { reachableStrings } from '../leaks/scan.ts'

/** Every way a careless logger might print `value`, each labelled. */
export function loggedForms(value: unknown): { path: string; value: string }[] {
  const forms: { path: string; value: string }[] = []
  const attempt = (path: string, render: () => string | undefined) => {
    try {
      const text = render()
      if (text) forms.push({ path, value: text })
    } catch {}
  }
  attempt('inspect', () => inspect(value))
  attempt('inspect(depth ∞, hidden)', () => inspect(value, { depth: Infinity, showHidden: true }))
  attempt('String', () => String(value))
  attempt('JSON.stringify', () => JSON.stringify(value))
  return [...forms, ...reachableStrings(value)]
}

/** `[secret index, where]` for every issued secret found in the produced values. */
export function scanLedger(issued: readonly string[], produced: readonly unknown[]): string[] {
  const hits: string[] = []
  produced.forEach((value, index) => {
    for (const { path, value: text } of loggedForms(value)) {
      for (const secret of issued) if (text.includes(secret)) hits.push(`produced[${index}] ${path}: contains an issued secret (${secret.slice(0, 6)}…)`)
    }
  })
  return hits
}

let scanned = 0
afterEach(() => {
  const { issued, produced } = takeLedger()
  scanned += produced.length
  if (!issued.length || !produced.length) return
  expect(scanLedger(issued, produced), 'an error or event carries a token or secret').toEqual([])
})

/** How many errors and events this file's tests handed the scan (for the self-check). */
export const scannedSoFar = () => scanned
