/**
 * Publishing the graded-punishment rule set: `PUT /v1/rules` (scope rules:write), `GET /v1/rules`,
 * `GET /v1/rules/versions`, `GET /v1/rules/versions/:version`; a match names the version that decided
 * and follows a new version at once; and the hot switch across two gateway processes on one
 * PostgreSQL database (skipped on PGlite, which two processes cannot share).
 *
 * The change published as version 2 is a REVIEW mapping: domain.md §4.2 makes an L1 REVIEW measure an
 * advisory flag (allow); version 2 turns it into a review. A person listed on a single G4 ground with
 * ¥50 000 outstanding is L1 (§4.2), and NFRA-CREDIT is nfra's REVIEW measure for CREDIT_LENDING
 * (§3.3): allow under version 1, review under version 2.
 */
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import { signRequest, type KeyFile } from '../src/client/gw1-client.js'
import { generateGatewayJwk } from '../src/infra/gateway-keys.js'
import { projectPath } from '../src/infra/paths.js'
import type { PrincipalProfile } from '../src/modules/principals/principals.models.js'
import { personId, personListing } from './factories.js'
import { ADMIN_SCOPES, buildTestGateway, createTestDatabase } from './helper.js'
import { registerPrincipal } from './principal-setup.js'
import { startGateway, type GatewayProcess } from './processes.js'

const NOON_2026_03_02 = Date.parse('2026-03-02T04:00:00Z')

/** The status, with the body in the message only when it is not the one expected. */
function status(t: Test, res: { statusCode: number; body: string }, expected: number, what = '') {
  t.equal(res.statusCode, expected, `${what ? `${what}: ` : ''}HTTP ${expected}${res.statusCode === expected ? '' : ` — ${res.body}`}`)
}

type Doc = Record<string, any>
/** rules/default.json as shipped, read fresh (a private copy to modify). */
const defaultDocument = (): Doc => JSON.parse(readFileSync(projectPath('rules', 'default.json'), 'utf8')) as Doc

/** Version 2: §4.2's L1 advisory (allow) for REVIEW measures becomes a review. */
function reviewAtL1(): Doc {
  const doc = defaultDocument()
  doc.decisions.reviewByGrade.L1 = { decision: 'review', notice: 'Version 2: a human reviews REVIEW measures from L1 on.' }
  return doc
}

/** An L1 person (§4.2: single G4, ¥50k ≤ ¥100k, first listing). */
const L1_PERSON = 1
const l1Listing = (publishedOn = '2025-06-01') => personListing(L1_PERSON, { grounds: ['G4'], amountOutstanding: 50_000, publishedOn })
const NFRA_PROFILE: PrincipalProfile = { lists: ['dishonest'], fields: ['name'], scenarios: ['CREDIT_LENDING'] }
const MATCH_BODY = { idNumber: personId(L1_PERSON), scenario: 'CREDIT_LENDING' }

interface Match { matched: boolean; decision: string; grade: string; ruleSetVersion: number; measures: { code: string; decision: string }[] }
const summary = (m: Match) => `v${m.ruleSetVersion} ${m.grade} ${m.decision} ${m.measures.map((x) => `${x.code}:${x.decision}`).join(',')}`

// ---------------------------------------------------------------------------------------------
// One gateway process (app.inject), the versions published in order
// ---------------------------------------------------------------------------------------------

t.test('publication through the HTTP API', async (t) => {
  const gw = await buildTestGateway(t)
  gw.clock.set(NOON_2026_03_02)
  const admin = await gw.addPrincipal({ id: 'admin-rules', kind: 'admin', scopes: ADMIN_SCOPES })
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const nfra = await gw.addPrincipal({ id: 'nfra', kind: 'agency', scopes: ['match'], profile: NFRA_PROFILE })
  // An agency (and a court) can read the rules but not publish them.
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['match'], profile: { lists: ['dishonest', 'restricted'], scenarios: ['TICKET_AIR'] } })
  const push = await gw.signed(court, 'POST', '/v1/listings', { items: [l1Listing()] })
  t.equal(push.json().summary?.created, 1, 'the court pushes the L1 person')
  await gw.app.matchSync.catchUp()

  const match = async (): Promise<Match> => {
    const res = await gw.signed(nfra, 'POST', '/v1/match', MATCH_BODY)
    status(t, res, 200)
    return res.json() as Match
  }
  const current = async () => {
    const res = await gw.signed(nfra, 'GET', '/v1/rules')
    status(t, res, 200)
    return res.json() as { version: number; contentHash: string; publishedBy: string; publishedAt: string; document: Doc }
  }
  const versions = async () => {
    const res = await gw.signed(caac, 'GET', '/v1/rules/versions')
    status(t, res, 200)
    return res.json().items as { version: number; contentHash: string; publishedBy: string; publishedAt: string; document?: unknown }[]
  }
  const v2 = reviewAtL1()
  let v1Hash = ''
  let v2Hash = ''

  await t.test('GET /v1/rules is version 1: the shipped default, published by the system', async (t) => {
    const v1 = await current()
    t.equal(v1.version, 1)
    t.equal(v1.publishedBy, 'system')
    t.same(v1.document, defaultDocument(), 'the document is rules/default.json')
    t.match(v1.contentHash, /^[0-9a-f]{64}$/)
    t.ok(!Number.isNaN(Date.parse(v1.publishedAt)), 'publishedAt is a timestamp')
    v1Hash = v1.contentHash
    t.equal(summary(await match()), 'v1 L1 allow NFRA-CREDIT:allow', '§4.2 L1: REVIEW is an advisory flag under version 1')
  })

  await t.test('PUT a modified document: 201 version 2, and the next match decides under it', async (t) => {
    const res = await gw.signed(admin, 'PUT', '/v1/rules', v2)
    status(t, res, 201)
    const body = res.json()
    t.equal(body.version, 2)
    t.equal(body.publishedBy, 'admin-rules', 'the publishing principal is on record')
    t.same(body.document, v2)
    t.not(body.contentHash, v1Hash, 'a different document, a different hash')
    v2Hash = body.contentHash
    t.equal(summary(await match()), 'v2 L1 review NFRA-CREDIT:review', 'the match right after the publication uses version 2')
    const now = await current()
    t.same([now.version, now.contentHash, now.publishedBy], [2, v2Hash, 'admin-rules'])
    t.same(now.document, v2)
  })

  await t.test('PUT the same document again: 200, still version 2, nothing published', async (t) => {
    const again = await gw.signed(admin, 'PUT', '/v1/rules', v2)
    status(t, again, 200)
    t.same([again.json().version, again.json().contentHash], [2, v2Hash])
    // The same rule set written in another key order is the same document.
    const reordered = Object.fromEntries(Object.entries(v2).reverse())
    t.not(JSON.stringify(reordered), JSON.stringify(v2))
    const same = await gw.signed(admin, 'PUT', '/v1/rules', reordered)
    status(t, same, 200)
    t.equal(same.json().version, 2)
    t.same((await versions()).map((v) => v.version), [2, 1], 'no third version')
  })

  await t.test('PUT an invalid document: 400 rules.invalid with every error listed; version 2 stays in force', async (t) => {
    const bad = reviewAtL1()
    bad.decisions.reviewByGrade.L2 = { decision: 'deny' } // would be a real change, were it valid
    const m = bad.measures as Doc[]
    const expected: [string, string][] = [
      ['measures.1.code', 'rules.duplicate_measure'], // a second MOF-PROC
      ['measures.2.agency', 'rules.unknown_agency'], // an agency outside the catalogue
      ['measures.3.basis', 'rules.schema'], // a measure without its legal basis
      ['measures.4.decision', 'rules.schema'], // a decision outside allow / review / deny
      ['measures.5.minGrade', 'rules.unknown_grade'], // a grade that §4.2 does not define
    ]
    m[1]!.code = m[0]!.code
    m[2]!.agency = 'nowhere'
    delete m[3]!.basis
    m[4]!.decision = 'forbid'
    m[5]!.minGrade = 'L9'
    const res = await gw.signed(admin, 'PUT', '/v1/rules', bad)
    status(t, res, 400)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    const problem = res.json() as { code: string; field: string; detail: string; errors: { field: string; code: string; message: string }[] }
    t.equal(problem.code, 'rules.invalid')
    t.same(problem.errors.map((e) => [e.field, e.code]).sort(), expected.sort(), 'each fault, and only these, is listed')
    t.ok(problem.errors.every((e) => typeof e.message === 'string' && e.message.length > 0), 'each with a message')
    t.ok(expected.some(([field]) => field === problem.field), 'the problem names one of the fields')
    t.match(problem.errors.find((e) => e.code === 'rules.duplicate_measure')?.message, /MOF-PROC/)

    const now = await current()
    t.same([now.version, now.contentHash], [2, v2Hash], 'GET /v1/rules: version 2 is still in force')
    t.equal(summary(await match()), 'v2 L1 review NFRA-CREDIT:review', 'and matching still decides under version 2')
    t.equal((await versions()).length, 2, 'nothing was stored')
  })

  await t.test('GET /v1/rules/versions lists both versions newest first; /versions/:version returns each document', async (t) => {
    const list = await versions()
    t.same(list.map((v) => [v.version, v.publishedBy, v.contentHash]), [[2, 'admin-rules', v2Hash], [1, 'system', v1Hash]])
    t.ok(list.every((v) => !('document' in v)), 'the list carries no documents')
    t.ok(Date.parse(list[0]!.publishedAt) >= Date.parse(list[1]!.publishedAt), 'newest first by time too')

    const first = await gw.signed(nfra, 'GET', '/v1/rules/versions/1')
    status(t, first, 200)
    t.same([first.json().version, first.json().publishedBy], [1, 'system'])
    t.same(first.json().document, defaultDocument(), 'version 1 is the first document, unchanged by the later publication')
    const second = await gw.signed(nfra, 'GET', '/v1/rules/versions/2')
    t.same(second.json().document, v2)

    const missing = await gw.signed(nfra, 'GET', '/v1/rules/versions/99')
    status(t, missing, 404)
    t.equal(missing.json().code, 'rules.version_not_found')
    t.match(missing.headers['content-type'], /^application\/problem\+json/)
  })

  await t.test('a principal without rules:write is refused 403 and nothing is published', async (t) => {
    const v3 = reviewAtL1()
    v3.decisions.reviewByGrade.L1 = { decision: 'deny', notice: 'would be version 3' }
    for (const [who, key] of [['agency caac', caac], ['court', court]] as const) {
      const res = await gw.signed(key, 'PUT', '/v1/rules', v3)
      status(t, res, 403, who)
      t.equal(res.json().code, 'auth.insufficient_scope', who)
    }
    t.same((await versions()).map((v) => v.version), [2, 1], 'still two versions')
    t.equal((await current()).version, 2)
    t.equal(summary(await match()), 'v2 L1 review NFRA-CREDIT:review', 'the decision is unchanged')
  })
})

// ---------------------------------------------------------------------------------------------
// The hot switch across two processes on one PostgreSQL
// ---------------------------------------------------------------------------------------------

const GATEWAY_ID = 'gw-rules-multiprocess'
const REQUEST_TIMEOUT_MS = 5_000
/** The rules service's promise: a new version is in force on every process within 1 s. */
const SWITCH_LIMIT_MS = 1_000
const POLL_EVERY_MS = 50
const POLL_GIVE_UP_MS = 5_000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function call(gw: GatewayProcess, key: KeyFile, method: string, path: string, json?: unknown): Promise<{ status: number; body: any; raw: string }> {
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json))
  const { authorization } = await signRequest({ method, pathWithQuery: path, body, audience: GATEWAY_ID, key })
  const res = await fetch(`${gw.url}${path}`, {
    method, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    headers: { authorization, ...(body ? { 'content-type': 'application/json' } : {}) },
  })
  const raw = await res.text()
  return { status: res.status, raw, body: raw.length > 0 && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(raw) : raw }
}

/** Today in China minus `days`, as the child processes (on the real clock) see it. */
function chinaDaysAgo(days: number): string {
  return new Date(Date.now() + 8 * 3600_000 - days * 86_400_000).toISOString().slice(0, 10)
}

t.test('a version published through process A decides matches on process B within 1 s', {
  skip: process.env.TEST_DATABASE_URL ? false : 'TEST_DATABASE_URL is not set: two gateway processes need a shared PostgreSQL (the embedded PGlite cannot be shared)',
}, async (t) => {
  const database = await createTestDatabase(t)
  const admin = await registerPrincipal(database.db, 'admin-mp', 'admin', ADMIN_SCOPES)
  const court = await registerPrincipal(database.db, 'court-mp', 'court', ['listings:write'], { courtCode: '京0105' })
  const nfra = await registerPrincipal(database.db, 'nfra', 'agency', ['match'], { profile: NFRA_PROFILE })

  const env = {
    DATABASE_URL: database.url!, GATEWAY_SIGNING_KEY: JSON.stringify(generateGatewayJwk('gw-rules-mp-1')),
    IDENTIFIER_HASH_SECRET: 'rules-routes-test-identifier-hash-secret', GATEWAY_ID,
  }
  const [a, b] = await Promise.all([startGateway(t, 'a', env), startGateway(t, 'b', env)])
  t.not(a.url, b.url, 'two processes on two ports')

  const matchOn = async (gw: GatewayProcess): Promise<Match> => {
    const res = await call(gw, nfra, 'POST', '/v1/match', MATCH_BODY)
    if (res.status !== 200) throw new Error(`${gw.name} answered ${res.status}: ${res.raw}`)
    return res.body as Match
  }

  // The L1 person, pushed through A; B's index picks it up from the change log.
  const push = await call(a, court, 'POST', '/v1/listings', { items: [l1Listing(chinaDaysAgo(30))] })
  t.equal(push.body.summary?.created, 1, `A takes the push${push.body.summary?.created === 1 ? '' : `: ${push.raw}`}`)
  const listedBy = performance.now() + POLL_GIVE_UP_MS
  let before = await matchOn(b)
  while (!before.matched && performance.now() < listedBy) { await sleep(POLL_EVERY_MS); before = await matchOn(b) }
  t.equal(summary(before), 'v1 L1 allow NFRA-CREDIT:allow', 'B decides under version 1 (the default both processes loaded)')
  t.equal((await call(b, nfra, 'GET', '/v1/rules')).body.version, 1)

  const sentAt = performance.now()
  const put = await call(a, admin, 'PUT', '/v1/rules', reviewAtL1())
  const answeredAt = performance.now()
  t.equal(put.status, 201, `A publishes version 2${put.status === 201 ? '' : `: ${put.raw}`}`)
  t.equal(put.body.version, 2)

  // Poll B every 50 ms: version and decision must change together, and within 1 s of the PUT.
  let last: Match | undefined
  let elapsedMs: number | undefined
  let polls = 0
  while (performance.now() - sentAt < POLL_GIVE_UP_MS) {
    polls++
    last = await matchOn(b)
    if (last.ruleSetVersion === 2) { elapsedMs = performance.now() - sentAt; break }
    t.equal(summary(last), 'v1 L1 allow NFRA-CREDIT:allow', 'until it switches, B answers as version 1 said')
    await sleep(POLL_EVERY_MS)
  }
  t.comment(`B switched to version 2 ${elapsedMs?.toFixed(1)} ms after the PUT was sent (PUT took ${(answeredAt - sentAt).toFixed(1)} ms), ${polls} poll(s)`)
  t.ok(elapsedMs !== undefined && elapsedMs < SWITCH_LIMIT_MS, `B reports version 2 within ${SWITCH_LIMIT_MS} ms (took ${elapsedMs?.toFixed(1)} ms)`)
  t.equal(last && summary(last), 'v2 L1 review NFRA-CREDIT:review', 'with the decision version 2 gives')
  t.equal(summary(await matchOn(a)), 'v2 L1 review NFRA-CREDIT:review', 'A, which published, decides under version 2 too')
  t.equal((await call(b, nfra, 'GET', '/v1/rules')).body.version, 2, 'GET /v1/rules on B names version 2')
})
