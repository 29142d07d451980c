// Real Chromium: the DPoP key is generated once as a non-extractable ES256 pair, kept in
// IndexedDB, and is the same key after a reload, so the stored DPoP-bound tokens (public client:
// the refresh token is bound too) keep working, against oidc-provider and the jose-verifying API.
import { randomBytes } from 'node:crypto'
import type { Browser, Page } from 'playwright-core'
import { createServer, type ViteDevServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from '../e2e/browser.ts'
import { authorize, REDIRECT_URI, startAuthorizationServer, startResourceServer, type AuthorizationServer, type ResourceServer } from './servers.ts'

let vite: ViteDevServer
let browser: Browser
let as: AuthorizationServer
let rs: ResourceServer
let page: Page

const ready = () => page.waitForFunction(() => (window as any).ready === true, undefined, { polling: 100 })
const call = <T>(name: string, ...args: unknown[]) => page.evaluate(([name, args]) => (window as any).page[name as string](...(args as unknown[])), [name, args] as const) as Promise<T>

beforeAll(async () => {
  let issuer = ''
  rs = await startResourceServer(() => issuer)
  as = await startAuthorizationServer({ resource: `${rs.origin}/` })
  issuer = as.issuer
  vite = await createServer({ root: 'test/dpop/browser', configFile: false, server: { port: 0, host: '127.0.0.1' }, logLevel: 'error' })
  await vite.listen()
  browser = await launchChromium()
  page = await (await browser.newContext()).newPage()
  await page.goto(`${vite.resolvedUrls!.local[0]}?${new URLSearchParams({ as: as.issuer, rs: rs.origin })}`)
  await ready()
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await vite?.close()
  await rs?.close()
  await as?.close()
})

describe('DPoP in real Chromium', () => {
  it('a non-extractable ES256 key in IndexedDB signs for the session, and is the same key after a reload', async () => {
    type Info = { jkt: string; alg: string; type: string; extractable: boolean; exported: string; publicKeyExtractable: boolean }
    const first = await call<Info>('info')
    expect(first).toMatchObject({ alg: 'ES256', type: 'private', extractable: false, exported: 'InvalidAccessError', publicKeyExtractable: true })
    const verifier = randomBytes(32).toString('base64url')
    const code = await authorize(as.issuer, 'spa', verifier)
    expect(await call('exchange', code, verifier, REDIRECT_URI)).toBe('DPoP')
    expect(await call('fire', 10)).toEqual(Array(10).fill('ok'))
    expect(rs.lastJkt).toBe(first.jkt)

    await page.reload()
    await ready()
    const second = await call<Info>('info')
    expect(second).toEqual(first) // same thumbprint: the same key, still non-extractable
    // The stored tokens (IndexedDB) still work with the reloaded key: the API accepts the proofs,
    // and the AS accepts the bound refresh token (rotated).
    const before = { ...as.counts }
    expect(await call('fire', 10)).toEqual(Array(10).fill('ok'))
    expect(await call('refresh')).toBe('refreshed')
    expect(as.counts.issued - before.issued).toBe(1)
    expect(await call('fire', 5)).toEqual(Array(5).fill('ok'))
    expect(rs.lastJkt).toBe(first.jkt)
    expect(as.counts).toMatchObject({ reuse: 0, errors: [] })
    expect(rs.counts.rejected).toEqual({})
  }, 60_000)
})
