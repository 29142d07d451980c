// End to end: start the playground (Vite + its mock API) as `npm start` does, drive it in real
// Chromium by clicking, assert on what the page shows, and save a screenshot.
import { mkdirSync } from 'node:fs'
import type { Browser, Page } from 'playwright-core'
import { createServer, type ViteDevServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from './browser.ts'

let server: ViteDevServer
let browser: Browser
let page: Page
let url: string

beforeAll(async () => {
  server = await createServer({ configFile: 'playground/vite.config.ts', server: { port: 0, host: '127.0.0.1' }, logLevel: 'error' })
  await server.listen()
  url = server.resolvedUrls!.local[0]!
  browser = await launchChromium()
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  await page.goto(url)
  await page.waitForSelector('body[data-ready="stemp/memory"]')
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

const text = (selector: string) => page.locator(selector).innerText()
const counters = async () => ({
  api: Number(await text('#c-api')),
  unauthorized: Number(await text('#c-401')),
  refreshes: Number(await text('#c-refresh')),
  reuse: Number(await text('#c-reuse')),
})

describe('playground in Chromium', () => {
  it('expire → 50 concurrent requests → exactly 1 refresh and 0 reuse detections', async () => {
    await page.click('#signin')
    await page.waitForFunction(() => document.querySelector('#token')!.textContent!.includes('…'), undefined, { polling: 100 })
    await page.click('#expire')
    await page.fill('#count', '50')
    await page.click('#fire')
    await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => li.textContent!.includes('50 request(s)')), undefined, { polling: 100 })
    await page.waitForFunction(() => document.querySelector('#c-api')!.textContent === '100', undefined, { polling: 100 })
    await page.waitForTimeout(1_500) // one more poll: nothing else arrives
    expect(await counters()).toEqual({ api: 100, unauthorized: 50, refreshes: 1, reuse: 0 })
    expect(await text('#log')).toContain('50 ok')
    expect(await text('#generation')).toBe('2') // the sign-in refresh token, then one rotation
    // Tokens are shown masked only.
    expect(await page.content()).not.toMatch(/eyJ[\w-]{20,}\.[\w-]{20,}/)
    mkdirSync('test-results', { recursive: true })
    await page.screenshot({ path: 'test-results/playground.png', fullPage: true })
  })

  it('revoke → the next requests end the session and the page says so', async () => {
    await page.click('#revoke')
    await page.fill('#count', '10')
    await page.click('#fire')
    await page.waitForSelector('#session-banner:not([hidden])')
    expect(await text('#session-banner')).toContain('ERR_SESSION_ENDED')
    // fire() refreshes the counters when its requests settle, right after logging them.
    await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => li.textContent!.includes('10 request(s)')), undefined, { polling: 100 })
    await page.waitForTimeout(1_500)
    const after = await counters()
    expect(after.refreshes).toBe(2) // one rejected refresh, shared by all 10 requests
    expect(after.reuse).toBe(0)
    await page.waitForFunction(() => document.querySelector('#token')!.textContent!.includes('none'), undefined, { polling: 100 })
  })

  it('sign in again, then log out', async () => {
    await page.click('#signin')
    await page.waitForSelector('#session-banner', { state: 'hidden' })
    await page.waitForFunction(() => document.querySelector('#token')!.textContent!.includes('…'), undefined, { polling: 100 })
    await page.click('#logout')
    await page.waitForFunction(() => document.querySelector('#token')!.textContent!.includes('none'), undefined, { polling: 100 })
    expect(await text('#session-banner')).toBe('Logged out.')
    await page.click('#fire-one')
    await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => li.textContent!.includes('ERR_TOKEN_MISSING')), undefined, { polling: 100 })
  })

  it('IndexedDB storage: a second tab shares the session, one refresh serves both, logout reaches both', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    const tabA = await context.newPage()
    await tabA.goto(`${url}#profile=stemp&storage=indexeddb`)
    await tabA.waitForSelector('body[data-ready="stemp/indexeddb"]')
    await tabA.click('#signin')
    await tabA.waitForFunction(() => document.querySelector('#token')!.textContent!.includes('…'), undefined, { polling: 100 })
    const tabB = await context.newPage()
    await tabB.goto(`${url}#profile=stemp&storage=indexeddb`)
    await tabB.waitForSelector('body[data-ready="stemp/indexeddb"]')
    // Tab B never signed in: it reads the session from IndexedDB.
    await tabB.waitForFunction(() => document.querySelector('#token')!.textContent!.includes('…'), undefined, { polling: 100 })
    expect(await tabB.locator('#token').innerText()).toBe(await tabA.locator('#token').innerText())
    const before = Number(await tabA.locator('#c-refresh').innerText())
    await tabA.click('#expire')
    await tabA.fill('#count', '20')
    await tabB.fill('#count', '20')
    await Promise.all([tabA.click('#fire'), tabB.click('#fire')])
    for (const tab of [tabA, tabB]) await tab.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => li.textContent!.includes('20 request(s)')), undefined, { polling: 100 })
    // The counters poll the mock every second: wait for the refresh to show, then one more poll.
    await tabA.waitForFunction((count) => Number(document.querySelector('#c-refresh')!.textContent) > count, before, { polling: 100 })
    await tabA.waitForTimeout(1_500)
    expect(Number(await tabA.locator('#c-refresh').innerText()) - before).toBe(1)
    expect(await tabA.locator('#c-reuse').innerText()).toBe('0')
    expect(await tabA.locator('#log').innerText()).toContain('20 ok')
    expect(await tabB.locator('#log').innerText()).toContain('20 ok')
    await tabA.click('#logout')
    await tabB.waitForFunction(() => document.querySelector('#token')!.textContent!.includes('none'), undefined, { polling: 100 })
    await context.close()
  })

  it('every other profile signs in and serves requests (Stenn, DokStamp with X-Tenant, Starship, static token)', async () => {
    for (const profile of ['stenn', 'dokstamp', 'starship', 'static']) {
      await page.selectOption('#profile', profile)
      await page.waitForSelector(`body[data-ready="${profile}/memory"]`)
      await page.click('#signin')
      await page.fill('#count', '5')
      await page.click('#fire')
      await page.waitForFunction(() => /5 request\(s\) in \d+ ms: /.test(document.querySelector('#log li')?.textContent ?? ''), undefined, { polling: 100 })
      expect(await page.locator('#log li').first().innerText()).toMatch(/5 request\(s\) in \d+ ms: 5 ok$/)
    }
  })
})
