import t, { type Test } from 'tap'
import { buildTestGateway, type TestGateway } from './helper.js'
import { caseNumber, creditCode, entityListing, personId, personListing } from './factories.js'

const NOON_2026_03_02 = Date.parse('2026-03-02T04:00:00Z')

// domain.md §7.1's example shape: region 342301, born 1964-05-15 (the masked part), sequence 321.
const ZHANG_A = personId(321, '19640515', '342301')
const ZHANG_B = personId(124, '19800101', '110105')
const LI = personId(5, '19720302')
const WANG = personId(6, '19810707')
const ENTITY = entityListing(4)
const ENTITY_NAME = '北京某某4有限公司'
const ENTITY_CODE = creditCode(4)
const ENTITY_REP_ID = personId(504, '19700101')
const ENTITY_OFFICER_ID = personId(704, '19750505')

/** The §1.5 public field set, as the record names it (public-search.models.ts publicListingView). */
const ITEM_KEYS = ['amountOutstanding', 'basis', 'caseNumber', 'courtName', 'filedOn', 'grounds', 'id', 'listKind', 'obligation', 'performance', 'publishedOn', 'subject']

async function setup(t: Test) {
  const gw = await buildTestGateway(t)
  gw.clock.set(NOON_2026_03_02)
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const push = await gw.signed(court, 'POST', '/v1/listings', { items: [
    personListing(1, { subject: { kind: 'person', name: '张三', idNumber: ZHANG_A } }), // 0: dishonest
    personListing(2, { listKind: 'restricted', grounds: [], periodEndsOn: '2027-06-01', subject: { kind: 'person', name: '张三', idNumber: ZHANG_A } }), // 1: restricted, same person
    personListing(3, { publishedOn: '2025-05-01', subject: { kind: 'person', name: '张三', idNumber: ZHANG_B } }), // 2: another 张三
    { ...ENTITY, caseNumber: caseNumber(4) }, // 3: a restricted entity with its officers
    personListing(5, { subject: { kind: 'person', name: '李四', idNumber: LI } }), // 4: removed below
    personListing(6, { publishedOn: '2026-02-20', graceUntil: '2026-04-01', subject: { kind: 'person', name: '王五', idNumber: WANG } }), // 5: pending (grace)
  ] })
  t.equal(push.json().summary?.created, 6, push.body)
  const ids = push.json().results.map((r: { listingId: string }) => r.listingId) as string[]
  const removed = await gw.signed(court, 'POST', `/v1/listings/${ids[4]}/removal`, { reason: 'performed' })
  t.equal(removed.statusCode, 200, removed.body)
  return { gw, court, ids }
}

function search(gw: TestGateway, query: Record<string, string | number>, remoteAddress = '127.0.0.1') {
  return gw.app.inject({ method: 'GET', url: '/v1/public/listings', query: Object.fromEntries(Object.entries(query).map(([k, v]) => [k, String(v)])), remoteAddress })
}

async function searchCount(gw: TestGateway, result: string): Promise<number> {
  const body = (await gw.app.inject('/metrics')).body
  const m = new RegExp(`^credit_gateway_public_searches_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(body)
  return m ? Number(m[1]) : Number.NaN
}

t.test('a person is found by name and full id; the id is masked and the raw id, birth date and private fields appear nowhere', async (t) => {
  const { gw, ids } = await setup(t)
  const res = await search(gw, { name: '张三', id: ZHANG_A, list: 'dishonest' })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.same([body.page, body.pageSize, body.hasMore], [1, 10, false])
  t.equal(body.items.length, 1)
  const item = body.items[0]
  t.equal(item.id, ids[0])
  t.same(Object.keys(item).sort(), ITEM_KEYS, 'exactly the §1.5 public fields')
  t.same(item.subject, { kind: 'person', name: '张三', idNumberMasked: '3423011964****3217', sex: 'male', age: 61 })
  t.equal(item.subject.idNumberMasked, ZHANG_A.slice(0, 10) + '****' + ZHANG_A.slice(14), 'domain.md §7.1: digits 11–14 masked')
  t.same(item.grounds, [{ code: 'G4', description: '违反财产报告制度' }])
  t.same([item.caseNumber, item.courtName, item.performance, item.amountOutstanding, item.obligation, item.filedOn, item.publishedOn],
    ['（2025）京0105执1号', '北京市朝阳区人民法院', 'none', 120000, '支付货款及利息', '2025-03-01', '2025-06-01'])
  t.same(item.basis, { issuer: '北京市朝阳区人民法院', documentNumber: '（2024）京0105民初1号' })
  t.notOk(res.body.includes(ZHANG_A), 'the raw identity number is nowhere in the body')
  t.notOk(res.body.includes('0515'), 'nor the birth month and day the mask hides')
  for (const hidden of ['birthDate', 'idNumber"', 'periodEndsOn', 'graceUntil', 'restrictedPersons', 'courtCode', 'status', 'version']) {
    t.notOk(res.body.includes(hidden), `${hidden} is not published`)
  }
  t.match(res.headers['x-ratelimit-limit'], '30', 'the public scope is rate-limited')

  const lower = await search(gw, { name: ' 张三 ', id: ZHANG_A.toLowerCase() })
  t.same(lower.json().items.map((i: { id: string }) => i.id).sort(), [ids[0], ids[1]].sort(), 'trimmed name; both lists without a list filter')
  const other = await search(gw, { name: '张三', id: personId(322, '19640515', '342301') })
  t.same([other.statusCode, other.json().items], [200, []], 'another valid id with the same name is a miss')
  const wrongName = await search(gw, { name: '张四', id: ZHANG_A })
  t.same(wrongName.json().items, [], 'the name must match too')
})

t.test('a person is found by name and the masked id the public site shows, and by name alone', async (t) => {
  const { gw, ids } = await setup(t)
  const masked = ZHANG_A.slice(0, 10) + '****' + ZHANG_A.slice(14)
  const byMasked = await search(gw, { name: '张三', id: masked })
  t.equal(byMasked.statusCode, 200, byMasked.body)
  t.same(byMasked.json().items.map((i: { id: string }) => i.id).sort(), [ids[0], ids[1]].sort(), 'both listings of that person, not the other 张三')
  const wrongSuffix = await search(gw, { name: '张三', id: ZHANG_A.slice(0, 10) + '****' + '3220' })
  t.same(wrongSuffix.json().items, [], 'the suffix must match')
  const wrongPrefix = await search(gw, { name: '张三', id: '3423011965****' + ZHANG_A.slice(14) })
  t.same(wrongPrefix.json().items, [], 'the prefix must match')

  const byName = await search(gw, { name: '张三' })
  t.same(byName.json().items.map((i: { id: string }) => i.id), [ids[0]!, ids[1]!].sort().concat(ids[2]!),
    'every active listing of the name, newest publication first')
  t.same(byName.json().items.map((i: { subject: { idNumberMasked: string } }) => i.subject.idNumberMasked).sort(),
    ['1101051980****' + ZHANG_B.slice(14), masked, masked].sort())
  t.notOk(byName.body.includes(ZHANG_B) || byName.body.includes(ZHANG_A), 'no raw id for either person')

  const page1 = await search(gw, { name: '张三', pageSize: 2 })
  const page2 = await search(gw, { name: '张三', pageSize: 2, page: 2 })
  t.same([page1.json().items.length, page1.json().hasMore, page2.json().items.length, page2.json().hasMore], [2, true, 1, false])
  t.equal(page2.json().items[0].id, ids[2], 'the oldest publication is last')
})

t.test('an entity is found by name and credit code (or its organisation code); only its legal representative’s name is shown', async (t) => {
  const { gw, ids } = await setup(t)
  const res = await search(gw, { name: ENTITY_NAME, id: ENTITY_CODE })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().items.length, 1)
  const item = res.json().items[0]
  t.equal(item.id, ids[3])
  t.same(Object.keys(item).sort(), ITEM_KEYS)
  t.same(item.subject, { kind: 'entity', name: ENTITY_NAME, creditCode: ENTITY_CODE, legalRepresentative: '李4' }, 'domain.md §11: entity codes in full')
  t.same([item.listKind, item.grounds, item.performance, item.amountOutstanding, item.basis, item.obligation], ['restricted', [], 'partial', 5_000_000, null, null])
  t.notOk(res.body.includes(ENTITY_REP_ID), "the legal representative's id is not published")
  t.notOk(res.body.includes(ENTITY_OFFICER_ID) || res.body.includes('王4'), 'the other restricted persons are not published')
  const byOrg = await search(gw, { name: ENTITY_NAME, id: `${ENTITY_CODE.slice(8, 16)}-${ENTITY_CODE[16]}` })
  t.same(byOrg.json().items.map((i: { id: string }) => i.id), [ids[3]], 'the organisation code embedded in the credit code')
  const otherCode = await search(gw, { name: ENTITY_NAME, id: creditCode(5) })
  t.same(otherCode.json().items, [])
  const asPerson = await search(gw, { name: '李4' })
  t.same(asPerson.json().items, [], 'an officer is not a listed subject (SPC-Goodwill Art. 16)')
})

t.test('removed and pending (grace) listings are not found; the list filter keeps to one list', async (t) => {
  const { gw, ids } = await setup(t)
  const removed = await search(gw, { name: '李四', id: LI })
  t.same([removed.statusCode, removed.json().items], [200, []], 'removed (屏蔽)')
  const pending = await search(gw, { name: '王五' })
  t.same([pending.statusCode, pending.json().items], [200, []], 'not published before the grace period ends (SPC-Goodwill Art. 15)')
  const restricted = await search(gw, { name: '张三', list: 'restricted' })
  t.same(restricted.json().items.map((i: { id: string; listKind: string }) => [i.id, i.listKind]), [[ids[1], 'restricted']])
  const dishonest = await search(gw, { name: '张三', list: 'dishonest', id: ZHANG_A })
  t.same(dishonest.json().items.map((i: { id: string; listKind: string }) => [i.id, i.listKind]), [[ids[0], 'dishonest']])
  const entityDishonest = await search(gw, { name: ENTITY_NAME, list: 'dishonest' })
  t.same(entityDishonest.json().items, [], 'the entity is on the restriction list only')
})

t.test('bad input is refused with 400 problem+json, a stable code and the field, and counted', async (t) => {
  const { gw } = await setup(t)
  const badCheck = ZHANG_A.slice(0, 17) + (ZHANG_A[17] === '0' ? '1' : '0')
  const cases: [string, Record<string, string | number>, string, string][] = [
    ['missing name', {}, 'request.validation', 'querystring.name'],
    ['empty name', { name: '' }, 'request.validation', 'querystring.name'],
    ['one character', { name: '张' }, 'public_search.name_length', 'querystring.name'],
    ['one character after trimming', { name: '  张  ' }, 'public_search.name_length', 'querystring.name'],
    ['101 characters', { name: '张'.repeat(101) }, 'public_search.name_length', 'querystring.name'],
    ['% wildcard', { name: '张%' }, 'public_search.name_wildcard', 'querystring.name'],
    ['* wildcard', { name: '张*' }, 'public_search.name_wildcard', 'querystring.name'],
    ['_ wildcard', { name: '张_三' }, 'public_search.name_wildcard', 'querystring.name'],
    ['? wildcard', { name: '张?' }, 'public_search.name_wildcard', 'querystring.name'],
    ['markup', { name: '<script>' }, 'public_search.name_format', 'querystring.name'],
    ['digits only', { name: '12345' }, 'public_search.name_format', 'querystring.name'],
    ['bad id check digit', { name: '张三', id: badCheck }, 'identity.id_check_digit', 'querystring.id'],
    ['bad credit code check character', { name: ENTITY_NAME, id: '91350100M000100Y44' }, 'identity.uscc_check_digit', 'querystring.id'],
    ['malformed masked id', { name: '张三', id: '3423011964***3213' }, 'public_search.id_format', 'querystring.id'],
    ['masked id of another shape', { name: '张三', id: '34230119****3213' }, 'public_search.id_format', 'querystring.id'],
    ['not an identifier', { name: '张三', id: '12345' }, 'public_search.id_format', 'querystring.id'],
    ['empty id', { name: '张三', id: '' }, 'request.validation', 'querystring.id'],
    ['pageSize 21', { name: '张三', pageSize: 21 }, 'request.validation', 'querystring.pageSize'],
    ['pageSize 0', { name: '张三', pageSize: 0 }, 'request.validation', 'querystring.pageSize'],
    ['page beyond the cap', { name: '张三', page: 6 }, 'request.validation', 'querystring.page'],
    ['page 0', { name: '张三', page: 0 }, 'request.validation', 'querystring.page'],
    ['unknown list', { name: '张三', list: 'blacklist' }, 'request.validation', 'querystring.list'],
    ['unknown parameter', { name: '张三', court: '京0105' }, 'request.validation', 'querystring.court'],
  ]
  const refusedBefore = await searchCount(gw, 'refused')
  const missBefore = await searchCount(gw, 'miss')
  for (const [what, query, code, field] of cases) {
    const res = await search(gw, query)
    t.equal(res.statusCode, 400, `${what}: ${res.body}`)
    t.match(res.headers['content-type'], /^application\/problem\+json/, what)
    t.same([res.json().code, res.json().field], [code, field], what)
    t.notOk('items' in res.json(), `${what}: nothing but the problem`)
  }
  t.equal(await searchCount(gw, 'refused'), refusedBefore + cases.length, 'every refusal is counted')
  t.equal(await searchCount(gw, 'miss'), missBefore, 'and none as a search')
  const fine = await search(gw, { name: '买买提·艾力', pageSize: 20, page: 5 })
  t.same([fine.statusCode, fine.json().items], [200, []], 'the bounds themselves and a name with · are accepted')
})

t.test('the rate limit is per client address: 429 with Retry-After past 30 a minute, another address unaffected', async (t) => {
  const { gw } = await setup(t)
  const statuses: number[] = []
  for (let i = 0; i < 30; i++) statuses.push((await search(gw, { name: '张三' }, '203.0.113.7')).statusCode)
  t.same(statuses, Array(30).fill(200))
  const limitedBefore = await searchCount(gw, 'limited')
  const over = await search(gw, { name: '张三' }, '203.0.113.7')
  t.equal(over.statusCode, 429)
  t.match(over.headers['content-type'], /^application\/problem\+json/)
  t.equal(over.json().code, 'rate_limit.exceeded')
  t.ok(Number(over.headers['retry-after']) > 0 && Number(over.headers['retry-after']) <= 60, `Retry-After ${over.headers['retry-after']}`)
  t.notOk('items' in over.json())
  t.equal(await searchCount(gw, 'limited'), limitedBefore + 1, 'counted as limited')
  const badToo = await search(gw, { name: '张%' }, '203.0.113.7')
  t.equal(badToo.statusCode, 429, 'bad requests from a limited address are limited too')
  const other = await search(gw, { name: '张三' }, '198.51.100.9')
  t.equal(other.statusCode, 200, 'another address has its own budget')
  t.equal(other.json().items.length, 3)
})

t.test('every public search is counted: hits, misses, refusals', async (t) => {
  const { gw } = await setup(t)
  const before = { hit: await searchCount(gw, 'hit'), miss: await searchCount(gw, 'miss'), refused: await searchCount(gw, 'refused') }
  t.same(before, { hit: 0, miss: 0, refused: 0 }, 'the series exist from the start')
  await search(gw, { name: '张三' })
  await search(gw, { name: '张三', id: ZHANG_A })
  await search(gw, { name: '无此人' })
  await search(gw, { name: '张*' })
  t.same({ hit: await searchCount(gw, 'hit'), miss: await searchCount(gw, 'miss'), refused: await searchCount(gw, 'refused') }, { hit: 2, miss: 1, refused: 1 })
  const audit = await gw.database.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_entries')
  t.equal(audit[0]!.n, 0, 'public searches are counted, not audited')
})
