import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { Test } from 'tap'
import { projectPath } from '../src/infra/paths.js'
import { WEB_PAGES, WEB_ROOT } from '../src/infra/web.js'
import { buildTestGateway, type TestGateway } from './helper.js'

/** Debian's Chromium (`apt-get install -y chromium`); .ci/run installs it. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** Where screenshots go (kept by CI as test artifacts; README's copies are in docs/screenshots). */
export const ARTIFACTS = projectPath('test-artifacts', 'screenshots')

/**
 * Why the browser tests cannot run here, or undefined when they can. On a developer machine without
 * Chromium they are skipped with this reason; `.ci/run` sets REQUIRE_BROWSER=1 so CI fails instead.
 */
export function browserUnavailable(): string | undefined {
  const missing = !existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`
    : !WEB_PAGES.every((page) => existsSync(join(WEB_ROOT, page, 'index.html'))) ? 'web pages not built (npm run build:web)'
      : undefined
  if (missing && process.env.REQUIRE_BROWSER === '1') throw new Error(`browser tests required but ${missing}`)
  return missing
}

/** Headless Chromium with the flags this machine needs (a closed network: no background fetches). */
export async function launchBrowser(t: Test): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  t.teardown(() => browser.close())
  return browser
}

/** A test gateway (real database, real HTTP on 127.0.0.1) serving the built pages. */
export async function startWebGateway(t: Test, env: Record<string, string> = {}): Promise<TestGateway & { url: string }> {
  const gw = await buildTestGateway(t, env)
  const url = await gw.app.listen({ host: '127.0.0.1', port: 0 })
  return Object.assign(gw, { url })
}

/** A page that fails the test on any script error or console error the page logs. */
export async function openPage(t: Test, browser: Browser, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ viewport, locale: 'zh-CN' })
  t.teardown(() => context.close())
  const page = await context.newPage()
  page.on('pageerror', (err) => t.fail(`page error: ${err.message}`))
  page.on('console', (msg) => { if (msg.type() === 'error' && !/status of (4\d\d)/.test(msg.text())) t.fail(`console error: ${msg.text()}`) })
  return page
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const path = join(ARTIFACTS, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}
