import { createHash } from 'node:crypto'
import type { Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { APPEAL_GROUNDS } from '../src/modules/applications/applications.models.js'
import { dictionary } from '../web/portal/strings.js'
import { browserUnavailable, launchBrowser, openPage, screenshot, startWebGateway } from './browser.js'
import { caseNumber, personId, personListing } from './factories.js'
import type { TestGateway } from './helper.js'

// Decided once, before any test: with REQUIRE_BROWSER=1 a missing browser or build fails the file.
const unavailable = browserUnavailable() ?? false

/** domain.md §7.1: digits 11–14 (birth month and day) replaced by ****. */
const masked = (id: string) => `${id.slice(0, 10)}****${id.slice(14)}`
/** A real 1×1 PNG: the page checks a document's type by its first bytes. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC', 'base64')
const ZHANG = personId(1)
/** Another 张1, born elsewhere: the masked id tells them apart. */
const OTHER_ZHANG = personId(2, '19900505', '310104')
const TRACKING_CODE = /^[0-9A-Z]{4}(-[0-9A-Z]{4}){5}$/

async function seed(t: Test, gw: TestGateway) {
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write', 'appeals:review', 'repairs:review'] })
  const higher = await gw.addPrincipal({ id: 'court-bj-03', kind: 'court', courtCode: '京03', scopes: ['listings:write', 'appeals:review', 'repairs:review'], profile: { subordinateCourtCodes: ['京0105'] } })
  const push = await gw.signed(court, 'POST', '/v1/listings', { items: [
    personListing(1),
    personListing(2, { caseNumber: caseNumber(2), subject: { kind: 'person', name: '张1', idNumber: OTHER_ZHANG } }),
  ] })
  t.equal(push.json().summary?.created, 2, push.body)
  return { court, higher, ids: push.json().results.map((r: { listingId: string }) => r.listingId) as string[] }
}

/** No horizontal scrolling of the page itself. */
async function overflow(page: Page) {
  return page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth }))
}

/** The application's status as the tracking view shows it (its API name is in data-status). */
async function shownStatus(page: Page, status: string) {
  const badge = page.locator(`[data-status="${status}"]`)
  await badge.waitFor()
  return (await badge.textContent())?.trim()
}

t.test('every portal string has a Chinese and an English text', async (t) => {
  const incomplete = Object.entries(dictionary).filter(([, entry]) => !entry.zh.trim() || !entry.en.trim()).map(([key]) => key)
  t.same(incomplete, [], `${Object.keys(dictionary).length} strings, none missing a language`)
  const vars = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()
  t.same(Object.entries(dictionary).filter(([, e]) => vars(e.zh).join() !== vars(e.en).join()).map(([key]) => key), [], 'both languages take the same placeholders')
})

t.test('the portal: search by name and masked id, a listing’s details, an appeal with a document, tracking through rejection, reconsideration and correction; phone width; English', { skip: unavailable }, async (t) => {
  const gw = await startWebGateway(t)
  const { court, higher, ids } = await seed(t, gw)
  const browser = await launchBrowser(t)
  const page = await openPage(t, browser)
  page.setDefaultTimeout(10_000)
  const requests: string[] = []
  page.on('request', (req) => requests.push(req.url()))
  const apiCalls = (path: string) => requests.filter((u) => new URL(u).pathname.startsWith(path)).length

  await page.goto(`${gw.url}/portal/`)
  t.equal(await page.locator('html').getAttribute('lang'), 'zh-CN', 'Chinese by default')
  await page.getByRole('heading', { level: 1, name: '失信被执行人公开查询' }).waitFor()
  await page.getByRole('heading', { level: 2, name: '查询失信被执行人和限制消费人员' }).waitFor()

  // Checked in the page: no name, no request.
  await page.getByRole('button', { name: '查询', exact: true }).click()
  t.match(await page.getByRole('alert').first().textContent(), '请输入完整姓名或名称')
  t.equal(await page.getByLabel('姓名或名称').getAttribute('aria-invalid'), 'true')
  t.equal(apiCalls('/v1/public/'), 0, 'nothing sent without a name')

  // A refusal is explained from its problem code, on the field it names.
  await page.getByLabel('姓名或名称').fill('张1')
  const wrongCheck = ZHANG.slice(0, 17) + (ZHANG[17] === '0' ? '1' : '0')
  await page.getByLabel('证件号码').fill(wrongCheck)
  await page.getByRole('button', { name: '查询', exact: true }).click()
  await page.getByText('公民身份号码的校验码不正确，请核对。').waitFor()
  t.equal(await page.getByLabel('证件号码').getAttribute('aria-invalid'), 'true', 'identity.id_check_digit marks the identifier')

  // 1. Name and masked id find the one 张1, shown masked exactly as the API returns it.
  await page.getByLabel('证件号码').fill(masked(ZHANG))
  await page.getByLabel('名单类型').selectOption('dishonest')
  await page.getByRole('button', { name: '查询', exact: true }).click()
  await page.getByRole('heading', { level: 2, name: '查询结果' }).waitFor()
  await page.getByText('第 1 页，本页 1 条。').first().waitFor()
  const results = page.getByRole('list').filter({ has: page.getByRole('heading', { level: 3 }) })
  t.equal(await results.getByRole('listitem').count(), 1, 'the masked id narrows the two 张1 to one')
  const card = results.getByRole('listitem').first()
  t.equal(await card.getByRole('heading', { level: 3 }).textContent(), '张1')
  const shownId = (await card.getByText(/\*{4}/).textContent())!.trim()
  t.equal(shownId, masked(ZHANG), 'the identifier is the masked one')
  t.match(shownId, /\*\*\*\*/)
  const text = await page.evaluate(() => document.body.innerText)
  t.notOk(text.includes(ZHANG), 'the full id appears nowhere in the page text')
  t.notOk((await page.content()).includes(ZHANG), 'nor in its markup')
  t.notOk(text.includes(masked(OTHER_ZHANG)), 'the other 张1 is not shown')
  await screenshot(page, 'portal-search')

  // 2. The details: every public field of the result, from memory.
  const searches = apiCalls('/v1/public/listings')
  await card.getByRole('link', { name: /^查看详情/ }).click()
  await page.getByRole('heading', { level: 2, name: '公开信息详情：张1' }).waitFor()
  t.ok(page.url().endsWith(`#/listing/${ids[0]}`), 'a hash route per listing')
  const details = await page.evaluate(() => document.body.innerText)
  for (const fact of ['失信被执行人名单', '自然人', masked(ZHANG), '男', '北京市朝阳区人民法院', caseNumber(1), '（2024）京0105民初1号', '支付货款及利息', '全部未履行', '¥120,000.00', '违反财产报告制度', '2025-03-01', '2025-06-01']) {
    t.ok(details.includes(fact), `details show ${fact}`)
  }
  t.notOk(details.includes(ZHANG), 'no full id in the details')
  await screenshot(page, 'portal-listing')
  await page.getByRole('link', { name: '返回查询结果' }).click()
  await page.getByRole('heading', { level: 2, name: '查询结果' }).waitFor()
  t.equal(apiCalls('/v1/public/listings'), searches, 'back to the results without a new search')
  t.equal(await page.getByLabel('证件号码').inputValue(), masked(ZHANG), 'the query is kept')
  await page.getByRole('link', { name: /^查看详情/ }).click()

  // 3. The appeal, with a PNG, after the page refused what it must.
  await page.getByRole('link', { name: '申请纠正' }).click()
  await page.getByRole('heading', { level: 2, name: '纠正申请' }).waitFor()
  const grounds = await page.getByLabel('申请事由').locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value).filter(Boolean))
  t.same(grounds, Object.keys(APPEAL_GROUNDS), 'the grounds are the API’s enum values')
  t.equal(await page.getByLabel('申请人姓名或名称').inputValue(), '张1')
  await page.getByRole('button', { name: '提交申请' }).click()
  t.match(await page.getByRole('alert').filter({ hasText: '请填写' }).textContent(), /申请事由.*申请人公民身份号码.*联系方式.*事实和理由/)
  t.equal(await page.getByLabel('申请事由').getAttribute('aria-invalid'), 'true')

  const files = page.getByLabel('证明材料')
  await files.setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a document') })
  await page.getByText('“notes.txt”不是 PDF、JPEG 或 PNG 文件，未添加。').waitFor()
  await files.setInputFiles({ name: 'renamed.png', mimeType: 'image/png', buffer: Buffer.from('plain text named like a picture') })
  await page.getByText('“renamed.png”不是 PDF、JPEG 或 PNG 文件，未添加。').waitFor()
  await files.setInputFiles({ name: 'big.pdf', mimeType: 'application/pdf', buffer: Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(2 * 1024 * 1024)]) })
  await page.getByText('“big.pdf”超过 2 MiB，未添加。').waitFor()
  // The way a user adds one: the page's own button opens the browser's file chooser.
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.getByRole('button', { name: '添加证明材料' }).click()])
  t.ok(chooser.isMultiple(), 'several documents at once')
  await chooser.setFiles({ name: '还款凭证.png', mimeType: 'image/png', buffer: PNG })
  await page.getByRole('button', { name: '移除 还款凭证.png' }).waitFor()

  await page.getByLabel('申请事由').selectOption('inaccurate')
  await page.getByLabel('申请人公民身份号码').fill(ZHANG)
  await page.getByLabel('联系方式').fill('13800000000')
  await page.getByLabel('事实和理由').fill('已偿还部分款项，公布的未履行金额不准确。')
  await page.getByLabel('字段').selectOption('amountOutstanding')
  await page.getByLabel('正确内容').fill('50000')
  await page.getByRole('button', { name: '提交申请' }).click()

  await page.getByRole('heading', { level: 2, name: '申请已提交' }).waitFor()
  const code = (await page.getByText(TRACKING_CODE).textContent())!.trim()
  t.match(code, TRACKING_CODE, 'the tracking code is shown')
  t.ok(await page.getByText('请抄写或保存这个查询码').isVisible(), 'with the advice to keep it')
  await page.getByRole('heading', { level: 3, name: '办理情况' }).waitFor()
  t.match(await shownStatus(page, 'under_review'), '审查中', 'the tracking view shows the status')
  const tracking = await page.evaluate(() => document.body.innerText)
  for (const fact of ['纠正申请', '公布的信息不准确', masked(ZHANG), '审查期限', '还款凭证.png']) t.ok(tracking.includes(fact), `tracking shows ${fact}`)
  t.notOk(tracking.includes(ZHANG), 'the tracking view shows no full id')
  t.notOk(page.url().includes(code.slice(0, 4)), 'the tracking code is not in the URL')
  await screenshot(page, 'portal-appeal-filed')

  // What the page sent: the document's exact bytes, the ground, the requested change.
  const [stored] = await gw.database.query<{ file_name: string; media_type: string; sha256: string }>('SELECT file_name, media_type, sha256 FROM application_attachments')
  t.same(stored, { file_name: '还款凭证.png', media_type: 'image/png', sha256: createHash('sha256').update(PNG).digest('hex') })
  const queue = (await gw.signed(court, 'GET', '/v1/reviews/appeals')).json().items
  t.match(queue, [{ listingId: ids[0], ground: 'inaccurate', requestedChanges: { amountOutstanding: 50000 }, applicant: { name: '张1', identifier: masked(ZHANG), contact: '13800000000' } }])

  // 4. The court rejects; refresh shows it, with the reconsideration form the window allows.
  const rejected = await gw.signed(court, 'POST', `/v1/reviews/appeals/${queue[0].id}/decision`, { outcome: 'reject', reasons: '经核实，未履行金额无误' })
  t.equal(rejected.json().status, 'rejected', rejected.body)
  await page.getByRole('button', { name: '刷新' }).click()
  t.match(await shownStatus(page, 'rejected'), '已驳回', 'refresh shows the decision')
  await page.getByRole('heading', { level: 4, name: '法院决定' }).waitFor()
  t.ok(await page.getByText('经核实，未履行金额无误').first().isVisible(), 'with its reasons')
  await page.getByRole('heading', { level: 4, name: '申请复议' }).waitFor()
  t.ok(await page.getByText(`申请复议截止日期`).isVisible(), 'and the reconsideration deadline')
  await screenshot(page, 'portal-tracking-decided')

  await page.getByRole('button', { name: '提交复议申请' }).click()
  t.match(await page.getByRole('alert').filter({ hasText: '复议理由' }).textContent(), '请填写复议理由')
  await page.getByLabel('复议理由').fill('已提交还款凭证，请上级法院复议。')
  await page.getByRole('button', { name: '提交复议申请' }).click()
  t.match(await shownStatus(page, 'reconsideration'), '复议审查中', 'the reconsideration is filed from the page')
  t.equal(await page.getByRole('heading', { level: 4, name: '申请复议' }).count(), 0, 'and the form is gone')

  const higherQueue = (await gw.signed(higher, 'GET', '/v1/reviews/appeals')).json().items
  const corrected = await gw.signed(higher, 'POST', `/v1/reviews/appeals/${higherQueue[0].id}/decision`, { outcome: 'accept', correction: { amountOutstanding: 50000 }, reasons: '复议成立' })
  t.equal(corrected.json().status, 'corrected', corrected.body)
  await page.getByRole('button', { name: '刷新' }).click()
  t.match(await shownStatus(page, 'corrected'), '已纠正')
  const final = await page.evaluate(() => document.body.innerText)
  for (const fact of ['未履行金额：50000', '纠正完成期限', '复议成立']) t.ok(final.includes(fact), `after reconsideration: ${fact}`)
  await screenshot(page, 'portal-tracking-corrected')

  // 6. English: labels and the view switch, what was shown stays.
  await page.getByRole('button', { name: 'English' }).click()
  t.equal(await page.locator('html').getAttribute('lang'), 'en')
  await page.getByRole('heading', { level: 3, name: 'Progress' }).waitFor()
  t.match(await shownStatus(page, 'corrected'), 'Corrected')
  t.ok(await page.getByRole('button', { name: 'Refresh' }).isVisible())
  await page.getByRole('link', { name: 'Search the lists' }).click()
  await page.getByRole('heading', { level: 2, name: 'Search the dishonest-debtor and consumption-restriction lists' }).waitFor()
  t.ok(await page.getByLabel('Full name or entity name').isVisible(), 'the name field is labelled in English')
  t.ok(await page.getByLabel('Identifier').isVisible())
  t.ok(await page.getByText('Page 1: 1 result(s).').first().isVisible(), 'the results are relabelled too')
  await screenshot(page, 'portal-english')
  await page.getByRole('button', { name: '中文' }).click()
  t.ok(await page.getByLabel('姓名或名称').isVisible(), 'and back to Chinese')

  // Only this origin was asked for anything.
  t.same(requests.filter((u) => !u.startsWith(`${gw.url}/`)), [], 'no request left the gateway’s origin')

  // 5. A phone: no horizontal scrolling on any view.
  const phone = await openPage(t, browser, { width: 375, height: 800 })
  phone.setDefaultTimeout(10_000)
  await phone.goto(`${gw.url}/portal/`)
  // By keyboard: Enter submits the search, Enter follows a focused link, focus lands on the new view's heading.
  await phone.getByLabel('姓名或名称').fill('张1')
  await phone.getByLabel('姓名或名称').press('Enter')
  await phone.getByRole('heading', { level: 2, name: '查询结果' }).waitFor()
  t.equal(await phone.getByRole('link', { name: /^查看详情/ }).count(), 2, 'both 张1 without an id')
  const sizes = await overflow(phone)
  t.ok(sizes.scrollWidth <= sizes.clientWidth, `search: no horizontal overflow at 375 px (${sizes.scrollWidth} ≤ ${sizes.clientWidth})`)
  await screenshot(phone, 'portal-phone')
  await phone.getByRole('link', { name: /^查看详情/ }).first().focus()
  await phone.keyboard.press('Enter')
  await phone.getByRole('heading', { level: 2, name: /^公开信息详情/ }).waitFor()
  t.match(await phone.evaluate(() => document.activeElement?.textContent), /^公开信息详情：张1$/, 'focus moves to the details heading')
  let s = await overflow(phone)
  t.ok(s.scrollWidth <= s.clientWidth, `details: ${s.scrollWidth} ≤ ${s.clientWidth}`)
  await phone.getByRole('link', { name: '申请纠正' }).click()
  await phone.getByRole('heading', { level: 2, name: '纠正申请' }).waitFor()
  s = await overflow(phone)
  t.ok(s.scrollWidth <= s.clientWidth, `application form: ${s.scrollWidth} ≤ ${s.clientWidth}`)
  await screenshot(phone, 'portal-phone-appeal')
  await phone.getByRole('link', { name: '查询办理进度' }).click()
  await phone.getByLabel('查询码').fill(code)
  await phone.getByRole('button', { name: '查询进度' }).click()
  await shownStatus(phone, 'corrected')
  s = await overflow(phone)
  t.ok(s.scrollWidth <= s.clientWidth, `tracking: ${s.scrollWidth} ≤ ${s.clientWidth}`)
  await screenshot(phone, 'portal-phone-tracking')
})

t.test('over the public rate limit, the page says to wait (429 rate_limit.exceeded with Retry-After)', { skip: unavailable }, async (t) => {
  const gw = await startWebGateway(t)
  // The public scope allows 30 requests a minute per address (infra/rate-limit.ts): use them up from here.
  const statuses: number[] = []
  for (let i = 0; i < 30; i++) statuses.push((await fetch(`${gw.url}/v1/public/listings?name=${encodeURIComponent('张三')}`)).status)
  t.same(statuses, Array(30).fill(200))
  const browser = await launchBrowser(t)
  const page = await openPage(t, browser)
  page.setDefaultTimeout(10_000)
  await page.goto(`${gw.url}/portal/`)
  await page.getByLabel('姓名或名称').fill('张三')
  await page.getByRole('button', { name: '查询', exact: true }).click()
  const alert = page.getByRole('alert')
  await alert.filter({ hasText: '请求过于频繁' }).waitFor()
  t.match(await alert.textContent(), /请在 \d+ 秒后再试/, 'with the Retry-After wait')
  t.equal(await page.getByLabel('姓名或名称').getAttribute('aria-invalid'), null, 'no field is blamed')
  t.equal(await page.getByRole('heading', { name: '查询结果' }).count(), 0, 'and no results are shown')
  await page.getByRole('button', { name: 'English' }).click()
  t.match(await alert.textContent(), /Too many requests\. .* try again in \d+ seconds\./, 'in English too')
})
