// Regenerates the README's playground screenshots (docs/playground.png, docs/playground-phone.png):
// the guided tour clicked through in Debian's Chromium, desktop and phone.
//   node playground/screenshots.ts        (CHROMIUM_PATH overrides /usr/bin/chromium)
import { createServer } from 'vite'
import type { Page } from 'playwright-core'
import { launchChromium } from '../test/e2e/browser.ts'

const server = await createServer({ configFile: 'playground/vite.config.ts', server: { port: 0, host: '127.0.0.1' }, logLevel: 'error' })
await server.listen()
const url = server.resolvedUrls!.local[0]!
const browser = await launchChromium()

async function act(page: Page, selector: string) {
  const before = Number(await page.evaluate(() => document.body.dataset.actions))
  await page.click(selector)
  await page.waitForFunction((count) => Number(document.body.dataset.actions) > count, before, { polling: 50 })
}

try {
  // Reduced motion: scrolling is instant, so nothing is caught mid-scroll.
  const desktop = await browser.newPage({ viewport: { width: 1280, height: 1040 }, reducedMotion: 'reduce' })
  await desktop.goto(url)
  await desktop.waitForSelector('body[data-ready="stemp/memory"]')
  for (const step of ['#g-signin', '#g-expire', '#g-fire']) await act(desktop, step)
  await desktop.evaluate(() => scrollTo(0, 0))
  await desktop.screenshot({ path: 'docs/playground.png' })

  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, reducedMotion: 'reduce' })
  await phone.goto(url)
  await phone.waitForSelector('body[data-ready="stemp/memory"]')
  await act(phone, '#g-signin')
  await act(phone, '#next-step-btn')
  await act(phone, '#next-step-btn') // fire: the page scrolls the result into view
  await phone.screenshot({ path: 'docs/playground-phone.png' })
  console.log('wrote docs/playground.png and docs/playground-phone.png')
} finally {
  await browser.close()
  await server.close()
}
