import t, { type Test } from 'tap'
import { verifyAuditChain } from '../src/modules/audit/audit.verify.js'
import { buildTestGateway } from './helper.js'
import { creditCode, entityListing, personId, personListing } from './factories.js'

const NOON_2026_03_02 = Date.parse('2026-03-02T04:00:00Z')

async function setup(t: Test) {
  const gw = await buildTestGateway(t)
  gw.clock.set(NOON_2026_03_02)
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const samr = await gw.addPrincipal({ id: 'samr', kind: 'agency', scopes: ['match'], profile: { lists: ['dishonest'], fields: ['name', 'caseNumber'], scenarios: ['COMPANY_OFFICER_REG'] } })
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['match'], profile: { lists: ['dishonest', 'restricted'], fields: ['name'], scenarios: ['TICKET_AIR'] } })
  // 1: a listed person (dishonest); 2: a restricted entity with its legal representative and actual controller.
  const push = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), entityListing(2)] })
  t.equal(push.json().summary.created, 2, push.body)
  await gw.app.matchSync.catchUp()
  return { gw, court, samr, caac, ids: push.json().results.map((r: { listingId: string }) => r.listingId) as string[] }
}

/** Subjects on record as matched (a request is one entry; its summary counts its subjects). */
async function auditCount(gw: Awaited<ReturnType<typeof buildTestGateway>>): Promise<number> {
  return (await gw.database.query<{ n: number }>("SELECT coalesce(sum((result->'summary'->>'subjects')::int), 0)::int AS n FROM audit_entries WHERE action = 'match'"))[0]!.n
}

t.test('a listed person matches as debtor, projected to the agency fields, with a receipt', async (t) => {
  const { gw, samr, ids } = await setup(t)
  const res = await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(1), name: '张1', scenario: 'COMPANY_OFFICER_REG' })
  t.equal(res.statusCode, 200, res.body)
  const r = res.json()
  t.equal(r.matched, true)
  // The default rule set (rules/default.json): SAMR-OFFICER bars a listed person from company office
  // (Company Law Art. 178), a statutory BLOCK; ¥120 000 outstanding is over the ¥100k L1 cap (§4.2 L2).
  t.equal(r.decision, 'deny')
  t.equal(r.grade, 'L2')
  t.same(r.measures.map((m: { code: string }) => m.code), ['SAMR-OFFICER'])
  t.equal(r.ruleSetVersion, 1, 'the shipped rule set is version 1')
  t.match(r.receiptId, /^[0-9a-f-]{36}$/)
  t.equal(r.listings.length, 1)
  t.equal(r.listings[0].role, 'debtor')
  t.equal(r.listings[0].nameMismatch, false)
  const l = r.listings[0].listing
  t.equal(l.id, ids[0])
  t.equal(l.subject.name, '张1')
  t.equal(l.caseNumber, '（2025）京0105执1号')
  t.notOk('idNumber' in l.subject, 'identifiers outside the projection are absent')
  t.notOk('obligation' in l)
  t.notOk('amountOutstanding' in l)
  t.ok(res.headers['x-gw-signature'], 'signed response')
  t.equal(await auditCount(gw), 1, 'one audit entry, committed before the answer')
})

t.test('not listed: allow; a lowercase x and a 15-digit id match the same person', async (t) => {
  const { gw, samr } = await setup(t)
  const none = await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(99) })
  t.same([none.json().matched, none.json().decision, none.json().listings], [false, 'allow', []])
  const id = '11010519491231002X'
  const court = await gw.addPrincipal({ id: 'court-2', kind: 'court', courtCode: '京0106', scopes: ['listings:write'] })
  await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(5, { caseNumber: '（2025）京0106执5号', courtName: '丰台', subject: { kind: 'person', name: '赵', idNumber: id } })] })
  await gw.app.matchSync.catchUp()
  t.equal((await gw.signed(samr, 'POST', '/v1/match', { idNumber: id.toLowerCase() })).json().matched, true)
  t.equal((await gw.signed(samr, 'POST', '/v1/match', { idNumber: '110105491231002' })).json().matched, true)
})

t.test("an entity matches by credit code and by its old organisation code; its officers match in their roles", async (t) => {
  const { gw, caac, samr } = await setup(t)
  const code = creditCode(2)
  const byCode = (await gw.signed(caac, 'POST', '/v1/match', { creditCode: code })).json()
  t.equal(byCode.listings[0]?.role, 'debtor')
  const byOrg = (await gw.signed(caac, 'POST', '/v1/match', { orgCode: `${code.slice(8, 16)}-${code[16]}` })).json()
  t.equal(byOrg.matched, true, 'XXXXXXXX-X organisation code of the listed credit code')
  const rep = (await gw.signed(caac, 'POST', '/v1/match', { idNumber: personId(502, '19700101'), name: '李2' })).json()
  t.equal(rep.listings[0]?.role, 'legalRepresentative')
  const controller = (await gw.signed(caac, 'POST', '/v1/match', { idNumber: personId(702, '19750505') })).json()
  t.equal(controller.listings[0]?.role, 'restrictedPerson')
  const notHisList = (await gw.signed(samr, 'POST', '/v1/match', { creditCode: code })).json()
  t.equal(notHisList.matched, false, 'samr may match the dishonest list only; this entity is on the restricted list')
})

t.test('a different name still matches by identifier and is flagged', async (t) => {
  const { gw, samr } = await setup(t)
  const r = (await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(1), name: '李四' })).json()
  t.equal(r.matched, true)
  t.equal(r.listings[0].nameMismatch, true)
})

t.test('a batch answers in input order; an invalid identifier is that item’s error, not the batch’s', async (t) => {
  const { gw, caac } = await setup(t)
  const subjects = [{ idNumber: personId(1) }, { idNumber: '110101199003071230' }, { creditCode: creditCode(2) }, { idNumber: personId(3), creditCode: creditCode(3) }, { idNumber: personId(4) }]
  const res = await gw.signed(caac, 'POST', '/v1/match/batch', { subjects, scenario: 'TICKET_AIR' })
  t.equal(res.statusCode, 200, res.body)
  const results = res.json().results
  t.equal(results.length, 5)
  t.equal(results[0].matched, true)
  t.equal(results[1].error.code, 'identity.id_check_digit')
  t.equal(results[1].error.field, 'body.subjects.1.idNumber')
  t.equal(results[2].matched, true)
  t.equal(results[3].error.code, 'match.identifier_required')
  t.equal(results[4].matched, false)
  t.equal(await auditCount(gw), 3, 'errors are not audited as matches')

  // One entry for the request; every subject still has its own receipt, naming its item.
  const [entry] = await gw.database.query<{ n: number; subject_hash: string | null; result: { summary: Record<string, number>; items: Record<string, unknown>[] } }>(
    "SELECT count(*) OVER ()::int AS n, subject_hash, result FROM audit_entries WHERE action = 'match'")
  t.equal(entry!.n, 1, 'one audit entry per request')
  t.same(entry!.result.summary, { ruleSetVersion: 1, subjects: 3, refused: 2, matched: 2, allow: 2, review: 0, deny: 1 }, 'CAAC-AIR denies the listed person; the listed entity itself takes no air ban (P/EP only)')
  t.same(entry!.result.items.map((i) => i.error ?? i.matched), [true, 'identity.id_check_digit', true, 'match.identifier_required', false])
  t.notOk(JSON.stringify(entry!.result).includes(personId(1)), 'identifiers are stored as keyed hashes only')
  t.equal(entry!.result.items[0]!.subjectHash, gw.app.identifierHash(`idNumber:${personId(1)}`))
  t.equal(new Set([results[0].receiptId, results[2].receiptId, results[4].receiptId]).size, 3, 'a receipt per subject')
  for (const i of [0, 2, 4]) {
    const receipt = await gw.signed(caac, 'GET', `/v1/receipts/${results[i].receiptId}`)
    t.equal(receipt.statusCode, 200, receipt.body)
    t.same([receipt.json().item.index, receipt.json().item.matched, receipt.json().item.receiptId], [i, results[i].matched, results[i].receiptId])
  }
  const last = results[4].receiptId as string
  const refusedItem = `${last.slice(0, -4)}${(Number.parseInt(last.slice(-4), 16) - 3).toString(16).padStart(4, '0')}`
  t.equal((await gw.signed(caac, 'GET', `/v1/receipts/${refusedItem}`)).statusCode, 404, 'a refused item has no receipt')
  const pastEnd = `${last.slice(0, -4)}${(Number.parseInt(last.slice(-4), 16) + 1).toString(16).padStart(4, '0')}`
  t.equal((await gw.signed(caac, 'GET', `/v1/receipts/${pastEnd}`)).statusCode, 404, 'no receipt past the last subject')
  t.equal((await verifyAuditChain(gw.database)).ok, true, 'the entry as stored hashes to its chain link')
})

t.test('bad match requests are refused and nothing is audited', async (t) => {
  const { gw, samr } = await setup(t)
  const cases: [unknown, number, string][] = [
    [{}, 400, 'match.identifier_required'],
    [{ idNumber: personId(1), creditCode: creditCode(1) }, 400, 'match.identifier_required'],
    [{ idNumber: '110101199003071230' }, 400, 'identity.id_check_digit'],
    [{ idNumber: personId(1), scenario: 'TICKET_AIR' }, 400, 'match.unknown_scenario'],
    [{ idNumber: personId(1), extra: 1 }, 400, 'request.validation'],
  ]
  for (const [body, status, code] of cases) {
    const res = await gw.signed(samr, 'POST', '/v1/match', body)
    t.equal(res.statusCode, status, JSON.stringify(body))
    t.equal(res.json().code, code, JSON.stringify(body))
  }
  const big = await gw.signed(samr, 'POST', '/v1/match/batch', { subjects: Array.from({ length: 10_001 }, () => ({ idNumber: personId(1) })) })
  t.equal(big.statusCode, 400)
  const court = await gw.addPrincipal({ id: 'court-9', kind: 'court', courtCode: '京0109', scopes: ['listings:write'] })
  t.equal((await gw.signed(court, 'POST', '/v1/match', { idNumber: personId(1) })).statusCode, 403)
  t.equal(await auditCount(gw), 0)
})

t.test('a removal stops matching once the index has applied the change log', async (t) => {
  const { gw, court, samr, ids } = await setup(t)
  t.equal((await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(1) })).json().matched, true)
  await gw.signed(court, 'POST', `/v1/listings/${ids[0]}/removal`, { reason: 'performed' })
  // Even before the index catches up, a hit on a removed listing is checked against the table.
  t.equal((await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(1) })).json().matched, false)
  await gw.app.matchSync.catchUp()
  t.equal((await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(1) })).json().matched, false)
  t.equal(gw.app.matchIndex.lookup('idNumber', personId(1)).length, 0, 'gone from the index')
})

t.test("an agency over its daily quota gets 429 with Retry-After; bad requests and other agencies don't count", async (t) => {
  const { gw } = await setup(t)
  const small = await gw.addPrincipal({ id: 'small-agency', kind: 'agency', scopes: ['match'], profile: { lists: ['dishonest'], dailyQuota: 3 } })
  const other = await gw.addPrincipal({ id: 'other-agency', kind: 'agency', scopes: ['match'], profile: { lists: ['dishonest'], dailyQuota: 3 } })
  t.equal((await gw.signed(small, 'POST', '/v1/match', { idNumber: '110101199003071230' })).statusCode, 400, 'an invalid identifier')
  t.equal((await gw.signed(small, 'POST', '/v1/match/batch', { subjects: [{ idNumber: personId(1) }, { idNumber: personId(2) }] })).statusCode, 200)
  t.equal((await gw.signed(small, 'POST', '/v1/match', { idNumber: personId(3) })).statusCode, 200, 'the 3rd subject fits')
  const over = await gw.signed(small, 'POST', '/v1/match', { idNumber: personId(4) })
  t.equal(over.statusCode, 429)
  t.equal(over.json().code, 'match.quota_exceeded')
  t.ok(Number(over.headers['retry-after']) > 0)
  t.equal((await gw.signed(other, 'POST', '/v1/match', { idNumber: personId(4) })).statusCode, 200, 'quotas are per agency')
  gw.clock.advance(24 * 3600)
  t.equal((await gw.signed(small, 'POST', '/v1/match', { idNumber: personId(4) })).statusCode, 200, 'a new day in China resets it')
})
