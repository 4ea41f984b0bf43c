import t from 'tap'
import { browserUnavailable, launchBrowser, openPage, startWebGateway } from './browser.js'

t.test('the pages are served by the gateway with a strict CSP, and nothing outside them', { skip: browserUnavailable() }, async (t) => {
  const gw = await startWebGateway(t)
  const root = await fetch(`${gw.url}/`, { redirect: 'manual' })
  t.equal(root.status, 302)
  t.equal(root.headers.get('location'), '/portal/')
  for (const page of ['portal', 'console']) {
    const res = await fetch(`${gw.url}/${page}/`)
    t.equal(res.status, 200, `/${page}/`)
    t.match(res.headers.get('content-type'), /text\/html/)
    t.match(res.headers.get('content-security-policy'), /default-src 'self'/)
    t.equal(res.headers.get('x-frame-options'), 'DENY')
    const html = await res.text()
    t.notMatch(html, /https?:\/\//, `/${page}/ loads nothing from another origin`)
  }
  const missing = await fetch(`${gw.url}/portal/nope.js`)
  t.equal(missing.status, 404)
  t.match(missing.headers.get('content-type'), /application\/problem\+json/)

  // The page loads in Chromium with no script or CSP error (openPage fails the test on any).
  const browser = await launchBrowser(t)
  const page = await openPage(t, browser)
  await page.goto(`${gw.url}/portal/`)
  await page.getByRole('button', { name: 'English' }).click()
  t.equal(await page.locator('html').getAttribute('lang'), 'en')
})
