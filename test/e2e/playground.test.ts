// End to end: start the playground (Vite + its mock API) as `npm start` does, drive it in real
// Chromium by clicking, assert on what the page says (numbers in words, not pixels), check it with
// axe-core, and save screenshots (desktop and phone).
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Browser, BrowserContextOptions, Page } from 'playwright-core'
import { createServer, type ViteDevServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from './browser.ts'

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js')
const DESKTOP = { width: 1280, height: 900 }
const PHONE = { width: 390, height: 844 }
const FULL_JWT = /eyJ[\w-]{20,}\.[\w-]{20,}/
const FULL_REFRESH_TOKEN = /srt_[0-9a-f]{32}/

let server: ViteDevServer
let browser: Browser
let url: string
let desktop: Page
let phone: Page
/** Responses that were 404 and uncaught page errors, per page. */
const problems = new Map<Page, string[]>()

async function open(viewport = DESKTOP, hash = '', options: BrowserContextOptions = {}): Promise<Page> {
  const context = await browser.newContext({ viewport, ...options })
  const page = await context.newPage()
  const list: string[] = []
  problems.set(page, list)
  page.on('response', (response) => void (response.status() === 404 && list.push(`404 ${response.url()}`)))
  page.on('pageerror', (error) => list.push(`page error: ${error.message}`))
  await page.goto(`${url}${hash}`)
  await page.waitForSelector(`body[data-ready="${new URLSearchParams(hash.slice(1)).get('profile') ?? 'stemp'}/${new URLSearchParams(hash.slice(1)).get('storage') ?? 'memory'}"]`)
  return page
}

/** Click and wait until the page has finished that action (each action bumps body[data-actions]). */
async function act(page: Page, selector: string): Promise<string> {
  const before = Number(await page.evaluate(() => document.body.dataset.actions))
  await page.click(selector)
  await page.waitForFunction((count) => Number(document.body.dataset.actions) > count, before, { polling: 50, timeout: 25_000 })
  return page.locator('#summary-line').innerText()
}
async function choose(page: Page, selector: string, value: string) {
  const before = Number(await page.evaluate(() => document.body.dataset.actions))
  await page.selectOption(selector, value)
  await page.waitForFunction((count) => Number(document.body.dataset.actions) > count, before, { polling: 50, timeout: 25_000 })
}
const text = (page: Page, selector: string) => page.locator(selector).innerText()
const counters = async (page: Page) => ({
  api: Number(await text(page, '#c-api')),
  unauthorized: Number(await text(page, '#c-401')),
  tokenCalls: Number(await text(page, '#c-token')),
  reuse: Number(await text(page, '#c-reuse')),
})

async function axe(page: Page) {
  await page.addScriptTag({ path: AXE })
  return page.evaluate(async () => {
    const result = await (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
      resultTypes: ['violations'],
    })
    return result.violations.map(({ id, impact, help, nodes }) => ({ id, impact, help, targets: nodes.map((node) => node.target.join(' ')).slice(0, 5) }))
  })
}

beforeAll(async () => {
  server = await createServer({ configFile: 'playground/vite.config.ts', server: { port: 0, host: '127.0.0.1' }, logLevel: 'error' })
  await server.listen()
  url = server.resolvedUrls!.local[0]!
  browser = await launchChromium()
  mkdirSync('test-results', { recursive: true })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

describe('playground in Chromium', () => {
  it('guided mode at 1280×900: sign in → expire (the live panel says expired) → 50 requests → 50 × 401 → 1 token call → 50 replayed', async () => {
    desktop = await open(DESKTOP)
    expect(await text(desktop, '#g-fire-expect')).toBe('Expected: 50 requests → 50 × 401 → 1 token call → 50 replayed, all OK.')
    expect(await act(desktop, '#g-signin')).toMatch(/^Signed in: the app stored access token #\d+ \(valid 20 s\) and refresh token generation 1\.$/)
    expect(await text(desktop, '#g-signin-outcome')).toContain('refresh token generation 1')
    expect(await text(desktop, '#generation')).toMatch(/^srt_…[0-9a-f]{6} · generation 1$/)

    await act(desktop, '#g-expire')
    // The live panel agrees with the server: the token is expired, not counting down.
    expect(await text(desktop, '#expiry')).toMatch(/^expired: the server expired it early/)
    expect(await text(desktop, '#server-view')).toContain('expired')

    expect(await act(desktop, '#g-fire')).toBe('50 requests → 50 × 401 → 1 token call → 50 replayed, all OK')
    expect(await text(desktop, '#g-fire-outcome')).toBe('Done: 50 requests → 50 × 401 → 1 token call → 50 replayed, all OK')
    expect(await text(desktop, '#summary-explain')).toContain('single token call')
    // Counted per burst by the server (not since the mock started).
    expect(await counters(desktop)).toEqual({ api: 100, unauthorized: 50, tokenCalls: 1, reuse: 0 })
    expect(await text(desktop, '#generation')).toMatch(/generation 2$/)
    expect(await text(desktop, '#expiry')).toMatch(/^in \d+\.\d s/)
    // The timeline: the first 20 requests as lanes, the one token call on top of them.
    expect(await desktop.locator('#timeline g[data-kind="request"]').count()).toBe(20)
    expect(await desktop.locator('#timeline g[data-kind="token"]').count()).toBe(1)
    expect(await desktop.locator('#timeline .t-band').textContent()).toMatch(/^POST …\/oauth2\/refresh → 200/)
    expect(await desktop.locator('#timeline .seg-unauthorized').count()).toBe(20)
    expect(await desktop.locator('#timeline .seg-ok').count()).toBe(20)
    expect(await desktop.locator('#step-3').getAttribute('data-state')).toBe('done')
    expect(await desktop.locator('#step-4').getAttribute('data-state')).toBe('next')
  })

  it('the inspector shows request #1: the old token → 401 → POST …/refresh (generation 1 → 2) → replay with the new token, all masked', async () => {
    await desktop.click('#g-read')
    await desktop.waitForFunction(() => document.querySelector('#g-read-outcome')!.textContent!.startsWith('Done'), undefined, { polling: 50 })
    expect(await text(desktop, '#sequence-summary')).toMatch(
      /^Request #1: GET with access token #(\d+) → 401 Unauthorized → POST …\/oauth2\/refresh \(refresh token generation 1 → 2\) → 200 → replay with access token #(?!\1)\d+ → 200 OK$/,
    )
    const oldToken = await text(desktop, '#sequence code[data-token="old"]')
    const newToken = await text(desktop, '#sequence code[data-token="new"]')
    expect(oldToken).toMatch(/^Bearer eyJ…[\w-]{6}$/)
    expect(newToken).toMatch(/^Bearer eyJ…[\w-]{6}$/)
    expect(newToken).not.toBe(oldToken)
    // The token call: the refresh token sent (generation 1) and the one issued (generation 2), masked.
    const sent = desktop.locator('#sequence code[data-refresh="sent"]')
    const issued = desktop.locator('#sequence code[data-refresh="issued"]')
    expect(await sent.innerText()).toMatch(/^srt_…[0-9a-f]{6}$/)
    expect(await issued.innerText()).toMatch(/^srt_…[0-9a-f]{6}$/)
    expect(await desktop.locator('#sequence dd', { has: desktop.locator('code[data-refresh="sent"]') }).innerText()).toContain('refresh token generation 1')
    expect(await desktop.locator('#sequence dd', { has: desktop.locator('code[data-refresh="issued"]') }).innerText()).toContain('refresh token generation 2')
    expect(await text(desktop, '#sequence')).toContain('WWW-Authenticate')
    // Another request of the burst can be picked too.
    await desktop.selectOption('#inspect-request', '50')
    expect(await text(desktop, '#sequence-summary')).toMatch(/^Request #50: .*GET with access token #\d+ → 401 Unauthorized → .*replay with access token #\d+ → 200 OK$/)
    await desktop.selectOption('#inspect-request', '1')
    // Tokens are only ever shown masked.
    const html = await desktop.content()
    expect(html).not.toMatch(FULL_JWT)
    expect(html).not.toMatch(FULL_REFRESH_TOKEN)
    await desktop.screenshot({ path: 'test-results/playground-desktop.png', fullPage: true })
  })

  it('guided mode at 390×844: one column, no sideways scrolling, each result comes into view, the same numbers', async () => {
    phone = await open(PHONE)
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width)
    await act(phone, '#g-signin')
    // The result panel sits below the tour on a phone: the page brings the summary into view.
    const inView = () => phone.waitForFunction(() => {
      const box = document.querySelector('#summary')!.getBoundingClientRect()
      return box.top >= 0 && box.bottom <= innerHeight
    }, undefined, { polling: 50, timeout: 5_000 })
    await inView()
    // The result panel offers the next step, so the tour goes on without scrolling back.
    expect(await text(phone, '#next-step-btn')).toBe('Next step 2: Expire the access token (server side)')
    await act(phone, '#next-step-btn')
    await inView()
    expect(await text(phone, '#next-step-btn')).toBe('Next step 3: Fire 50 concurrent requests')
    expect(await act(phone, '#next-step-btn')).toBe('50 requests → 50 × 401 → 1 token call → 50 replayed, all OK')
    await inView()
    expect(await counters(phone)).toEqual({ api: 100, unauthorized: 50, tokenCalls: 1, reuse: 0 })
    await phone.click('#next-step-btn')
    await phone.waitForFunction(() => document.querySelector('#g-read-outcome')!.textContent!.startsWith('Done'), undefined, { polling: 50 })
    expect(await text(phone, '#sequence-summary')).toContain('refresh token generation 1 → 2')
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width)
    // Timeline labels are drawn at real size (the chart's viewBox follows its width): ≥ 11 px.
    const fontSize = await phone.evaluate(() => {
      const label = document.querySelector<SVGTextElement>('#timeline .t-lane')!
      const svg = document.querySelector('#timeline') as SVGSVGElement
      return Number.parseFloat(getComputedStyle(label).fontSize) * (svg.getBoundingClientRect().width / svg.viewBox.baseVal.width)
    })
    expect(fontSize).toBeGreaterThanOrEqual(11)
    await phone.evaluate(() => scrollTo(0, 0))
    await phone.screenshot({ path: 'test-results/playground-phone.png', fullPage: true })
  })

  it('accessibility: axe-core finds no serious or critical violations (desktop and phone, after a burst); /favicon.ico exists', async () => {
    for (const page of [desktop, phone]) {
      const violations = await axe(page)
      expect(violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')).toEqual([])
      expect(violations).toEqual([]) // moderate and minor ones too
      expect(problems.get(page)).toEqual([]) // no 404 (favicon included), no page error
    }
    expect((await fetch(new URL('/favicon.ico', url))).status).toBe(200)
    // The live region that announces each result.
    expect(await desktop.locator('#summary').getAttribute('aria-live')).toBe('polite')
    await phone.context().close()
  })

  it('the code panel shows the exact configuration, copies it, and its README links resolve', async () => {
    const code = await text(desktop, '#code')
    expect(code).toContain(`refreshTokenGrant({\n    url: '${url}mock/stemp/api/v1/apps/oauth2/refresh',\n    body: 'json',\n  })`)
    expect(code).toContain(`origins: ['${url.replace(/\/$/, '')}']`)
    expect(code).toContain('refreshBefore: 5_000')
    expect(code).toContain('hooks: auth.hooks')
    await desktop.context().grantPermissions(['clipboard-read', 'clipboard-write'])
    await desktop.click('#copy')
    await desktop.waitForFunction(() => document.querySelector('#copy-status')!.textContent === 'Copied to the clipboard.', undefined, { polling: 50 })
    expect(await desktop.evaluate(() => navigator.clipboard.readText())).toBe(code)
    for (const href of await desktop.locator('#code-panel a').evaluateAll((links) => links.map((link) => (link as HTMLAnchorElement).href))) {
      const response = await fetch(href)
      expect(response.status).toBe(200)
      expect(await response.text()).toContain(`id="${new URL(href).hash.slice(1)}"`)
    }
  })

  it('Reset zeroes the counters and clears the chart; the next burst is counted on its own', async () => {
    expect(await act(desktop, '#reset')).toBe('Counters, chart and tour reset. The session is unchanged.')
    expect(await counters(desktop)).toEqual({ api: 0, unauthorized: 0, tokenCalls: 0, reuse: 0 })
    expect(await desktop.locator('#timeline g[data-kind]').count()).toBe(0)
    expect(await desktop.locator('#inspect-request').isDisabled()).toBe(true)
    expect(await desktop.locator('#step-3').getAttribute('data-state')).not.toBe('done')
    expect(await text(desktop, '#token')).toMatch(/^eyJ…/) // still signed in
    // The phone's "Expire" expired every stemp token, this tab's too: one refresh, then a fresh token.
    expect(await act(desktop, '#fire-one')).toBe('1 request → 1 × 401 → 1 token call → 1 replayed, all OK')
    expect(await counters(desktop)).toEqual({ api: 2, unauthorized: 1, tokenCalls: 1, reuse: 0 })
    expect(await act(desktop, '#fire-one')).toBe('1 request → 0 × 401 → 0 token calls → 0 replayed, all OK')
    expect(await counters(desktop)).toEqual({ api: 1, unauthorized: 0, tokenCalls: 0, reuse: 0 })
    expect(await text(desktop, '#summary-explain')).toContain('still fresh')
  })

  it('token endpoint 503: one-line explanation, stored tokens kept; back to normal, the same refresh token works', async () => {
    await choose(desktop, '#mode', '5xx')
    await act(desktop, '#expire')
    await desktop.fill('#count', '5')
    expect(await act(desktop, '#fire')).toMatch(/^5 requests → 5 × 401 → [1-3] token calls? → 0 replayed, all failed \(ERR_TOKEN_ENDPOINT\)$/)
    const explained = await text(desktop, '#summary-explain')
    expect(explained).toContain('ERR_TOKEN_ENDPOINT: the token endpoint answered 503')
    expect(explained).toContain('Stored tokens kept')
    expect(await text(desktop, '#token')).toMatch(/^eyJ…/)
    await choose(desktop, '#mode', 'normal')
    await desktop.waitForTimeout(1_200) // failed refreshes back off for 1 s
    expect(await act(desktop, '#fire')).toBe('5 requests → 5 × 401 → 1 token call → 5 replayed, all OK')
  })

  it('403: ERR_INSUFFICIENT_SCOPE explained in a banner, no refresh', async () => {
    await act(desktop, '#forbid')
    expect(await act(desktop, '#fire-one')).toBe('1 request → 0 × 401 → 0 token calls → 0 replayed, all failed (ERR_INSUFFICIENT_SCOPE)')
    expect(await text(desktop, '#session-banner')).toMatch(/^403 Forbidden\. ERR_INSUFFICIENT_SCOPE: .*missing: pass:delete.*Stored tokens kept\./)
  })

  it('revoke → one rejected token call ends the session; the banner says the tokens were deleted', async () => {
    await act(desktop, '#revoke')
    await desktop.fill('#count', '10')
    // Requests whose 401 arrived after the rejected refresh find the session already gone: ERR_LOGGED_OUT.
    expect(await act(desktop, '#fire')).toMatch(/^10 requests → 10 × 401 → 1 token call → 0 replayed, all failed \((ERR_SESSION_ENDED|ERR_LOGGED_OUT)(, (ERR_SESSION_ENDED|ERR_LOGGED_OUT))?\)$/)
    expect(await counters(desktop)).toEqual({ api: 10, unauthorized: 10, tokenCalls: 1, reuse: 0 })
    const banner = await text(desktop, '#session-banner')
    expect(banner).toContain('ERR_SESSION_ENDED')
    expect(banner).toContain('Stored tokens deleted')
    expect(await text(desktop, '#token')).toBe('none: sign in')
  })

  it('sign in again, log out: requests fail with ERR_TOKEN_MISSING and the page says to sign in', async () => {
    await act(desktop, '#signin')
    expect(await text(desktop, '#session-banner')).toBe('')
    expect(await act(desktop, '#logout')).toContain('Logged out')
    expect(await text(desktop, '#token')).toBe('none: sign in')
    expect(await act(desktop, '#fire-one')).toBe('1 request → 0 × 401 → 0 token calls → 0 replayed, all failed (ERR_TOKEN_MISSING)')
    expect(await text(desktop, '#summary-explain')).toContain('Sign in first')
  })

  it('changing the token lifetime says the session ended, and the live panel agrees', async () => {
    await act(desktop, '#signin')
    expect(await text(desktop, '#token')).toMatch(/^eyJ…/)
    const before = Number(await desktop.evaluate(() => document.body.dataset.actions))
    await desktop.fill('#ttl', '30')
    await desktop.locator('#ttl').blur()
    await desktop.waitForFunction((count) => Number(document.body.dataset.actions) > count, before, { polling: 50 })
    expect(await text(desktop, '#summary-line')).toBe('Access tokens now live 30 s. The mock API restarted, so the session ended: sign in again.')
    expect(await text(desktop, '#token')).toBe('none: sign in')
    expect(await text(desktop, '#session-banner')).toContain('30 s access tokens')
    expect(await act(desktop, '#signin')).toContain('(valid 30 s)')
  })

  it('IndexedDB storage: a second tab shares the session, one token call serves both tabs, logout reaches both', async () => {
    const tabA = await open(DESKTOP, '#profile=stemp&storage=indexeddb')
    await act(tabA, '#signin')
    const tabB = await tabA.context().newPage()
    await tabB.goto(`${url}#profile=stemp&storage=indexeddb`)
    await tabB.waitForSelector('body[data-ready="stemp/indexeddb"]')
    // Tab B never signed in: it reads the session from IndexedDB.
    await tabB.waitForFunction(() => document.querySelector('#token')!.textContent!.startsWith('eyJ…'), undefined, { polling: 100 })
    expect(await text(tabB, '#token')).toBe(await text(tabA, '#token'))
    await act(tabA, '#expire')
    await tabA.fill('#count', '20')
    await tabB.fill('#count', '20')
    const [summaryA, summaryB] = await Promise.all([act(tabA, '#fire'), act(tabB, '#fire')])
    expect(summaryA).toMatch(/^20 requests → \d+ × 401 → [01] token calls? → \d+ replayed, all OK$/)
    expect(summaryB).toMatch(/^20 requests → \d+ × 401 → [01] token calls? → \d+ replayed, all OK$/)
    const [a, b] = [await counters(tabA), await counters(tabB)]
    expect(a.tokenCalls + b.tokenCalls).toBe(1)
    expect(a.reuse + b.reuse).toBe(0)
    await act(tabA, '#logout')
    await tabB.waitForFunction(() => document.querySelector('#token')!.textContent === 'none: sign in', undefined, { polling: 100 })
    await tabB.waitForFunction(() => document.querySelector('#session-banner')!.textContent!.startsWith('Signed out in another tab'), undefined, { polling: 100 })
    await tabA.context().close()
  }, 60_000)

  it('the other profiles: Stenn, DokStamp (X-Tenant in the inspector), Starship, and the static token (controls disabled with a reason)', async () => {
    const page = await open(DESKTOP)
    for (const profile of ['stenn', 'dokstamp', 'starship']) {
      await choose(page, '#profile', profile)
      await page.waitForSelector(`body[data-ready="${profile}/memory"]`)
      expect(await text(page, '#profile-desc')).not.toBe('')
      expect(await page.locator('#timeline g[data-kind]').count()).toBe(0) // nothing left from the previous profile
      expect(await act(page, '#signin')).toMatch(/^Signed in: the app stored access token #\d+/)
      await act(page, '#expire')
      await page.fill('#count', '5')
      expect(await act(page, '#fire')).toBe('5 requests → 5 × 401 → 1 token call → 5 replayed, all OK')
      expect(await text(page, '#code')).toContain(profile === 'starship' ? 'jsonLoginGrant(' : 'clientCredentialsGrant(')
      if (profile === 'dokstamp') {
        expect(await text(page, '#sequence')).toMatch(/X-Tenant\s+acme/)
        expect(await text(page, '#code')).toContain(`headers: { 'X-Tenant': 'acme' }`)
      }
    }
    await choose(page, '#profile', 'static')
    await page.waitForSelector('body[data-ready="static/memory"]')
    for (const id of ['signin', 'expire', 'revoke', 'forbid', 'logout', 'g-signin', 'g-expire']) expect(await page.locator(`#${id}`).getAttribute('aria-disabled')).toBe('true')
    expect(await text(page, '#signin-reason')).toBe('Not for this profile: A static API token is configured in code: there is nothing to sign in to.')
    expect(await page.locator('#mode').isDisabled()).toBe(true)
    expect(await text(page, '#mode-reason')).toContain('No token endpoint')
    const actions = await page.evaluate(() => document.body.dataset.actions)
    await page.click('#expire', { force: true }) // does nothing (Playwright itself treats it as disabled)
    expect(await page.evaluate(() => document.body.dataset.actions)).toBe(actions)
    await page.fill('#count', '5')
    expect(await act(page, '#fire')).toBe('5 requests → 0 × 401 → 0 token calls → 0 replayed, all OK')
    expect(await text(page, '#code')).toContain('staticToken(process.env.STEMP_API_TOKEN!)')
    expect(await page.content()).not.toMatch(/sk_live_[0-9a-f]{24}/)
    await page.context().close()
  }, 60_000)

  it('prefers-reduced-motion: nothing animates, and the chart is drawn once per action instead of live', async () => {
    const page = await open(DESKTOP, '#profile=stenn&storage=memory', { reducedMotion: 'reduce' })
    await act(page, '#signin')
    await choose(page, '#mode', 'slow') // the token endpoint answers after 3 s
    await act(page, '#expire')
    await page.fill('#count', '5')
    const before = Number(await page.evaluate(() => document.body.dataset.actions))
    await page.click('#fire')
    await page.waitForSelector('body[data-busy="fire"]')
    const chart = () => page.locator('#timeline').innerHTML()
    const first = await chart()
    await page.waitForTimeout(500)
    expect(await chart()).toBe(first) // a live-updating chart would have moved on
    await page.waitForFunction((count) => Number(document.body.dataset.actions) > count, before, { polling: 50 })
    expect(await text(page, '#summary-line')).toBe('5 requests → 5 × 401 → 1 token call → 5 replayed, all OK')
    expect(await page.locator('#timeline g[data-kind="request"]').count()).toBe(5)
    expect(await page.evaluate(() => document.getAnimations().length)).toBe(0)
    expect(await page.evaluate(() => getComputedStyle(document.querySelector('button')!).transitionDuration)).toBe('0s')
    await choose(page, '#mode', 'normal')
    await page.context().close()
  })
  it('DPoP profile: sign in (token-endpoint nonce challenge) → burst → rotate the API nonce → 20 × nonce challenge → 0 token calls → 20 retried; proofs decoded in the inspector; axe clean', async () => {
    const page = await open(DESKTOP, '#profile=dpop&storage=memory')
    const FULL_DPOP_REFRESH_TOKEN = /drt_[0-9a-f]{32}/
    expect(await text(page, '#profile-desc')).toContain('DPoP')
    expect(await page.locator('#rotate-nonce').getAttribute('aria-disabled')).toBeNull()
    expect(await page.locator('#c-nonce-box').isVisible()).toBe(true)
    expect(await act(page, '#signin')).toMatch(/^Signed in: the app stored access token #\d+ \(valid \d+ s\) and refresh token generation 1\.$/)
    // The code exchange: no nonce yet → 400 use_dpop_nonce → one retry with a fresh proof → DPoP-bound tokens.
    expect(await text(page, '#sequence-summary')).toMatch(/^Token calls: POST …\/dpop\/token → 400 \(nonce challenge\) → POST …\/dpop\/token \(refresh token generation 1\) → 200$/)
    expect(await text(page, '#sequence')).toContain('bound to key …')
    expect(await text(page, '#generation')).toMatch(/^drt_…[0-9a-f]{6} · generation 1$/)

    await page.fill('#count', '20')
    expect(await act(page, '#fire')).toBe('20 requests → 0 × 401 → 0 token calls → 0 replayed, all OK')
    expect(await act(page, '#rotate-nonce')).toMatch(/^The server now wants DPoP nonce #2\./)
    expect(await act(page, '#fire')).toBe('20 requests → 20 × nonce challenge → 0 token calls → 20 retried with a fresh proof, all OK')
    expect(await text(page, '#summary-explain')).toContain('never causes a refresh')
    expect(await counters(page)).toEqual({ api: 40, unauthorized: 0, tokenCalls: 0, reuse: 0 })
    expect(await text(page, '#c-nonce')).toBe('20')
    // The timeline tells a nonce challenge (dotted) from a 401 that needs a refresh (hatched).
    expect(await page.locator('#timeline .seg-nonce').count()).toBe(20)
    expect(await page.locator('#timeline .seg-unauthorized').count()).toBe(0)
    expect(await page.locator('#timeline .seg-ok').count()).toBe(20)
    expect(await page.locator('#timeline g[data-kind="token"]').count()).toBe(0)
    expect(await page.locator('#timeline g[data-i="1"] title').textContent()).toBe('Request #1: 401 (nonce challenge) → retried with a fresh proof → 200')

    // The inspector: request #1's challenge and retry, each with its own decoded proof.
    expect(await text(page, '#sequence-summary')).toMatch(/^Request #1: GET with access token #(\d+) → 401 Unauthorized \(nonce challenge\) → retry with a fresh proof and access token #\1 → 200 OK$/)
    const steps = page.locator('#sequence .seq-step')
    expect(await steps.count()).toBe(2)
    expect(await steps.nth(0).getAttribute('data-challenge')).toBe('nonce')
    expect(await steps.nth(1).locator('.pill').innerText()).toBe('nonce retry')
    const first = await steps.nth(0).innerText()
    expect(first).toMatch(/WWW-Authenticate\s+DPoP error="use_dpop_nonce"/)
    expect(first).toMatch(/DPoP-Nonce\s+[\w-]{16,}/)
    expect(first).toContain('nonce #1: stale, the server now wants #2')
    expect(await page.locator('#sequence code', { hasText: /^DPoP eyJ…/ }).first().innerText()).toMatch(/^DPoP eyJ…[\w-]{6}$/)
    expect(await page.locator('#sequence [data-proof="dpop"]').count()).toBe(2)
    const claim = (name: string) => steps.nth(1).locator(`code[data-claim="${name}"]`).innerText()
    expect(await claim('htm')).toBe('GET')
    expect(await claim('htu')).toBe(`${url}mock/dpop/api/v1/payments`)
    expect(await claim('ath')).toMatch(/^[\w-]{43}$/)
    expect(await claim('jti')).toMatch(/^[\w-]{16,}$/)
    expect(await steps.nth(1).locator('code[data-proof-header="typ"]').innerText()).toBe('dpop+jwt')
    expect(await steps.nth(1).locator('code[data-proof-header="jwk"]').innerText()).toBe('EC P-256')
    expect(await claim('nonce')).not.toBe(await steps.nth(0).locator('code[data-claim="nonce"]').innerText())
    expect(await steps.nth(1).innerText()).toContain('verified by the server: signature, typ, htm, htu, iat, jti, nonce, ath, cnf.jkt ✓')
    expect(await steps.nth(1).innerText()).toContain('signature: elided')

    // An expired token is still a 401 and one refresh, drawn as such: not a nonce retry.
    await act(page, '#expire')
    expect(await act(page, '#fire')).toBe('20 requests → 20 × 401 → 1 token call → 20 replayed, all OK')
    expect(await page.locator('#timeline .seg-unauthorized').count()).toBe(20)
    expect(await page.locator('#timeline .seg-nonce').count()).toBe(0)
    expect(await text(page, '#generation')).toMatch(/generation 2$/)

    // The code panel: the DPoP sender and the sign-in through it.
    const code = await text(page, '#code')
    expect(code).toContain(`import { dpop, browserDPoPKey } from 'ky-token-refresh/dpop'`)
    expect(code).toContain('const sender = dpop({ key: browserDPoPKey() })')
    expect(code).toContain('\n  sender,\n})')
    expect(code).toContain(`refreshTokenGrant({\n    url: '${url}mock/dpop/token',\n    clientId: 'playground-spa',\n  })`)
    expect(code).toContain('await sender.fetch(')
    const readme = await fetch(await page.locator('#readme-recipe').evaluate((link) => (link as HTMLAnchorElement).href))
    expect(await readme.text()).toContain('id="sender-constrained-tokens-dpop-rfc-9449"')

    // Tokens and proofs only ever masked or decoded.
    const html = await page.content()
    expect(html).not.toMatch(FULL_JWT)
    expect(html).not.toMatch(FULL_DPOP_REFRESH_TOKEN)
    const violations = await axe(page)
    expect(violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')).toEqual([])
    expect(problems.get(page)).toEqual([])
    await page.screenshot({ path: 'test-results/playground-dpop.png', fullPage: true })
    await page.context().close()
  }, 60_000)
})
