/**
 * DESIGN.md "Scale past one machine": two real gateway processes on one PostgreSQL database.
 * Replay protection, key retirement and new principals must hold across processes, and both must
 * publish the same JWKS and sign their responses with it.
 *
 * Needs TEST_DATABASE_URL: the embedded PGlite cannot be shared by two processes.
 */
import type { JSONWebKeySet } from 'jose'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { GatewayClient, signRequest, verifyResponseSignature, type KeyFile } from '../src/client/gw1-client.js'
import { generateGatewayJwk, gatewayKeysFromJson } from '../src/infra/gateway-keys.js'
import { generatePrincipalKey } from '../src/modules/principals/principals.keygen.js'
import { personId, personListing } from './factories.js'
import { ADMIN_SCOPES, createTestDatabase } from './helper.js'
import { registerPrincipal, registerPrincipalKeys } from './principal-setup.js'
import { startGateway, type GatewayProcess } from './processes.js'

const GATEWAY_ID = 'gw-multiprocess'
/** Every HTTP call is bounded, so a wedged child fails the test instead of hanging it. */
const REQUEST_TIMEOUT_MS = 5_000
/** DESIGN.md: a change made through one process holds on every process within 1 s. */
const PROPAGATION_LIMIT_MS = 1_000
/** How long the polling loops keep trying before giving up (well past the limit, to measure a miss). */
const POLL_GIVE_UP_MS = 5_000

interface Reply { status: number; body: any; raw: Buffer; headers: Headers }

async function send(base: string, method: string, path: string, authorization: string, body?: Buffer<ArrayBuffer>): Promise<Reply> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization, ...(body ? { 'content-type': 'application/json' } : {}) },
    body,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  })
  const raw = Buffer.from(await res.arrayBuffer())
  const type = res.headers.get('content-type') ?? ''
  return { status: res.status, raw, headers: res.headers, body: type.includes('json') && raw.length > 0 ? JSON.parse(raw.toString('utf8')) : raw.toString('utf8') }
}

async function sign(key: KeyFile, method: string, path: string, body?: Buffer<ArrayBuffer>, jti?: string) {
  return signRequest({ method, pathWithQuery: path, body, audience: GATEWAY_ID, key, jti })
}

/** One freshly signed call (new jti every time). */
async function call(gw: GatewayProcess, key: KeyFile, method: string, path: string, json?: unknown): Promise<Reply & { jti: string }> {
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json))
  const { authorization, jti } = await sign(key, method, path, body)
  return { ...await send(gw.url, method, path, authorization, body), jti }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Calls `attempt` until it returns true or POLL_GIVE_UP_MS pass; returns the ms from `since` to the
 * first success (undefined if none) and how many attempts it took.
 */
async function pollUntil(since: number, attempt: () => Promise<boolean>): Promise<{ elapsedMs: number | undefined; attempts: number }> {
  let attempts = 0
  while (performance.now() - since < POLL_GIVE_UP_MS) {
    attempts++
    if (await attempt()) return { elapsedMs: performance.now() - since, attempts }
    await sleep(5)
  }
  return { elapsedMs: undefined, attempts }
}

if (!process.env.TEST_DATABASE_URL) {
  t.plan(0, 'TEST_DATABASE_URL is not set: two gateway processes need a shared PostgreSQL (the embedded PGlite cannot be shared)')
} else {
  const database = await createTestDatabase(t)
  const admin = await registerPrincipal(database.db, 'admin-mp', 'admin', ADMIN_SCOPES)

  const gatewayJwk = generateGatewayJwk('gw-multiprocess-1')
  const expectedJwks = gatewayKeysFromJson(JSON.stringify(gatewayJwk)).jwks
  const env = { DATABASE_URL: database.url!, GATEWAY_SIGNING_KEY: JSON.stringify(gatewayJwk), IDENTIFIER_HASH_SECRET: 'multiprocess-test-identifier-hash-secret', GATEWAY_ID }
  const [a, b] = await Promise.all([startGateway(t, 'a', env), startGateway(t, 'b', env)])
  t.comment(`gateway a pid ${a.pid} at ${a.url}; gateway b pid ${b.pid} at ${b.url}`)
  t.not(a.url, b.url, 'two processes on two ports')

  t.test('a token accepted by one process is refused as replayed by the other', async (t) => {
    const path = '/v1/whoami'
    const { authorization } = await sign(admin, 'GET', path)
    const first = await send(a.url, 'GET', path, authorization)
    t.equal(first.status, 200, `A accepts the token: ${first.raw}`)
    t.equal(first.body.id, 'admin-mp')
    const replay = await send(b.url, 'GET', path, authorization)
    t.equal(replay.status, 401, `B refuses the same token: ${replay.raw}`)
    t.equal(replay.body.code, 'auth.replayed')
    t.match(replay.headers.get('content-type'), /^application\/problem\+json/)
    // And the other way round, with a token B saw first.
    const second = await sign(admin, 'GET', path)
    t.equal((await send(b.url, 'GET', path, second.authorization)).status, 200, 'B accepts a fresh token')
    const back = await send(a.url, 'GET', path, second.authorization)
    t.equal(back.status, 401)
    t.equal(back.body.code, 'auth.replayed', 'A refuses the token B accepted')
  })

  t.test('a key retired through one process is refused by the other within 1 s', async (t) => {
    const [oldKey, newKey] = await registerPrincipalKeys(database.db, 'agency-retire', 'agency', ['match'], 2) as [KeyFile, KeyFile]
    // B caches the key (and A too) before the retirement.
    for (const gw of [b, a, b]) {
      const r = await call(gw, oldKey, 'GET', '/v1/whoami')
      t.equal(r.status, 200, `${gw.name} accepts the key before retirement: ${r.raw}`)
      t.equal(r.body.kid, oldKey.privateJwk.kid)
    }

    const kid = oldKey.privateJwk.kid
    const sentAt = performance.now()
    const retire = await call(a, admin, 'DELETE', `/v1/principals/agency-retire/keys/${encodeURIComponent(kid)}`)
    const committedAt = performance.now()
    t.equal(retire.status, 200, `A retires the key: ${retire.raw}`)
    t.equal(retire.body.keys.find((k: { kid: string }) => k.kid === kid)?.status, 'retired')

    let lastStatus = ''
    const { elapsedMs, attempts } = await pollUntil(sentAt, async () => {
      const r = await call(b, oldKey, 'GET', '/v1/whoami')
      lastStatus = `${r.status} ${r.body?.code ?? ''}`
      if (r.status === 401 && r.body.code === 'auth.key_retired') return true
      if (r.status !== 200) throw new Error(`B answered ${r.status} while polling: ${r.raw}`)
      return false
    })
    t.ok(elapsedMs !== undefined, `B refuses the retired key (last answer: ${lastStatus})`)
    t.comment(`retired-key propagation to B: ${elapsedMs?.toFixed(1)} ms after the DELETE was sent, ${elapsedMs === undefined ? '?' : (elapsedMs - (committedAt - sentAt)).toFixed(1)} ms after A answered (DELETE took ${(committedAt - sentAt).toFixed(1)} ms), ${attempts} attempt(s)`)
    t.ok(elapsedMs !== undefined && elapsedMs < PROPAGATION_LIMIT_MS, `within ${PROPAGATION_LIMIT_MS} ms (took ${elapsedMs?.toFixed(1)} ms)`)

    const onA = await call(a, oldKey, 'GET', '/v1/whoami')
    t.equal(onA.status, 401)
    t.equal(onA.body.code, 'auth.key_retired', 'A refuses it too')
    // Only that key is gone: the agency's other key keeps working on both.
    for (const gw of [b, a]) {
      const r = await call(gw, newKey, 'GET', '/v1/whoami')
      t.equal(r.status, 200, `${gw.name} still accepts the agency's other key: ${r.raw}`)
    }
  })

  t.test('a principal created through one process can call the other at once', async (t) => {
    const fresh = await generatePrincipalKey('agency-new')
    const created = await call(a, admin, 'POST', '/v1/principals', {
      id: 'agency-new', kind: 'agency', name: '新机构', scopes: ['match'], profile: { lists: ['dishonest'] }, keys: [fresh.publicJwk],
    })
    t.equal(created.status, 201, `A creates the agency: ${created.raw}`)
    const first = await call(b, fresh.keyFile, 'GET', '/v1/whoami')
    t.equal(first.status, 200, `B accepts the new agency's first call: ${first.raw}`)
    t.equal(first.body.id, 'agency-new')
    t.same(first.body.scopes, ['match'])

    // Harder: B has already refused this kid as unknown (and caches that answer); the creation
    // through A must still reach B within the same 1 s bound.
    const late = await generatePrincipalKey('agency-late')
    const before = await call(b, late.keyFile, 'GET', '/v1/whoami')
    t.equal(before.status, 401)
    t.equal(before.body.code, 'auth.unknown_key', 'B refuses the kid before the principal exists')
    const sentAt = performance.now()
    const lateCreated = await call(a, admin, 'POST', '/v1/principals', {
      id: 'agency-late', kind: 'agency', name: '后到机构', scopes: ['match'], keys: [late.publicJwk],
    })
    t.equal(lateCreated.status, 201, `A creates the second agency: ${lateCreated.raw}`)
    let lastStatus = ''
    const { elapsedMs } = await pollUntil(sentAt, async () => {
      const r = await call(b, late.keyFile, 'GET', '/v1/whoami')
      lastStatus = `${r.status} ${r.body?.code ?? ''}`
      if (r.status === 200) return true
      if (!(r.status === 401 && r.body.code === 'auth.unknown_key')) throw new Error(`B answered ${r.status} while polling: ${r.raw}`)
      return false
    })
    t.comment(`new-principal propagation to B over a cached "unknown kid": ${elapsedMs?.toFixed(1)} ms after the POST was sent`)
    t.ok(elapsedMs !== undefined && elapsedMs < PROPAGATION_LIMIT_MS, `B accepts it within ${PROPAGATION_LIMIT_MS} ms (took ${elapsedMs?.toFixed(1)} ms; last answer ${lastStatus})`)
  })

  t.test('both processes publish the same JWKS and each signs its responses verifiably', async (t) => {
    const jwksOf = async (gw: GatewayProcess) => {
      const res = await fetch(`${gw.url}/.well-known/jwks.json`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
      t.equal(res.status, 200, `${gw.name} serves its JWKS`)
      return (await res.json()) as JSONWebKeySet
    }
    const [jwksA, jwksB] = await Promise.all([jwksOf(a), jwksOf(b)])
    t.same(jwksA, jwksB, 'A and B publish the same JWKS')
    t.same(jwksA, expectedJwks, 'it is the public half of the configured signing key')
    t.notOk(jwksA.keys.some((k) => 'd' in k), 'no private member is published')

    for (const gw of [a, b]) {
      // GatewayClient verifies X-GW-Signature against the JWKS of the process it talks to.
      const client = new GatewayClient({ baseUrl: gw.url, key: admin, audience: GATEWAY_ID })
      const res = await client.request<{ id: string }>('GET', '/v1/whoami')
      t.equal(res.status, 200, `${gw.name}: the SDK call succeeds and its response signature verifies`)
      t.equal(res.body.id, 'admin-mp')
      t.ok(res.headers.get('x-gw-signature'), `${gw.name} signs its response`)
    }

    // Cross-check: a response from one process verifies with the JWKS fetched from the other, and
    // is bound to our request's jti.
    for (const [gw, otherJwks] of [[a, jwksB], [b, jwksA]] as const) {
      const r = await call(gw, admin, 'GET', '/v1/whoami')
      t.equal(r.status, 200)
      await t.resolves(verifyResponseSignature(r.headers.get('x-gw-signature'), r.raw, r.jti, otherJwks),
        `${gw.name}'s response verifies with the other process's JWKS`)
      const tampered = Buffer.from(r.raw.toString('utf8').replace('admin-mp', 'admin-xx'))
      await t.rejects(verifyResponseSignature(r.headers.get('x-gw-signature'), tampered, r.jti, otherJwks),
        `${gw.name}'s signature does not cover altered bytes`)
    }
  })

  t.test('a listing pushed or removed through one process changes match results on the other within 1 s', async (t) => {
    const court = await registerPrincipal(database.db, 'court-mp', 'court', ['listings:write'], { courtCode: '京0105' })
    const agency = await registerPrincipal(database.db, 'agency-mp', 'agency', ['match'], { profile: { lists: ['dishonest'] } })
    const idNumber = personId(4242)
    const matchedOnB = async () => (await call(b, agency, 'POST', '/v1/match', { idNumber })).body.matched === true
    t.equal(await matchedOnB(), false, 'not listed yet')

    const pushedAt = performance.now()
    const push = await call(a, court, 'POST', '/v1/listings', { items: [personListing(4242, { publishedOn: '2025-06-01' })] })
    t.equal(push.body.summary?.created, 1, `A takes the push: ${push.raw}`)
    const listed = await pollUntil(pushedAt, matchedOnB)
    t.ok(listed.elapsedMs !== undefined && listed.elapsedMs < 1000, `B matches the new listing within 1 s (${listed.elapsedMs?.toFixed(1)} ms)`)

    const removedAt = performance.now()
    const removal = await call(a, court, 'POST', `/v1/listings/${push.body.results[0].listingId}/removal`, { reason: 'performed' })
    t.equal(removal.status, 200, `${removal.raw}`)
    const gone = await pollUntil(removedAt, async () => !(await matchedOnB()))
    t.ok(gone.elapsedMs !== undefined && gone.elapsedMs < 1000, `B stops matching the removed listing within 1 s (${gone.elapsedMs?.toFixed(1)} ms)`)
  })

  t.test('an appeal accepted with a correction through one process shows in match results on the other within 1 s', async (t) => {
    const court = await registerPrincipal(database.db, 'court-mp-appeals', 'court', ['listings:write', 'appeals:review'], { courtCode: '京0106' })
    const agency = await registerPrincipal(database.db, 'agency-mp-appeals', 'agency', ['match'], { profile: { lists: ['dishonest'], fields: ['name', 'amountOutstanding'] } })
    const idNumber = personId(4343)
    const push = await call(a, court, 'POST', '/v1/listings', { items: [personListing(4343, { caseNumber: '（2025）京0106执4343号', courtName: '北京市丰台区人民法院', publishedOn: '2025-06-01' })] })
    t.equal(push.body.summary?.created, 1, `${push.raw}`)
    const listingOnB = async () => (await call(b, agency, 'POST', '/v1/match', { idNumber })).body.listings?.[0]?.listing
    await pollUntil(performance.now(), async () => (await listingOnB()) !== undefined)

    const filed = await fetch(`${a.url}/v1/public/appeals`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      body: JSON.stringify({ listingId: push.body.results[0].listingId, ground: 'inaccurate', applicant: { name: '张4343', idNumber, contact: '13800000000' }, statement: '金额不准确' }),
    })
    t.equal(filed.status, 201, 'the appeal is filed on A')
    t.equal((await listingOnB())?.appealPending, true, 'B shows the pending appeal')
    const [item] = (await call(a, court, 'GET', '/v1/reviews/appeals')).body.items
    const decidedAt = performance.now()
    const decided = await call(a, court, 'POST', `/v1/reviews/appeals/${item.id}/decision`, { outcome: 'accept', reasons: '核实', correction: { amountOutstanding: 1234 } })
    t.equal(decided.body.status, 'corrected', `${decided.raw}`)
    const seen = await pollUntil(decidedAt, async () => (await listingOnB())?.amountOutstanding === 1234)
    t.ok(seen.elapsedMs !== undefined && seen.elapsedMs < PROPAGATION_LIMIT_MS, `B matches the corrected listing within 1 s (${seen.elapsedMs?.toFixed(1)} ms)`)
    t.equal((await listingOnB())?.appealPending, false, 'and the appeal is no longer pending')
  })
}
