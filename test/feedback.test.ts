import t, { type Test } from 'tap'
import { ADMIN_SCOPES, buildTestGateway } from './helper.js'
import { personId, personListing } from './factories.js'

const NOON_2026_03_02 = Date.parse('2026-03-02T04:00:00Z')
const DAY = 86_400

async function setup(t: Test) {
  const gw = await buildTestGateway(t)
  gw.clock.set(NOON_2026_03_02)
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const samr = await gw.addPrincipal({ id: 'samr', kind: 'agency', scopes: ['match', 'feedback:write'], profile: { lists: ['dishonest'], fields: ['name'], scenarios: ['COMPANY_OFFICER_REG', 'ROUTINE_INSPECTION'] } })
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['match', 'feedback:write'], profile: { lists: ['dishonest', 'restricted'], fields: ['name'], scenarios: ['TICKET_AIR'] } })
  const admin = await gw.addPrincipal({ id: 'admin-1', kind: 'admin', scopes: ADMIN_SCOPES })
  const push = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), personListing(2)] })
  t.equal(push.json().summary.created, 2, push.body)
  await gw.app.matchSync.catchUp()
  return { gw, court, samr, caac, admin }
}

async function feedbackRows(gw: Awaited<ReturnType<typeof buildTestGateway>>): Promise<number> {
  return (await gw.database.query<{ n: number }>('SELECT count(*)::int AS n FROM match_feedback'))[0]!.n
}

t.test('an agency reports once per hit; a retry is idempotent, a different report is refused', async (t) => {
  const { gw, samr } = await setup(t)
  const hit = (await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(1), scenario: 'COMPANY_OFFICER_REG' })).json()
  t.same(hit.measures.map((m: { code: string }) => m.code), ['SAMR-OFFICER'])
  const body = { receiptId: hit.receiptId, action: 'restricted', measures: ['SAMR-OFFICER'], note: '不予登记为董事' }
  const first = await gw.signed(samr, 'POST', '/v1/feedback', body)
  t.equal(first.statusCode, 201, first.body)
  t.match(first.json(), { receiptId: hit.receiptId, action: 'restricted', measures: ['SAMR-OFFICER'], note: '不予登记为董事', matchedAt: new Date(NOON_2026_03_02).toISOString() })
  t.ok(first.headers['x-gw-signature'], 'signed like every answer')

  const again = await gw.signed(samr, 'POST', '/v1/feedback', { ...body, receiptId: hit.receiptId.toUpperCase() })
  t.equal(again.statusCode, 200, 'the same report again: answered with the record')
  t.same(again.json(), first.json())

  const changed = await gw.signed(samr, 'POST', '/v1/feedback', { receiptId: hit.receiptId, action: 'not_applicable' })
  t.equal(changed.statusCode, 409)
  t.equal(changed.json().code, 'feedback.conflict')
  t.equal(await feedbackRows(gw), 1)
  t.equal((await gw.database.query<{ action: string }>('SELECT action FROM match_feedback'))[0]!.action, 'restricted', 'the record is unchanged')
})

t.test('feedback on a batch subject names that subject’s receipt', async (t) => {
  const { gw, caac } = await setup(t)
  const { results } = (await gw.signed(caac, 'POST', '/v1/match/batch', { subjects: [{ idNumber: personId(9) }, { idNumber: personId(2) }], scenario: 'TICKET_AIR' })).json()
  t.same(results.map((r: { matched: boolean }) => r.matched), [false, true])
  const ok = await gw.signed(caac, 'POST', '/v1/feedback', { receiptId: results[1].receiptId, action: 'restricted', measures: ['CAAC-AIR'] })
  t.equal(ok.statusCode, 201, ok.body)
  const miss = await gw.signed(caac, 'POST', '/v1/feedback', { receiptId: results[0].receiptId, action: 'not_applicable' })
  t.equal(miss.statusCode, 422)
  t.equal(miss.json().code, 'feedback.not_a_hit', 'an unlisted subject has nothing to report on')
})

t.test('bad feedback is refused with a clear code and changes nothing', async (t) => {
  const { gw, samr, caac, admin, court } = await setup(t)
  const hit = (await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(1), scenario: 'COMPANY_OFFICER_REG' })).json()
  const caacHit = (await gw.signed(caac, 'POST', '/v1/match', { idNumber: personId(1), scenario: 'TICKET_AIR' })).json()
  const cases: [string, unknown, number, string][] = [
    ['another agency’s receipt', { receiptId: caacHit.receiptId, action: 'restricted' }, 404, 'feedback.receipt_not_found'],
    ['an unknown receipt', { receiptId: '7d444840-9dc0-4c6b-8000-000000000000', action: 'restricted' }, 404, 'feedback.receipt_not_found'],
    ['a measure the hit did not carry', { receiptId: hit.receiptId, action: 'restricted', measures: ['CAAC-AIR'] }, 422, 'feedback.unknown_measure'],
    ['measures without a restriction', { receiptId: hit.receiptId, action: 'allowed_after_review', measures: ['SAMR-OFFICER'] }, 422, 'feedback.measures_without_restriction'],
    ['an unknown action', { receiptId: hit.receiptId, action: 'ignored' }, 400, 'request.validation'],
    ['no receipt', { action: 'restricted' }, 400, 'request.validation'],
    ['a receipt that is no uuid', { receiptId: 'abc', action: 'restricted' }, 400, 'request.validation'],
    ['an extra field', { receiptId: hit.receiptId, action: 'restricted', by: 'me' }, 400, 'request.validation'],
  ]
  for (const [what, body, status, code] of cases) {
    const res = await gw.signed(samr, 'POST', '/v1/feedback', body)
    t.equal(res.statusCode, status, what)
    t.equal(res.json().code, code, what)
  }
  const foreign = await gw.signed(samr, 'POST', '/v1/feedback', { receiptId: caacHit.receiptId, action: 'restricted' })
  const unknown = await gw.signed(samr, 'POST', '/v1/feedback', { receiptId: '7d444840-9dc0-4c6b-8000-000000000000', action: 'restricted' })
  t.same({ ...foreign.json(), instance: null }, { ...unknown.json(), instance: null }, 'another agency’s receipt looks exactly like no receipt')
  for (const who of [admin, court]) {
    const res = await gw.signed(who, 'POST', '/v1/feedback', { receiptId: hit.receiptId, action: 'restricted' })
    t.equal(res.statusCode, 403, 'feedback:write is an agency scope')
  }
  t.equal(await feedbackRows(gw), 0, 'nothing was recorded')
})

t.test('supervision: per agency and day, matches, hits, decisions, feedback, overdue and measures applied', async (t) => {
  const { gw, samr, caac, admin } = await setup(t)
  // Day 1 (2026-03-02): samr matches 2 listed + 1 unlisted; caac a batch of 3 (2 listed, 1 refused item).
  const s1 = (await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(1), scenario: 'COMPANY_OFFICER_REG' })).json()
  const s2 = (await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(2), scenario: 'COMPANY_OFFICER_REG' })).json()
  await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(3), scenario: 'COMPANY_OFFICER_REG' })
  const batch = (await gw.signed(caac, 'POST', '/v1/match/batch', { subjects: [{ idNumber: personId(1) }, { idNumber: '110101199003071230' }, { idNumber: personId(2) }], scenario: 'TICKET_AIR' })).json()
  t.equal(batch.results[1].error.code, 'identity.id_check_digit')
  await gw.signed(samr, 'POST', '/v1/feedback', { receiptId: s1.receiptId, action: 'restricted', measures: ['SAMR-OFFICER'] })
  await gw.signed(caac, 'POST', '/v1/feedback', { receiptId: batch.results[0].receiptId, action: 'restricted', measures: ['CAAC-AIR'] })
  // Day 2 (2026-03-03): samr one more hit, answered as not applicable.
  gw.clock.advance(DAY)
  const s4 = (await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(2), scenario: 'ROUTINE_INSPECTION' })).json()
  await gw.signed(samr, 'POST', '/v1/feedback', { receiptId: s4.receiptId, action: 'not_applicable' })

  const report = await gw.signed(admin, 'GET', '/v1/supervision/agencies?from=2026-03-01&to=2026-03-03')
  t.equal(report.statusCode, 200, report.body)
  const r = report.json()
  t.same([r.from, r.to, r.feedbackDeadlineDays], ['2026-03-01', '2026-03-03', 7])
  t.same(r.agencies.map((a: { agency: string }) => a.agency), ['caac', 'samr'])
  const samrReport = r.agencies[1]
  t.same(samrReport.days.map((d: { day: string }) => d.day), ['2026-03-02', '2026-03-03'])
  t.match(samrReport.days[0], {
    requests: 3, matches: 3, hits: 2, decisions: { allow: 1, review: 0, deny: 2 },
    feedback: { received: 1, restricted: 1, allowedAfterReview: 0, notApplicable: 0 }, overdue: 0, measuresApplied: { 'SAMR-OFFICER': 1 },
  })
  t.match(samrReport.days[1], { requests: 1, matches: 1, hits: 1, feedback: { received: 1, notApplicable: 1 }, overdue: 0 })
  t.match(samrReport.totals, { requests: 4, matches: 4, hits: 3, feedback: { received: 2 } })
  t.match(r.agencies[0].days[0], { requests: 1, matches: 2, hits: 2, decisions: { deny: 2 }, feedback: { received: 1 }, measuresApplied: { 'CAAC-AIR': 1 } }, 'a batch is one request; its refused item is not a match')

  // Eight days on, the day-1 hits without feedback are overdue: samr s2, caac's second hit.
  gw.clock.advance(7 * DAY)
  const later = (await gw.signed(admin, 'GET', '/v1/supervision/agencies/samr?from=2026-03-01&to=2026-03-10')).json()
  t.same(later.agencies.map((a: { agency: string }) => a.agency), ['samr'], 'one agency')
  t.equal(later.agencies[0].days[0].overdue, 1, `${s2.receiptId} has had no feedback for over 7 days`)
  t.equal(later.agencies[0].days[1].overdue, 0, 'the day-2 hit was answered')
  const caacLater = (await gw.signed(admin, 'GET', '/v1/supervision/agencies/caac?from=2026-03-01&to=2026-03-10')).json()
  t.equal(caacLater.agencies[0].totals.overdue, 1)
  const none = (await gw.signed(admin, 'GET', '/v1/supervision/agencies/mof?from=2026-03-01&to=2026-03-10')).json()
  t.same(none.agencies, [], 'no matches, no days')
  const defaults = (await gw.signed(admin, 'GET', '/v1/supervision/agencies')).json()
  t.same([defaults.from, defaults.to], ['2026-02-09', '2026-03-10'], 'the last 30 China days by default')

  for (const [url, code] of [
    ['/v1/supervision/agencies?from=2026-03-05&to=2026-03-01', 'supervision.bad_range'],
    ['/v1/supervision/agencies?from=2024-01-01&to=2026-03-01', 'supervision.bad_range'],
    ['/v1/supervision/agencies?from=yesterday', 'request.validation'],
    ['/v1/supervision/agencies/Bad%20Id', 'request.validation'],
  ] as const) {
    const res = await gw.signed(admin, 'GET', url)
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, code, url)
  }
  t.equal((await gw.signed(samr, 'GET', '/v1/supervision/agencies')).statusCode, 403, 'agencies do not read supervision')
})
