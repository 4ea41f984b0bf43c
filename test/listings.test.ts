import t, { type Test } from 'tap'
import { ADMIN_SCOPES, buildTestGateway, type TestGateway } from './helper.js'
import { caseNumber, creditCode, entityListing, personId, personListing } from './factories.js'

const COURT_SCOPES = ['listings:write', 'listings:read'] as const
/** 2026-03-02 12:00 in China: a working Monday after the Spring Festival break. */
const NOON_2026_03_02 = Date.parse('2026-03-02T04:00:00Z')

async function setup(t: Test) {
  const gw = await buildTestGateway(t)
  gw.clock.set(NOON_2026_03_02)
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: [...COURT_SCOPES] })
  const otherCourt = await gw.addPrincipal({ id: 'court-sh-0101', kind: 'court', courtCode: '沪0101', scopes: [...COURT_SCOPES] })
  const admin = await gw.addPrincipal({ id: 'admin-1', kind: 'admin', scopes: ADMIN_SCOPES })
  const agency = await gw.addPrincipal({ id: 'samr', kind: 'agency', scopes: ['changes:read', 'match'], profile: { lists: ['dishonest'], fields: ['name', 'identifiers', 'caseNumber'] } })
  return { gw, court, otherCourt, admin, agency }
}

async function countRows(gw: TestGateway, table: 'listings' | 'listing_events'): Promise<number> {
  return (await gw.database.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n
}

t.test('a court pushes a person and an entity; a re-push changes nothing; a change updates', async (t) => {
  const { gw, court } = await setup(t)
  const first = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), entityListing(2)] })
  t.equal(first.statusCode, 200, first.body)
  t.same(first.json().results.map((r: { status: string }) => r.status), ['created', 'created'])
  t.same(first.json().summary, { created: 2, updated: 0, unchanged: 0, rejected: 0 })

  const again = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), entityListing(2)] })
  t.same(again.json().results.map((r: { status: string }) => r.status), ['unchanged', 'unchanged'])
  t.equal(again.json().results[0].listingId, first.json().results[0].listingId)
  t.equal(await countRows(gw, 'listing_events'), 2, 'an identical re-push appends no event')

  const changed = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1, { amountOutstanding: 80000, performance: 'partial' })] })
  t.equal(changed.json().results[0].status, 'updated')
  t.equal(changed.json().results[0].version, 2)
  t.equal(await countRows(gw, 'listings'), 2)
  t.equal(await countRows(gw, 'listing_events'), 3)
  const [row] = await gw.database.query<{ case_number: string; subject_id: string; period_ends_on: string }>(`SELECT case_number, subject_id, period_ends_on::text FROM listings WHERE subject_kind = 'person'`)
  t.equal(row!.case_number, caseNumber(1), 'case number stored with full-width brackets')
  t.equal(row!.period_ends_on, '2027-06-01', 'G4: two years from publication (SPC-List Art. 2)')
})

t.test('ASCII brackets, a lowercase x and a 15-digit id are normalized to the same listing', async (t) => {
  const { gw, court } = await setup(t)
  const id = '11010519491231002X'
  const a = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(9, { caseNumber: '(2025)京0105执9号', subject: { kind: 'person', name: '赵九', idNumber: id.toLowerCase() } })] })
  t.equal(a.json().results[0].status, 'created', a.body)
  const b = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(9, { subject: { kind: 'person', name: '赵九', idNumber: id } })] })
  t.equal(b.json().results[0].status, 'unchanged')
  t.equal(b.json().results[0].listingId, a.json().results[0].listingId)
  const c = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(9, { subject: { kind: 'person', name: '赵九', idNumber: '110105491231002' } })] })
  t.equal(c.json().results[0].status, 'unchanged', 'the 15-digit form is the same person')
})

t.test('bad items are rejected one by one, naming the field; the valid ones still commit', async (t) => {
  const { gw, court } = await setup(t)
  const items = [
    personListing(10),
    personListing(11, { subject: { kind: 'person', name: 'x', idNumber: '110101199003071230' } }),
    personListing(12, { subject: { kind: 'person', name: 'x', idNumber: '110101199002301236' } }),
    personListing(13, { subject: { kind: 'person', name: 'x', idNumber: '990101199003071237' } }),
    entityListing(14, { subject: { kind: 'entity', name: 'x', creditCode: '911100008021004330', legalRepresentative: { name: 'y' } } }),
    personListing(15, { caseNumber: '（2019）京0105民初1234号' }),
    personListing(16, { grounds: ['G7'] }),
    entityListing(17, { periodEndsOn: '2025-05-01' }),
    personListing(18, { caseNumber: caseNumber(18, '沪0101') }),
    personListing(10),
    personListing(19, { subject: { kind: 'person', name: '小明', idNumber: personId(19, '20100101') } }),
    personListing(20, { grounds: [] }),
    personListing(21, { color: 'red' }),
    personListing(22),
  ]
  const res = await gw.signed(court, 'POST', '/v1/listings', { items })
  t.equal(res.statusCode, 200, res.body)
  const results = res.json().results as { index: number; status: string; errors?: { field: string; code: string }[] }[]
  t.same(results.map((r) => r.index), items.map((_, i) => i), 'results in input order')
  const expect: [number, string, string][] = [
    [1, 'subject.idNumber', 'identity.id_check_digit'],
    [2, 'subject.idNumber', 'identity.id_birth_date'],
    [3, 'subject.idNumber', 'identity.id_region'],
    [4, 'subject.creditCode', 'identity.uscc_check_digit'],
    [5, 'caseNumber', 'identity.case_number'],
    [6, 'grounds.0', 'request.validation'],
    [7, 'periodEndsOn', 'listings.period_before_publication'],
    [8, 'caseNumber', 'listings.cross_court_write'],
    [9, 'subject', 'listings.duplicate_in_request'],
    [10, 'subject.idNumber', 'listings.minor'],
    [11, 'grounds', 'listings.grounds_required'],
    [12, 'color', 'request.validation'],
  ]
  for (const [i, field, code] of expect) {
    t.equal(results[i]!.status, 'rejected', `item ${i} rejected`)
    t.ok(results[i]!.errors?.some((e) => e.field === field && e.code === code), `item ${i}: ${field} ${code} (got ${JSON.stringify(results[i]!.errors)})`)
  }
  t.equal(results[0]!.status, 'created')
  t.equal(results[13]!.status, 'created')
  t.equal(await countRows(gw, 'listings'), 2, 'exactly the two valid items were written')
})

t.test('a request over 10 000 items, or empty, is refused whole and writes nothing', async (t) => {
  const { gw, court } = await setup(t)
  const item = personListing(1)
  const tooMany = await gw.signed(court, 'POST', '/v1/listings', { items: Array.from({ length: 10_001 }, () => item) })
  t.equal(tooMany.statusCode, 400)
  t.equal(tooMany.json().field, 'body.items')
  const empty = await gw.signed(court, 'POST', '/v1/listings', { items: [] })
  t.equal(empty.statusCode, 400)
  t.equal(await countRows(gw, 'listings'), 0)
})

t.test('only courts write listings; an agency or admin gets 403', async (t) => {
  const { gw, agency, admin } = await setup(t)
  for (const who of [agency, admin]) {
    const res = await gw.signed(who, 'POST', '/v1/listings', { items: [personListing(1)] })
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'auth.insufficient_scope')
  }
})

t.test('a higher court may write for its subordinate court when granted', async (t) => {
  const gw = await buildTestGateway(t)
  gw.clock.set(NOON_2026_03_02)
  const higher = await gw.addPrincipal({ id: 'court-bj-03', kind: 'court', courtCode: '京03', scopes: [...COURT_SCOPES], profile: { subordinateCourtCodes: ['京0105'] } })
  const res = await gw.signed(higher, 'POST', '/v1/listings', { items: [personListing(1), personListing(2, { caseNumber: caseNumber(2, '京0106') })] })
  t.same(res.json().results.map((r: { status: string }) => r.status), ['created', 'rejected'])
})

t.test('removal: the court removes with a statutory reason; it is idempotent; other courts cannot', async (t) => {
  const { gw, court, otherCourt } = await setup(t)
  const id = (await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1)] })).json().results[0].listingId
  const foreign = await gw.signed(otherCourt, 'POST', `/v1/listings/${id}/removal`, { reason: 'performed' })
  t.equal(foreign.statusCode, 403)
  t.equal(foreign.json().code, 'listings.cross_court_write')
  const badReason = await gw.signed(court, 'POST', `/v1/listings/${id}/removal`, { reason: 'expired' })
  t.equal(badReason.statusCode, 400, 'expired is for the system only')
  const removed = await gw.signed(court, 'POST', `/v1/listings/${id}/removal`, { reason: 'performed', note: '已全部履行' })
  t.equal(removed.statusCode, 200, removed.body)
  t.equal(removed.json().status, 'removed')
  t.equal(removed.json().removal.reason, 'performed')
  t.equal((await gw.signed(court, 'POST', `/v1/listings/${id}/removal`, { reason: 'performed' })).statusCode, 200, 'same removal again is a no-op')
  t.equal((await gw.signed(court, 'POST', `/v1/listings/${id}/removal`, { reason: 'revoked' })).json().code, 'listings.already_removed')
  const repush = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1)] })
  t.equal(repush.json().results[0].errors[0].code, 'listings.already_removed', 'a stale re-push cannot resurrect it')
  const kinds = await gw.database.query<{ kind: string }>('SELECT kind FROM listing_events ORDER BY seq')
  t.same(kinds.map((k) => k.kind), ['published', 'removed'])
  const missing = await gw.signed(court, 'POST', '/v1/listings/00000000-0000-4000-8000-000000000000/removal', { reason: 'performed' })
  t.equal(missing.statusCode, 404)
})

t.test('the system expires a listing when its period ends, and publishes one when its grace period ends', async (t) => {
  const { gw, court } = await setup(t)
  const res = await gw.signed(court, 'POST', '/v1/listings', { items: [
    personListing(1, { filedOn: '2024-01-10', publishedOn: '2024-03-05', grounds: ['G3'] }), // period ends 2026-03-05
    personListing(2, { publishedOn: '2026-03-01', graceUntil: '2026-04-01', grounds: ['G1'] }), // pending until 2026-04-01
    personListing(3, { filedOn: '2024-01-10', publishedOn: '2024-03-01', grounds: ['G1'] }), // G1: open-ended
  ] })
  t.same(res.json().results.map((r: { listingStatus: string }) => r.listingStatus), ['published', 'pending', 'published'])
  t.same(await gw.app.listings.runDue(), { expired: 0, published: 0, skipped: false }, 'nothing is due yet')

  gw.clock.set(Date.parse('2026-03-04T15:59:00Z')) // 23:59 on 3-4 in China
  t.equal((await gw.app.listings.runDue()).expired, 0, 'still listed on its last day')
  gw.clock.set(Date.parse('2026-03-04T16:00:00Z')) // 00:00 on 3-5 in China
  t.same(await gw.app.listings.runDue(), { expired: 1, published: 0, skipped: false })
  gw.clock.set(Date.parse('2026-04-01T01:00:00Z'))
  t.same(await gw.app.listings.runDue(), { expired: 0, published: 1, skipped: false })
  gw.clock.set(Date.parse('2035-01-01T00:00:00Z'))
  t.equal((await gw.app.listings.runDue()).expired, 0, 'a G1 listing never expires by time')

  const rows = await gw.database.query<{ status: string; removal_reason: string | null; removed_by: string | null }>('SELECT status, removal_reason, removed_by FROM listings ORDER BY case_number')
  t.same(rows.map((r) => [r.status, r.removal_reason, r.removed_by]), [['removed', 'expired', 'system'], ['published', null, null], ['published', null, null]])
  const events = await gw.database.query<{ kind: string; actor: string }>('SELECT kind, actor FROM listing_events ORDER BY seq')
  t.same(events.map((e) => e.kind), ['published', 'published', 'expired', 'published'], 'the pending listing reached the log only when published')
})

t.test('full performance not removed within 3 working days is flagged overdue for the court and admins', async (t) => {
  const { gw, court, otherCourt, admin } = await setup(t)
  // Recorded on Friday 2026-02-13: the Spring Festival break (2-15..2-23) does not count, 2-14 is a 调休 working Saturday.
  const res = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1, { performance: 'full', fullPerformanceOn: '2026-02-13' })] })
  t.equal(res.json().results[0].status, 'created', res.body)
  const [row] = await gw.database.query<{ removal_due_on: string }>('SELECT removal_due_on::text FROM listings')
  t.equal(row!.removal_due_on, '2026-02-25', 'due on the 3rd working day after 2-13: 2-14 (调休), 2-24, 2-25')
  const own = await gw.signed(court, 'GET', '/v1/listings/overdue-removals')
  t.equal(own.json().items.length, 1, own.body)
  t.equal(own.json().items[0].overdueWorkingDays, 4, '2-26, 2-27, 2-28 (调休), 3-2')
  t.equal((await gw.signed(otherCourt, 'GET', '/v1/listings/overdue-removals')).json().items.length, 0)
  t.equal((await gw.signed(admin, 'GET', '/v1/listings/overdue-removals')).json().items.length, 1)
})

t.test('the change feed returns events in order with a cursor, filtered and projected per agency', async (t) => {
  const { gw, court, agency } = await setup(t)
  await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), entityListing(2), personListing(3)] })
  const page1 = await gw.signed(agency, 'GET', '/v1/changes?after=0&limit=1')
  t.equal(page1.statusCode, 200, page1.body)
  const e1 = page1.json().events
  t.equal(e1.length, 1)
  const page2 = await gw.signed(agency, 'GET', `/v1/changes?after=${page1.json().next}&limit=10`)
  const all = [...e1, ...page2.json().events]
  t.same(all.map((e: { listing: { listKind: string } }) => e.listing.listKind), ['dishonest', 'dishonest'], 'the restricted listing is outside this agency profile')
  t.ok(all[0].seq < all[1].seq)
  const l = all[0].listing
  t.equal(l.subject.idNumber, personId(1), 'identifiers are in its projection')
  t.equal(l.caseNumber, caseNumber(1))
  t.notOk('obligation' in l, 'fields outside the projection are absent')
  t.notOk('amountOutstanding' in l)
  const bad = await gw.signed(agency, 'GET', '/v1/changes?after=-1')
  t.equal(bad.statusCode, 400)
})
