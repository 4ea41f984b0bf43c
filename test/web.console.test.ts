import t from 'tap'
import { ADMIN_SCOPES, TEST_AUDIENCE } from './helper.js'
import { personId, personListing } from './factories.js'
import { browserUnavailable, launchBrowser, openPage, screenshot, startWebGateway } from './browser.js'
import type { KeyFile } from '../src/client/gw1-client.js'
import { APPEAL_GROUNDS } from '../src/modules/applications/applications.models.js'

const DAY_MS = 86_400_000
/** The China (UTC+8) calendar day of an instant, as the supervision report keys it. */
const chinaDay = (ms: number) => new Date(ms + 8 * 3_600_000).toISOString().slice(0, 10)
const keyUpload = (key: KeyFile) => ({ name: `${key.principalId}.json`, mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(key)) })

t.test('the console signs its calls in the browser and charts the seeded supervision figures', { skip: browserUnavailable() }, async (t) => {
  const gw = await startWebGateway(t)
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write', 'appeals:review'] })
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['match', 'feedback:write'], profile: { lists: ['dishonest', 'restricted'], fields: ['name'], scenarios: ['TICKET_AIR'] } })
  const samr = await gw.addPrincipal({ id: 'samr', kind: 'agency', scopes: ['match', 'feedback:write'], profile: { lists: ['dishonest'], fields: ['name'], scenarios: ['COMPANY_OFFICER_REG'] } })
  const admin = await gw.addPrincipal({ id: 'admin-console', kind: 'admin', scopes: ADMIN_SCOPES })
  const push = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), personListing(2), personListing(3)] })
  t.equal(push.json().summary.created, 3, 'listings pushed')
  await gw.app.matchSync.catchUp()

  // Five days of matching: day i has 2 hits and i + 1 misses for caac, and i samr hits.
  const now = Date.now()
  const expected = new Map<string, { matches: number; hits: number }>()
  let feedbackGiven = 0
  for (let i = 0; i < 5; i++) {
    const at = now - (4 - i) * DAY_MS
    gw.clock.set(at)
    const subjects = [{ idNumber: personId(1) }, { idNumber: personId(2) }, ...Array.from({ length: i + 1 }, (_, k) => ({ idNumber: personId(100 + k) }))]
    const batch = await gw.signed(caac, 'POST', '/v1/match/batch', { subjects, scenario: 'TICKET_AIR' })
    t.equal(batch.statusCode, 200, `batch match on day ${i}`)
    for (let k = 0; k < i; k++) t.equal((await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(3), scenario: 'COMPANY_OFFICER_REG' })).statusCode, 200)
    if (i === 4) {
      const receiptId = batch.json().results[0].receiptId
      t.equal((await gw.signed(caac, 'POST', '/v1/feedback', { receiptId, action: 'restricted', measures: ['CAAC-AIR'] })).statusCode, 201)
      feedbackGiven++
    }
    expected.set(chinaDay(at), { matches: subjects.length + i, hits: 2 + i })
  }
  // A correction application filed 40 days ago: open, and past its review deadline today.
  gw.clock.set(now - 40 * DAY_MS)
  const appeal = await gw.app.inject({
    method: 'POST', url: '/v1/public/appeals',
    payload: { listingId: push.json().results[0].listingId, ground: Object.keys(APPEAL_GROUNDS)[0], applicant: { name: '张1', idNumber: personId(1), contact: '13800000000' }, statement: '已全部履行' },
  })
  t.equal(appeal.statusCode, 201, 'appeal filed')
  gw.clock.set(Date.now())
  // Heartbeats run every PROCESS_HEARTBEAT_SECONDS; one now records the caught-up index.
  await gw.app.processHeartbeat.beat()

  const browser = await launchBrowser(t)
  const page = await openPage(t, browser)
  const sent: string[] = []
  page.on('request', (req) => sent.push(JSON.stringify({ url: req.url(), headers: req.headers(), body: req.postData() })))
  await page.goto(`${gw.url}/console/`)
  await page.getByLabel('网关标识（aud）').fill(TEST_AUDIENCE)
  await page.getByLabel('密钥文件').setInputFiles(keyUpload(admin))
  await page.locator('#chart-matches').waitFor()
  t.match(await page.locator('#key-status').textContent(), /admin-console/)

  t.test('each day’s bars carry the matches and hits made that day', async (t) => {
    for (const [day, figures] of expected) {
      const category = day.slice(5)
      t.equal(await page.locator(`#chart-matches rect[data-series="比对"][data-category="${category}"]`).getAttribute('data-value'), String(figures.matches), `matches on ${day}`)
      t.equal(await page.locator(`#chart-matches rect[data-series="命中"][data-category="${category}"]`).getAttribute('data-value'), String(figures.hits), `hits on ${day}`)
    }
    const decisions = await page.locator('#chart-decisions rect').evaluateAll((rects) => rects.reduce((sum, r) => sum + Number(r.getAttribute('data-value')), 0))
    t.equal(decisions, [...expected.values()].reduce((sum, d) => sum + d.matches, 0), 'every matched subject got a decision')
  })

  t.test('per-agency totals, feedback and queues', async (t) => {
    const caacRow = page.locator('#agency-totals tr[data-agency="caac"]')
    t.equal(await caacRow.locator('[data-field="matches"]').textContent(), String(2 * 5 + 15))
    t.equal(await caacRow.locator('[data-field="hits"]').textContent(), '10')
    t.equal(await caacRow.locator('[data-field="feedback"]').textContent(), String(feedbackGiven))
    t.equal(await page.locator('#agency-totals tr[data-agency="samr"] [data-field="hits"]').textContent(), '10')
    t.equal(await page.locator('#chart-feedback rect[data-category="caac"]').getAttribute('data-value'), '10', '1 of 10 hits reported: 10%')
    t.equal(await page.locator('#application-queues tr[data-court="京0105"][data-kind="appeal"] [data-field="open"]').textContent(), '1')
    t.equal(await page.locator('#application-queues tr[data-court="京0105"][data-kind="appeal"] [data-field="overdue"]').textContent(), '1')
    t.equal(await page.locator('#overdue-items tbody tr').count(), 1, 'the overdue appeal is listed')
    t.match(await page.locator('#overdue-items tbody tr').textContent(), appeal.json().reviewDueOn)
    t.equal(await page.locator('#processes tbody tr').count(), 1, 'this gateway process reports its index')
    t.equal(await page.locator('#processes [data-field="lag"]').textContent(), '0')
  })
  await screenshot(page, 'console')

  t.test('the English toggle relabels the charts', async (t) => {
    await page.getByRole('button', { name: 'English' }).click()
    await page.locator('#chart-matches rect[data-series="Matches"]').first().waitFor({ state: 'attached' })
    t.equal(await page.locator('#match-heading').textContent(), 'Matches, hits and decisions')
    await screenshot(page, 'console-en')
  })

  t.test('the private key never leaves the browser', async (t) => {
    t.ok(sent.length >= 4, 'the page made its calls')
    t.notOk(sent.some((line) => line.includes(admin.privateJwk.d as string)), 'no request carried the private key')
    t.ok(sent.filter((line) => line.includes('/v1/supervision/')).every((line) => line.includes('GW1 ')), 'every API call was signed')
  })

  t.test('a wrong gateway id or a key without the scope is explained, not charted', async (t) => {
    const other = await openPage(t, browser)
    await other.goto(`${gw.url}/console/?lang=en`)
    await other.getByLabel('Gateway id (aud)').fill('another-gateway')
    await other.getByLabel('Key file').setInputFiles(keyUpload(admin))
    await other.getByText('Wrong gateway id').waitFor()
    t.equal(await other.locator('#chart-matches').count(), 0)
    await other.getByLabel('Gateway id (aud)').fill(TEST_AUDIENCE)
    await other.getByLabel('Key file').setInputFiles(keyUpload(caac))
    await other.getByText('lacks the supervision:read scope').waitFor()
    await other.getByLabel('Key file').setInputFiles({ name: 'x.json', mimeType: 'application/json', buffer: Buffer.from('{"principalId":"x"}') })
    await other.getByText('Not a gateway key file').waitFor()
    t.equal(await other.locator('#chart-matches').count(), 0)
  })
})
