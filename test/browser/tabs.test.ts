// Real Chromium, five tabs of one origin, IndexedDB + Web Locks + BroadcastChannel, against the
// stemp fixture with strict rotation and reuse detection.
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { createServer, type ViteDevServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from '../e2e/browser.ts'
import { startFixture, type Fixture } from '../fixtures/apis.ts'

let vite: ViteDevServer
let browser: Browser
let context: BrowserContext
let api: Fixture
let pageUrl: string
const tabs: Page[] = []

async function openTab(): Promise<Page> {
  const page = await context.newPage()
  await page.goto(pageUrl)
  await page.waitForFunction(() => (window as any).ready === true, undefined, { polling: 100 })
  return page
}
// Playwright's default waitForFunction polling uses requestAnimationFrame, which a background tab
// does not run: every wait below polls on an interval instead.
const all = <T>(fn: (page: Page) => Promise<T>) => Promise.all(tabs.map(fn))
const fire = (n: number) => all((page) => page.evaluate((count) => (window as any).tab.fire(count), n) as Promise<string[]>)
const reads = () => all((page) => page.evaluate(() => (window as any).tab.reads.count) as Promise<number>)

beforeAll(async () => {
  api = await startFixture('stemp')
  vite = await createServer({ root: 'test/browser', configFile: false, server: { port: 0, host: '127.0.0.1' }, logLevel: 'error' })
  await vite.listen()
  pageUrl = `${vite.resolvedUrls!.local[0]}?api=${encodeURIComponent(api.origin)}`
  browser = await launchChromium()
  context = await browser.newContext()
  for (let i = 0; i < 5; i++) tabs.push(await openTab())
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await vite?.close()
  await api?.close()
})

describe('five Chromium tabs on one origin', () => {
  it('20 requests per tab after a server-side expiry: exactly 1 refresh, 0 reuse detections', async () => {
    await tabs[0]!.evaluate((body) => (window as any).tab.setTokens(body), api.signIn())
    await all((page) => page.evaluate(() => (window as any).tab.prime()))
    api.expireAccessTokens()
    const results = (await fire(20)).flat()
    expect(results).toHaveLength(100)
    expect(results.every((result) => result === 'ok')).toBe(true)
    expect(api.counts).toMatchObject({ token: 1, reuse: 0, concurrentRefresh: 0, unauthorized: 100, api: 200 })
  })

  it('proactive refresh at local expiry across tabs: 1 refresh, no 401s; hot path reads nothing', async () => {
    const before = { ...api.counts }
    // A token that expires in 2 s (refreshed when 1 s is left: half its lifetime).
    const session = api.signIn()
    await tabs[0]!.evaluate((body) => (window as any).tab.setTokens(body), { ...session, expires_in: 2 })
    await all((page) => page.evaluate(() => (window as any).tab.prime()))
    await new Promise((resolve) => setTimeout(resolve, 1_200))
    const results = (await fire(20)).flat()
    expect(results.every((result) => result === 'ok')).toBe(true)
    expect(api.counts.token - before.token).toBe(1)
    expect(api.counts.unauthorized - before.unauthorized).toBe(0)
    expect(api.counts.reuse).toBe(0)
    // With a valid token, 20 more requests per tab read IndexedDB zero times.
    const readsBefore = await reads()
    await fire(20)
    expect(await reads()).toEqual(readsBefore)
  })

  it('reload keeps the session (no token-endpoint call)', async () => {
    const before = api.counts.token
    await tabs[2]!.reload()
    await tabs[2]!.waitForFunction(() => (window as any).ready === true, undefined, { polling: 100 })
    const results = await tabs[2]!.evaluate(() => (window as any).tab.fire(5))
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'ok'])
    expect(api.counts.token).toBe(before)
  })

  it('a tab that dies holding the refresh lock does not deadlock the others', async () => {
    const doomed = await openTab()
    await doomed.evaluate(() => (window as any).tab.holdLock())
    const before = api.counts.token
    api.expireAccessTokens()
    const pending = tabs[1]!.evaluate(() => (window as any).tab.fire(3))
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(api.counts.token).toBe(before) // waiting for the lock
    await doomed.close() // the browser releases its locks
    expect(await pending).toEqual(['ok', 'ok', 'ok'])
    expect(api.counts.token).toBe(before + 1)
    expect(api.counts.reuse).toBe(0)
  })

  it('logout in one tab ends the session in all of them at once', async () => {
    const before = api.counts.token
    await tabs[0]!.evaluate(() => (window as any).tab.logout())
    await new Promise((resolve) => setTimeout(resolve, 100))
    const events = await tabs[3]!.evaluate(() => (window as any).tab.events as string[])
    expect(events).toContain('tokens:remote')
    const results = (await fire(2)).flat()
    expect(new Set(results)).toEqual(new Set(['ERR_TOKEN_MISSING']))
    expect(api.counts.token).toBe(before)
  })
})
