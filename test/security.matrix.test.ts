import { createHash, createPrivateKey, createPublicKey, randomUUID } from 'node:crypto'
import { CompactSign, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { signRequest, type KeyFile } from '../src/client/gw1-client.js'
import { SCOPES_BY_KIND, type PrincipalKind, type PrincipalProfile, type Scope } from '../src/modules/principals/principals.models.js'
import { UNAUTHENTICATED } from '../src/infra/gw1/refusal-audit.js'
import { generatePrincipalKey } from '../src/modules/principals/principals.keygen.js'
import { personListing } from './factories.js'
import { buildTestGateway, TEST_AUDIENCE, type TestGateway } from './helper.js'

/**
 * The security matrix (issue 9 item 1): every signed route against every principal kind with and
 * without the route's scope, the public against every signed route, cross-tenant access and token
 * attacks on a writing route. Each refusal must carry its code, be in the audit trail as
 * `auth.refused`, and change nothing.
 */
const DOMAIN_TABLES = ['principals', 'principal_keys', 'listings', 'listing_events', 'rule_sets', 'match_feedback', 'applications', 'subscriptions', 'certificates']
const KINDS: PrincipalKind[] = ['court', 'agency', 'admin']

async function domainState(gw: TestGateway): Promise<Record<string, number>> {
  const state: Record<string, number> = {}
  for (const table of DOMAIN_TABLES) state[table] = (await gw.database.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n
  state.matchAudit = (await gw.database.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_entries WHERE action <> 'auth.refused'`))[0]!.n
  return state
}

async function refusals(gw: TestGateway): Promise<Array<{ principal_id: string; result: { code: string; status: number; route: string | null; method: string; claimedIssuer: string | null } }>> {
  // Refusals are committed before they are answered: no flush to wait for.
  return gw.database.query(`SELECT principal_id, result FROM audit_entries WHERE action = 'auth.refused' ORDER BY writer_seq`)
}

/** A request path for a route pattern: any id-like parameter gets a fresh uuid (nothing of anyone's). */
function concretePath(url: string): string {
  return url.replace(/:(\w+)/g, (_, name: string) => (name === 'agency' ? 'caac' : name === 'version' ? '1' : name === 'kid' ? 'k1' : randomUUID()))
}

async function setup(t: Test) {
  const gw = await buildTestGateway(t)
  await gw.app.ready() // the shipped rule set is stored on first start: before the 'nothing changed' baseline
  const keys = new Map<string, KeyFile>()
  for (const kind of KINDS) {
    const all = SCOPES_BY_KIND[kind] as Scope[]
    const extra = kind === 'court' ? { courtCode: '京0105' } : kind === 'agency' ? { profile: { lists: ['dishonest', 'restricted'], fields: ['name'], scenarios: ['TICKET_AIR'] } } : {}
    keys.set(`${kind}:all`, await gw.addPrincipal({ id: `${kind}-all`, kind, scopes: all, ...extra } as never))
    for (const scope of all) keys.set(`${kind}:-${scope}`, await gw.addPrincipal({ id: `${kind}-no-${scope.replace(':', '-')}`, kind, scopes: all.filter((s) => s !== scope), ...extra } as never))
  }
  return { gw, keys }
}

t.test('every signed route: each kind with and without its scope, and the public', async (t) => {
  const { gw, keys } = await setup(t)
  const routes = gw.app.signedRoutes
  t.ok(routes.length >= 30, `${routes.length} signed routes walked`)
  const before = await domainState(gw)
  const refusedBefore = (await refusals(gw)).length
  let expectedRefusals = 0
  for (const route of routes) {
    const path = concretePath(route.url)
    const body = ['POST', 'PUT', 'PATCH'].includes(route.method) ? {} : undefined
    const label = `${route.method} ${route.url}`

    const unsigned = await gw.app.inject({ method: route.method as never, url: path, ...(body ? { payload: body } : {}) })
    t.equal(unsigned.statusCode, 401, `${label} unsigned`)
    t.equal(unsigned.json().code, 'auth.missing_token', `${label} unsigned`)
    expectedRefusals++

    for (const kind of KINDS) {
      const mayHold = route.scope === 'any' || (SCOPES_BY_KIND[kind] as readonly string[]).includes(route.scope)
      const withAll = await gw.signed(keys.get(`${kind}:all`)!, route.method, path, body)
      if (mayHold) {
        // A route open to any principal may still refuse a kind it does not serve (a court has no receipts): 403, never 401.
        t.not(withAll.statusCode, 401, `${label}: a ${kind} with ${route.scope} is authenticated`)
        // Past the scope check a route may still refuse by kind (an agency has no overdue-removal queue), never by scope.
        if (route.scope !== 'any' && withAll.statusCode === 403) t.not(withAll.json().code, 'auth.insufficient_scope', `${label}: a ${kind} with ${route.scope} gets past the scope check`)
        t.ok(withAll.statusCode < 500, `${label}: a ${kind} gets no 5xx`)
        if (withAll.statusCode === 403 || withAll.statusCode === 401) expectedRefusals++
      } else {
        t.equal(withAll.statusCode, 403, `${label}: a ${kind} can never hold ${route.scope}`)
        t.equal(withAll.json().code, 'auth.insufficient_scope', label)
        expectedRefusals++
      }
      if (route.scope !== 'any' && mayHold) {
        const without = await gw.signed(keys.get(`${kind}:-${route.scope}`)!, route.method, path, body)
        t.equal(without.statusCode, 403, `${label}: a ${kind} without ${route.scope}`)
        t.equal(without.json().code, 'auth.insufficient_scope', label)
        expectedRefusals++
      }
    }
  }
  t.same(await domainState(gw), before, 'nothing changed')
  const audited = (await refusals(gw)).slice(refusedBefore)
  t.equal(audited.length, expectedRefusals, 'every refusal is in the audit trail')
  const scopeRefusal = audited.find((r) => r.result.code === 'auth.insufficient_scope')!
  t.match(scopeRefusal, { result: { status: 403, method: String, route: String } })
  t.not(scopeRefusal.principal_id, UNAUTHENTICATED, 'a scope refusal names the verified principal')
  t.ok(audited.some((r) => r.principal_id === UNAUTHENTICATED && r.result.code === 'auth.missing_token'), 'an unsigned call is recorded as unauthenticated')
})

t.test('cross-tenant: another court’s listing, another agency’s receipt and feedback', async (t) => {
  const gw = await buildTestGateway(t)
  const court = await gw.addPrincipal({ id: 'court-a', kind: 'court', courtCode: '京0105', scopes: ['listings:write', 'listings:read'] })
  const otherCourt = await gw.addPrincipal({ id: 'court-b', kind: 'court', courtCode: '京0106', scopes: ['listings:write', 'listings:read'] })
  const profile: PrincipalProfile = { lists: ['dishonest'], fields: ['name'], scenarios: ['TICKET_AIR'] }
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['match', 'feedback:write'], profile })
  const other = await gw.addPrincipal({ id: 'other-agency', kind: 'agency', scopes: ['match', 'feedback:write'], profile })
  const listing = (await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1)] })).json().results[0].listingId
  await gw.app.matchSync.catchUp()
  const hit = (await gw.signed(caac, 'POST', '/v1/match', { idNumber: (personListing(1).subject as { idNumber: string }).idNumber, scenario: 'TICKET_AIR' })).json()
  t.equal(hit.matched, true)
  const before = await domainState(gw)
  const refusedBefore = (await refusals(gw)).length

  const removal = await gw.signed(otherCourt, 'POST', `/v1/listings/${listing}/removal`, { reason: 'performed' })
  t.equal(removal.statusCode, 403)
  t.equal(removal.json().code, 'listings.cross_court_write')
  const overwrite = await gw.signed(otherCourt, 'POST', '/v1/listings', { items: [personListing(1)] })
  t.equal(overwrite.json().results[0].status, 'rejected', 'a case number of another court is refused item by item')
  const receipt = await gw.signed(other, 'GET', `/v1/receipts/${hit.receiptId}`)
  t.equal(receipt.statusCode, 404, 'another agency’s receipt does not exist for this one')
  const feedback = await gw.signed(other, 'POST', '/v1/feedback', { receiptId: hit.receiptId, action: 'restricted', measures: ['CAAC-AIR'] })
  t.equal(feedback.statusCode, 404)
  // Projection is the profile's, never the caller's: asking for more fields is invalid or ignored.
  const idNumber = (personListing(1).subject as { idNumber: string }).idNumber
  const askedInBody = await gw.signed(caac, 'POST', '/v1/match', { idNumber, scenario: 'TICKET_AIR', fields: ['idNumber', 'caseNumber'] })
  t.equal(askedInBody.statusCode, 400, 'a fields list in the match body is refused')
  t.equal(askedInBody.json().code, 'request.validation')
  const askedInQuery = await gw.signed(caac, 'POST', '/v1/match?fields=idNumber,caseNumber', { idNumber, scenario: 'TICKET_AIR' })
  if (askedInQuery.statusCode === 200) {
    const subject = JSON.stringify(askedInQuery.json().listings ?? askedInQuery.json())
    t.notOk(subject.includes(idNumber), 'a fields query does not widen the projection')
    t.notOk(subject.includes('caseNumber'), 'a field outside the profile stays absent')
  } else t.equal(askedInQuery.statusCode, 400, 'a fields query is refused')
  t.same({ ...(await domainState(gw)), matchAudit: 0 }, { ...before, matchAudit: 0 }, 'nothing changed')
  const audited = (await refusals(gw)).slice(refusedBefore)
  t.same(audited.map((r) => [r.principal_id, r.result.code]), [['court-b', 'listings.cross_court_write']], 'the 403 is audited with the court that tried')
})

t.test('token attacks on a writing route are refused with their code, audited, and change nothing', async (t) => {
  const gw = await buildTestGateway(t)
  const court = await gw.addPrincipal({ id: 'court-a', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const agency = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['match'], profile: { lists: ['dishonest'], fields: ['name'], scenarios: ['TICKET_AIR'] } })
  const admin = await gw.addPrincipal({ id: 'admin', kind: 'admin', scopes: ['principals:write'] })
  const bodyBytes = Buffer.from(JSON.stringify({ items: [personListing(7)] }))
  const nowS = () => Math.floor(gw.clock.nowMs() / 1000)
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const claims = (overrides: Record<string, unknown> = {}) => ({
    iss: court.principalId, aud: TEST_AUDIENCE, iat: nowS(), exp: nowS() + 60, jti: randomUUID(), htm: 'POST', htu: '/v1/listings',
    bsh: createHash('sha256').update(bodyBytes).digest('base64url'), ...overrides,
  })
  const send = (authorization: string, url = '/v1/listings', payload: Buffer = bodyBytes) =>
    gw.app.inject({ method: 'POST', url, payload, headers: { authorization, 'content-type': 'application/json' } })
  const signedBy = async (key: KeyFile, opts: { url?: string; body?: Buffer; now?: number; jti?: string } = {}) =>
    (await signRequest({ method: 'POST', pathWithQuery: opts.url ?? '/v1/listings', body: opts.body ?? bodyBytes, audience: TEST_AUDIENCE, key, now: opts.now ?? nowS(), jti: opts.jti })).authorization

  // A retired key: rotate the court's key, then sign with the old one.
  const rotated = await generatePrincipalKey('court-a')
  const publicJwk = createPublicKey(createPrivateKey({ key: court.privateJwk as never, format: 'jwk' })).export({ format: 'jwk' })
  const replayJti = randomUUID()
  const first = await send(await signedBy(agency, { url: '/v1/match', body: Buffer.from('{"idNumber":"110105198001010016","scenario":"TICKET_AIR"}'), jti: replayJti }), '/v1/match', Buffer.from('{"idNumber":"110105198001010016","scenario":"TICKET_AIR"}'))
  t.equal(first.statusCode, 200, 'the original request is served')

  // Rotation: the court's new key is added and the old one retired before the attacks.
  t.equal((await gw.signed(admin, 'POST', '/v1/principals/court-a/keys', rotated.publicJwk)).statusCode, 201)
  t.equal((await gw.signed(admin, 'DELETE', `/v1/principals/court-a/keys/${court.privateJwk.kid}`)).statusCode, 200)
  const before = await domainState(gw)
  const refusedBefore = (await refusals(gw)).length
  const attacks: Array<[string, () => Promise<LightMyRequestResponse>, number, string]> = [
    ['alg none', async () => send(`GW1 ${b64({ alg: 'none', kid: court.privateJwk.kid, typ: 'gw1+jwt' })}.${b64(claims())}.`), 401, 'auth.alg_not_allowed'],
    ['HS256 keyed with the public key', async () => send(`GW1 ${await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: court.privateJwk.kid, typ: 'gw1+jwt' }).sign(new TextEncoder().encode(JSON.stringify(publicJwk)))}`), 401, 'auth.alg_not_allowed'],
    ['the kid of another principal', async () => send(`GW1 ${await new CompactSign(new TextEncoder().encode(JSON.stringify(claims()))).setProtectedHeader({ alg: agency.privateJwk.alg, kid: agency.privateJwk.kid, typ: 'gw1+jwt' }).sign(createPrivateKey({ key: agency.privateJwk as never, format: 'jwk' }))}`), 401, 'auth.issuer_mismatch'],
    ['a replayed jti', async () => send(await signedBy(agency, { url: '/v1/match', body: Buffer.from('{"idNumber":"110105198001010016","scenario":"TICKET_AIR"}'), jti: replayJti }), '/v1/match', Buffer.from('{"idNumber":"110105198001010016","scenario":"TICKET_AIR"}')), 401, 'auth.replayed'],
    ['issued 10 minutes in the future', async () => send(await signedBy(rotated.keyFile, { now: nowS() + 600 })), 401, 'auth.token_not_yet_valid'],
    ['expired 10 minutes ago', async () => send(await signedBy(rotated.keyFile, { now: nowS() - 600 })), 401, 'auth.token_expired'],
    ['the body changed after signing', async () => send(await signedBy(rotated.keyFile), '/v1/listings', Buffer.from(JSON.stringify({ items: [personListing(8)] }))), 401, 'auth.body_mismatch'],
    ['a query added after signing', async () => send(await signedBy(rotated.keyFile), '/v1/listings?dryRun=true'), 401, 'auth.path_mismatch'],
    ['the path percent-encoded differently', async () => send(await signedBy(rotated.keyFile), '/v1/%6Cistings'), 401, 'auth.path_mismatch'],
    ['a retired key', async () => send(await signedBy(court)), 401, 'auth.key_retired'],
  ]
  for (const [name, attack, status, code] of attacks) {
    const res = await attack()
    t.equal(res.statusCode, status, name)
    t.equal(res.json().code, code, name)
    t.match(res.headers['content-type'], /application\/problem\+json/, name)
  }
  const after = await domainState(gw)
  t.same(after, before, 'no listing, event or audit entry came of any attack')
  const audited = (await refusals(gw)).slice(refusedBefore)
  t.same(audited.map((r) => r.result.code).sort(), attacks.map(([, , , code]) => code).sort(), 'each attack is audited as a refusal with its code')
  // A replay and a changed body carry a valid signature, so the key holder is named; any other refusal names no one.
  const verifiedSigner: Record<string, string> = { 'auth.replayed': 'caac', 'auth.body_mismatch': 'court-a' }
  t.same(audited.map((r) => r.principal_id), audited.map((r) => verifiedSigner[r.result.code] ?? UNAUTHENTICATED), 'only a verified signature names a caller')
  t.ok(audited.filter((r) => r.result.code !== 'auth.replayed').every((r) => r.result.claimedIssuer === 'court-a'), 'the claimed issuer is kept for tracing')
})
