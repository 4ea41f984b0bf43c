import t, { type Test } from 'tap'
import { CertificateError, verifyCertificate } from '../src/client/gw1-client.js'
import { ADMIN_SCOPES, buildTestGateway } from './helper.js'
import { personId, personListing } from './factories.js'

// 2026-09-18 (a Friday) at noon, China time. The Mid-Autumn (09-25..27) and National Day (10-01..07)
// holidays follow; 10-10 (a Saturday) is a make-up working day (calendars/cn-2026.json).
const NOON_2026_09_18 = Date.parse('2026-09-18T04:00:00Z')
const DAY = 86_400
/** domain.md §7.1: digits 11–14 (birth month and day) replaced by ****. */
const masked = (id: string) => `${id.slice(0, 10)}****${id.slice(14)}`

async function setup(t: Test) {
  const gw = await buildTestGateway(t)
  gw.clock.set(NOON_2026_09_18)
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write', 'appeals:review', 'repairs:review'] })
  const higher = await gw.addPrincipal({ id: 'court-bj-03', kind: 'court', courtCode: '京03', scopes: ['listings:write', 'appeals:review', 'repairs:review'], profile: { subordinateCourtCodes: ['京0105'] } })
  const otherCourt = await gw.addPrincipal({ id: 'court-sh-0104', kind: 'court', courtCode: '沪0104', scopes: ['appeals:review', 'repairs:review'] })
  const admin = await gw.addPrincipal({ id: 'admin-1', kind: 'admin', scopes: ADMIN_SCOPES })
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['match'], profile: { lists: ['dishonest', 'restricted'], fields: ['name', 'amountOutstanding'], scenarios: ['TICKET_AIR'] } })
  const push = await gw.signed(court, 'POST', '/v1/listings', { items: [1, 2, 3, 4, 5].map((n) => personListing(n)) })
  t.equal(push.json().summary.created, 5, push.body)
  await gw.app.matchSync.catchUp()
  const ids = push.json().results.map((r: { listingId: string }) => r.listingId) as string[]
  return { gw, court, higher, otherCourt, caac, admin, ids }
}

const appeal = (listingId: string, n: number, extra: Record<string, unknown> = {}) => ({
  listingId, ground: 'inaccurate', applicant: { name: `张${n}`, idNumber: personId(n), contact: '13800000000' },
  statement: '执行款已部分履行，公布的未履行金额不准确', requestedChanges: { amountOutstanding: 50000 }, ...extra,
})

t.test('an appeal accepted with a field correction: deadlines across the National Day holiday, overdue flag, correction in match results', async (t) => {
  const { gw, court, caac, admin, ids } = await setup(t)
  const filed = await gw.app.inject({ method: 'POST', url: '/v1/public/appeals', payload: appeal(ids[0]!, 1) })
  t.equal(filed.statusCode, 201, filed.body)
  const { trackingCode } = filed.json()
  t.match(trackingCode, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){5}$/)
  // 15 days from 09-18, the start day not counted, end on 10-03: a National Day holiday, so the first working day after it.
  t.match(filed.json(), { status: 'under_review', receivedOn: '2026-09-18', reviewDueOn: '2026-10-08' })

  const matched = (await gw.signed(caac, 'POST', '/v1/match', { idNumber: personId(1), scenario: 'TICKET_AIR' })).json()
  t.equal(matched.listings[0].listing.appealPending, true, 'agencies see the pending appeal')

  gw.clock.set(NOON_2026_09_18 + 20 * DAY * 1000) // 10-08, the last day
  let queue = (await gw.signed(court, 'GET', '/v1/reviews/appeals')).json().items
  t.same(queue.map((i: { listingId: string; overdue: boolean }) => [i.listingId, i.overdue]), [[ids[0], false]])
  gw.clock.advance(DAY) // 10-09
  queue = (await gw.signed(court, 'GET', '/v1/reviews/appeals')).json().items
  t.equal(queue[0].overdue, true, 'past its review deadline')
  t.equal((await gw.app.inject({ method: 'GET', url: `/v1/public/appeals/${trackingCode}` })).json().overdue, true)
  t.same((await gw.signed(admin, 'GET', '/v1/supervision/applications')).json(), {
    asOf: '2026-10-09', courts: [{ courtCode: '京0105', kind: 'appeal', open: 1, overdue: 1 }],
    overdueItems: [{ id: queue[0].id, kind: 'appeal', courtCode: '京0105', status: 'under_review', receivedOn: '2026-09-18', dueOn: '2026-10-08', listingId: ids[0] }],
  }, 'supervision flags it too, and names the item')

  const decided = await gw.signed(court, 'POST', `/v1/reviews/appeals/${queue[0].id}/decision`, { outcome: 'accept', reasons: '核实部分履行', correction: { amountOutstanding: 50000, subjectName: '张一' } })
  t.equal(decided.statusCode, 200, decided.body)
  // 3 working days after 10-09: 10-10 (make-up Saturday), 10-12, 10-13.
  t.match(decided.json(), { status: 'corrected', correctionDueOn: '2026-10-13' })
  await gw.app.matchSync.catchUp()
  const after = (await gw.signed(caac, 'POST', '/v1/match', { idNumber: personId(1), scenario: 'TICKET_AIR', name: '张一' })).json()
  t.equal(after.listings[0].listing.amountOutstanding, 50000, 'the correction went through the listing path')
  t.equal(after.listings[0].listing.subject.name, '张一')
  t.equal(after.listings[0].nameMismatch, false, 'matched under the corrected name')
  t.equal(after.listings[0].listing.appealPending, false)
  t.equal(after.listings[0].listing.version, 2)

  const tracked = (await gw.app.inject({ method: 'GET', url: `/v1/public/appeals/${trackingCode.toLowerCase()}` })).json()
  t.same(tracked.history.map((h: { status: string; by: string }) => [h.status, h.by]), [['under_review', 'applicant'], ['corrected', 'court']])
  t.match(tracked, { status: 'corrected', decision: { outcome: 'accept', decidedOn: '2026-10-09' }, applicant: { identifier: masked(personId(1)) } })
  t.notOk(JSON.stringify(tracked).includes(personId(1)), 'the tracking page shows no identifier in full')
  const again = await gw.signed(court, 'POST', `/v1/reviews/appeals/${queue[0].id}/decision`, { outcome: 'reject', reasons: 'x' })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'applications.already_decided')
})

t.test('an appeal accepted with removal stops matching; a rejected one is reconsidered by the higher court', async (t) => {
  const { gw, court, higher, otherCourt, caac, ids } = await setup(t)
  const removal = (await gw.app.inject({ method: 'POST', url: '/v1/public/appeals', payload: appeal(ids[1]!, 2, { ground: 'not_to_be_listed' }) })).json()
  const rejected = (await gw.app.inject({ method: 'POST', url: '/v1/public/appeals', payload: appeal(ids[2]!, 3) })).json()
  const late = (await gw.app.inject({ method: 'POST', url: '/v1/public/appeals', payload: appeal(ids[3]!, 4) })).json()
  const queue = (await gw.signed(court, 'GET', '/v1/reviews/appeals')).json().items as { id: string; listingId: string }[]
  const idOf = (listingId: string) => queue.find((i) => i.listingId === listingId)!.id

  t.equal((await gw.signed(otherCourt, 'POST', `/v1/reviews/appeals/${idOf(ids[1]!)}/decision`, { outcome: 'accept', removal: true })).json().code, 'applications.not_your_court')
  t.equal((await gw.signed(court, 'POST', `/v1/reviews/appeals/${idOf(ids[1]!)}/decision`, { outcome: 'accept' })).json().code, 'applications.correction_required')
  t.equal((await gw.signed(court, 'POST', `/v1/reviews/appeals/${idOf(ids[1]!)}/decision`, { outcome: 'reject' })).json().code, 'applications.reasons_required')
  const removed = await gw.signed(court, 'POST', `/v1/reviews/appeals/${idOf(ids[1]!)}/decision`, { outcome: 'accept', removal: true, reasons: '不应纳入' })
  t.equal(removed.json().status, 'removed', removed.body)
  await gw.app.matchSync.catchUp()
  t.equal((await gw.signed(caac, 'POST', '/v1/match', { idNumber: personId(2) })).json().matched, false, 'the removal reached the match index')
  t.equal((await gw.app.inject({ method: 'GET', url: `/v1/public/appeals/${removal.trackingCode}` })).json().status, 'removed')

  gw.clock.set(NOON_2026_09_18 + 11 * DAY * 1000) // 09-29
  for (const l of [ids[2]!, ids[3]!]) {
    const r = await gw.signed(court, 'POST', `/v1/reviews/appeals/${idOf(l)}/decision`, { outcome: 'reject', reasons: '金额无误' })
    // 10 days from 09-29: 10-09, a working day.
    t.match(r.json(), { status: 'rejected', reconsiderationWindowEndsOn: '2026-10-09' }, r.body)
  }
  gw.clock.set(NOON_2026_09_18 + 21 * DAY * 1000) // 10-09, the last day of the window
  const filed = await gw.app.inject({ method: 'POST', url: `/v1/public/appeals/${rejected.trackingCode}/reconsideration`, payload: { statement: '请求上级法院复议' } })
  t.equal(filed.statusCode, 200, filed.body)
  // 15 days from 10-09 end on 10-24, a Saturday: the period runs to Monday 10-26.
  t.match(filed.json(), { status: 'reconsideration', reconsiderationDueOn: '2026-10-26' })
  gw.clock.advance(DAY) // 10-10: too late for the other one
  const tooLate = await gw.app.inject({ method: 'POST', url: `/v1/public/appeals/${late.trackingCode}/reconsideration`, payload: { statement: '迟了' } })
  t.equal(tooLate.statusCode, 409)
  t.equal(tooLate.json().code, 'applications.reconsideration_window_closed')

  t.same((await gw.signed(court, 'GET', '/v1/reviews/appeals')).json().items, [], 'the lower court no longer holds it')
  const higherQueue = (await gw.signed(higher, 'GET', '/v1/reviews/appeals')).json().items
  t.same(higherQueue.map((i: { stage: string; listingId: string }) => [i.stage, i.listingId]), [['reconsideration', ids[2]]])
  t.equal((await gw.signed(court, 'POST', `/v1/reviews/appeals/${higherQueue[0].id}/decision`, { outcome: 'accept', removal: true })).json().code, 'applications.not_your_court', 'the lower court cannot decide its own reconsideration')
  const reversed = await gw.signed(higher, 'POST', `/v1/reviews/appeals/${higherQueue[0].id}/decision`, { outcome: 'accept', correction: { amountOutstanding: 10000 }, reasons: '复议成立' })
  t.equal(reversed.json().status, 'corrected', reversed.body)
  const tracked = (await gw.app.inject({ method: 'GET', url: `/v1/public/appeals/${rejected.trackingCode}` })).json()
  t.same(tracked.history.map((h: { status: string }) => h.status), ['under_review', 'rejected', 'reconsideration', 'corrected'])
  t.match(tracked.reconsideration, { filedOn: '2026-10-09', decision: { outcome: 'accept', decidedBy: 'court-bj-03' } })
})

t.test('credit repair: approval removes the listing with a signed certificate that verifies, and a tampered one does not', async (t) => {
  const { gw, court, caac, ids } = await setup(t)
  const pdf = Buffer.from('%PDF-1.4 履行完毕证明').toString('base64')
  const stranger = await gw.app.inject({ method: 'POST', url: '/v1/public/repairs', payload: { ...appeal(ids[4]!, 5, { ground: 'full_performance' }), applicant: { name: '李四', idNumber: personId(9), contact: 'x@example.cn' } } })
  t.equal(stranger.statusCode, 403)
  t.equal(stranger.json().code, 'applications.identity_mismatch', 'a repair for someone else’s listing')
  const filed = await gw.app.inject({ method: 'POST', url: '/v1/public/repairs', payload: { ...appeal(ids[4]!, 5, { ground: 'full_performance', requestedChanges: undefined }), attachments: [{ fileName: '履行证明.pdf', mediaType: 'application/pdf', contentBase64: pdf }] } })
  t.equal(filed.statusCode, 201, filed.body)
  const dup = await gw.app.inject({ method: 'POST', url: '/v1/public/repairs', payload: appeal(ids[4]!, 5, { ground: 'full_performance', requestedChanges: undefined }) })
  t.equal(dup.json().code, 'applications.already_pending')
  const item = (await gw.signed(court, 'GET', '/v1/reviews/repairs')).json().items[0]
  t.equal((await gw.signed(court, 'POST', `/v1/reviews/appeals/${item.id}/decision`, { outcome: 'accept', removal: true })).statusCode, 404, 'a repair is not decided on the appeals path')
  const approved = await gw.signed(court, 'POST', `/v1/reviews/repairs/${item.id}/decision`, { outcome: 'accept', reasons: '已全部履行' })
  t.equal(approved.json().status, 'approved', approved.body)
  const certificateId = approved.json().certificateId
  await gw.app.matchSync.catchUp()
  t.equal((await gw.signed(caac, 'POST', '/v1/match', { idNumber: personId(5) })).json().matched, false)

  const tracked = (await gw.app.inject({ method: 'GET', url: `/v1/public/repairs/${filed.json().trackingCode}` })).json()
  t.equal(tracked.certificateId, certificateId)
  t.match(tracked.attachments, [{ fileName: '履行证明.pdf', mediaType: 'application/pdf', size: Buffer.from(pdf, 'base64').length }])
  const check = (await gw.app.inject({ method: 'GET', url: `/v1/certificates/${certificateId}/verify` })).json()
  t.match(check, { valid: true, signatureValid: true, listingRemovedByRepair: true, certificate: { typ: 'credit-repair-certificate', listingId: ids[4], court: { code: '京0105' }, subject: { identifier: masked(personId(5)) } } })
  const jwks = (await gw.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
  t.match(await verifyCertificate(check.jws, jwks), { id: certificateId, decidedOn: '2026-09-18' }, 'the SDK verifies it offline')
  const [h, p, s] = check.jws.split('.')
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), listingId: ids[0] })).toString('base64url')
  await t.rejects(verifyCertificate(`${h}.${forged}.${s}`, jwks), CertificateError, 'an altered certificate does not verify')
  const otherKeys = { keys: [{ ...jwks.keys[0], x: jwks.keys[0].y }] }
  await t.rejects(verifyCertificate(check.jws, otherKeys), CertificateError, 'nor against another key')
})

t.test('bad applications are refused and change nothing', async (t) => {
  const { gw, court, ids } = await setup(t)
  await gw.signed(court, 'POST', `/v1/listings/${ids[1]}/removal`, { reason: 'performed' })
  const count = async () => (await gw.database.query<{ n: number }>('SELECT count(*)::int AS n FROM applications'))[0]!.n
  const cases: [string, Record<string, unknown>, number, string][] = [
    ['an unknown listing', appeal('6f1c1a40-0000-4000-8000-000000000000', 1), 404, 'applications.listing_not_found'],
    ['a removed listing', appeal(ids[1]!, 2), 409, 'applications.listing_not_active'],
    ['someone else’s listing', appeal(ids[0]!, 3), 403, 'applications.identity_mismatch'],
    ['a bad check digit', { ...appeal(ids[0]!, 1), applicant: { name: '张1', idNumber: '110101199003071230', contact: '1' + '3'.repeat(10) } }, 400, 'applications.bad_identifier'],
    ['no identifier', { ...appeal(ids[0]!, 1), applicant: { name: '张1', contact: '13800000000' } }, 400, 'applications.identifier_required'],
    ['an unknown ground', { ...appeal(ids[0]!, 1), ground: 'unfair' }, 400, 'request.validation'],
    ['an attachment of another type', { ...appeal(ids[0]!, 1), attachments: [{ fileName: 'a.exe', mediaType: 'application/x-msdownload', contentBase64: 'AAAA' }] }, 400, 'request.validation'],
    ['an attachment that is not base64', { ...appeal(ids[0]!, 1), attachments: [{ fileName: 'a.pdf', mediaType: 'application/pdf', contentBase64: '%%%%' }] }, 400, 'applications.bad_attachment'],
  ]
  for (const [what, payload, status, code] of cases) {
    const res = await gw.app.inject({ method: 'POST', url: '/v1/public/appeals', payload })
    t.equal(res.statusCode, status, what)
    t.equal(res.json().code, code, what)
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8', what)
  }
  const oversize = await gw.app.inject({ method: 'POST', url: '/v1/public/appeals', payload: { ...appeal(ids[0]!, 1), attachments: [{ fileName: 'big.pdf', mediaType: 'application/pdf', contentBase64: Buffer.alloc(2 * 1024 * 1024 + 3).toString('base64') }] } })
  t.equal(oversize.statusCode, 413, 'over the attachment size limit')
  t.equal(oversize.json().code, 'applications.attachment_too_large')
  t.equal(await count(), 0, 'nothing was filed')
  for (const code of ['nope', 'AAAA-AAAA-AAAA-AAAA-AAAA-AAAA', '0000-0000-0000-0000-0000-000I']) {
    const res = await gw.app.inject({ method: 'GET', url: `/v1/public/appeals/${code}` })
    t.equal(res.statusCode, code === 'nope' ? 400 : 404, code)
  }
  const filed = (await gw.app.inject({ method: 'POST', url: '/v1/public/appeals', payload: appeal(ids[0]!, 1) })).json()
  t.equal((await gw.app.inject({ method: 'GET', url: `/v1/public/repairs/${filed.trackingCode}` })).statusCode, 404, 'an appeal code is no repair code')
  t.equal((await gw.app.inject({ method: 'POST', url: `/v1/public/appeals/${filed.trackingCode}/reconsideration`, payload: { statement: 'x' } })).json().code, 'applications.not_rejected')
  t.equal((await gw.signed(court, 'GET', '/v1/reviews/appeals')).json().items.length, 1)
})
