import t, { type Test } from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { ADMIN_SCOPES, buildTestGateway, type TestGateway } from './helper.js'
import { generatePrincipalKey } from '../src/modules/principals/principals.keygen.js'

async function withAdmin(t: Test) {
  const gw = await buildTestGateway(t)
  const admin = await gw.addPrincipal({ id: 'admin-1', kind: 'admin', scopes: ADMIN_SCOPES })
  return { gw, admin }
}

async function principalCount(gw: TestGateway): Promise<number> {
  const [row] = await gw.database.query<{ n: number }>('SELECT count(*)::int AS n FROM principals')
  return row!.n
}

async function agencyBody(id = 'samr', extra: Record<string, unknown> = {}) {
  const { publicJwk } = await generatePrincipalKey(id)
  return { id, kind: 'agency', name: '国家市场监督管理总局', scopes: ['match'], profile: { lists: ['dishonest'], scenarios: ['COMPANY_OFFICER_REG'] }, keys: [publicJwk], ...extra }
}

t.test('an admin creates an agency and reads it back with its key', async (t) => {
  const { gw, admin } = await withAdmin(t)
  const body = await agencyBody()
  const create = await gw.signed(admin, 'POST', '/v1/principals', body)
  t.equal(create.statusCode, 201, create.body)
  const got = await gw.signed(admin, 'GET', '/v1/principals/samr')
  t.equal(got.statusCode, 200)
  const p = got.json()
  t.equal(p.kind, 'agency')
  t.same(p.scopes, ['match'])
  t.same(p.profile, body.profile)
  t.equal(p.keys[0].kid, body.keys[0]!.kid)
  t.equal(p.keys[0].status, 'active')
  t.notOk('d' in p.keys[0].publicJwk, 'no private member is ever stored or returned')
  const list = await gw.signed(admin, 'GET', '/v1/principals')
  t.same(list.json().items.map((i: { id: string }) => i.id), ['admin-1', 'samr'])
})

t.test('retrying the same creation returns the existing principal; a different one under the id conflicts', async (t) => {
  const { gw, admin } = await withAdmin(t)
  const body = await agencyBody()
  t.equal((await gw.signed(admin, 'POST', '/v1/principals', body)).statusCode, 201)
  const again = await gw.signed(admin, 'POST', '/v1/principals', body)
  t.equal(again.statusCode, 200, 'an identical retry is acknowledged, not duplicated')
  const clash = await gw.signed(admin, 'POST', '/v1/principals', { ...body, name: 'someone else' })
  t.equal(clash.statusCode, 409)
  t.equal(clash.json().code, 'principals.already_exists')
  t.equal(await principalCount(gw), 2)
})

t.test('a court needs its court code and may not hold agency scopes (least privilege)', async (t) => {
  const { gw, admin } = await withAdmin(t)
  const { publicJwk } = await generatePrincipalKey('court-x')
  const noCode = await gw.signed(admin, 'POST', '/v1/principals', { id: 'court-x', kind: 'court', name: '法院', scopes: ['listings:write'], keys: [publicJwk] })
  t.equal(noCode.statusCode, 400)
  t.equal(noCode.json().code, 'principals.court_code')
  const badScope = await gw.signed(admin, 'POST', '/v1/principals', { id: 'court-x', kind: 'court', courtCode: '京0105', name: '法院', scopes: ['listings:write', 'match'], keys: [publicJwk] })
  t.equal(badScope.statusCode, 422)
  t.equal(badScope.json().code, 'principals.scope_not_allowed')
  t.match(badScope.json().detail, /match/)
  const badCode = await gw.signed(admin, 'POST', '/v1/principals', { id: 'court-x', kind: 'court', courtCode: '京105', name: '法院', scopes: ['listings:write'], keys: [publicJwk] })
  t.equal(badCode.statusCode, 400)
  t.equal(badCode.json().field, 'body.courtCode')
  const ok = await gw.signed(admin, 'POST', '/v1/principals', { id: 'court-x', kind: 'court', courtCode: '京0105', name: '法院', scopes: ['listings:write'], keys: [publicJwk] })
  t.equal(ok.statusCode, 201, ok.body)
  t.equal(ok.json().courtCode, '京0105')
  t.equal(await principalCount(gw), 2, 'only the valid court was written')
})

t.test('keys that are private, too weak or of an unsupported type are refused', async (t) => {
  const { gw, admin } = await withAdmin(t)
  const weakRsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' })
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' })
  const { keyFile } = await generatePrincipalKey('samr')
  const cases: [string, Record<string, unknown>, string][] = [
    ['RSA 1024', { ...weakRsa, kid: 'weak' }, 'principals.invalid_key'],
    ['a private JWK', { ...keyFile.privateJwk }, 'request.validation'],
    ['EC P-384', { ...p384, kid: 'p384' }, 'request.validation'],
    ['an HMAC secret', { kty: 'oct', k: 'c2VjcmV0', kid: 'hs' }, 'request.validation'],
  ]
  for (const [what, jwk, code] of cases) {
    const res = await gw.signed(admin, 'POST', '/v1/principals', await agencyBody('samr', { keys: [jwk] }))
    t.equal(res.json().code, code, what)
    t.ok(res.statusCode === 400, `${what}: 400`)
  }
  t.equal(await principalCount(gw), 1)
})

t.test('an admin changes scopes and profile; a scope outside the kind is refused', async (t) => {
  const { gw, admin } = await withAdmin(t)
  await gw.signed(admin, 'POST', '/v1/principals', await agencyBody())
  const up = await gw.signed(admin, 'PATCH', '/v1/principals/samr', { scopes: ['match', 'changes:read'], profile: { lists: ['dishonest', 'restricted'], dailyQuota: 10 } })
  t.equal(up.statusCode, 200, up.body)
  t.same(up.json().scopes, ['match', 'changes:read'])
  t.same(up.json().profile, { lists: ['dishonest', 'restricted'], dailyQuota: 10 })
  const bad = await gw.signed(admin, 'PATCH', '/v1/principals/samr', { scopes: ['principals:write'] })
  t.equal(bad.statusCode, 422)
  t.equal(bad.json().code, 'principals.scope_not_allowed')
  const empty = await gw.signed(admin, 'PATCH', '/v1/principals/samr', {})
  t.equal(empty.statusCode, 400)
  const missing = await gw.signed(admin, 'PATCH', '/v1/principals/nobody', { name: 'x' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'principals.not_found')
  const self = await gw.signed(admin, 'PATCH', '/v1/principals/admin-1', { status: 'disabled' })
  t.equal(self.json().code, 'principals.self_lockout')
  const after = await gw.signed(admin, 'GET', '/v1/principals/samr')
  t.same(after.json().scopes, ['match', 'changes:read'], 'refused changes changed nothing')
})

t.test('every change to a principal is recorded with its actor and request id', async (t) => {
  const { gw, admin } = await withAdmin(t)
  const created = await gw.signed(admin, 'POST', '/v1/principals', await agencyBody())
  await gw.signed(admin, 'PATCH', '/v1/principals/samr', { name: '市场监管总局' })
  const events = await gw.database.query<{ actor: string; action: string; request_id: string }>(
    "SELECT actor, action, request_id FROM principal_events WHERE principal_id = 'samr' ORDER BY id")
  t.same(events.map((e) => [e.actor, e.action]), [['admin-1', 'created'], ['admin-1', 'updated']])
  t.equal(events[0]!.request_id, created.headers['x-request-id'])
})

t.test('key rotation: a second key is added, the first retired; both steps are idempotent', async (t) => {
  const { gw, admin } = await withAdmin(t)
  const first = await generatePrincipalKey('samr')
  await gw.signed(admin, 'POST', '/v1/principals', await agencyBody('samr', { keys: [first.publicJwk] }))
  const second = await generatePrincipalKey('samr')
  const add = await gw.signed(admin, 'POST', '/v1/principals/samr/keys', second.publicJwk)
  t.equal(add.statusCode, 201, add.body)
  t.same(add.json().keys.map((k: { status: string }) => k.status), ['active', 'active'])
  t.equal((await gw.signed(admin, 'POST', '/v1/principals/samr/keys', second.publicJwk)).statusCode, 200, 're-adding is a no-op')
  const taken = await gw.signed(admin, 'POST', '/v1/principals/admin-1/keys', second.publicJwk)
  t.equal(taken.statusCode, 409)
  t.equal(taken.json().code, 'principals.kid_taken')
  const retire = await gw.signed(admin, 'DELETE', `/v1/principals/samr/keys/${first.publicJwk.kid}`)
  t.equal(retire.statusCode, 200)
  const byKid = Object.fromEntries(retire.json().keys.map((k: { kid: string; status: string }) => [k.kid, k.status]))
  t.same(byKid, { [first.publicJwk.kid as string]: 'retired', [second.publicJwk.kid as string]: 'active' })
  t.equal((await gw.signed(admin, 'DELETE', `/v1/principals/samr/keys/${first.publicJwk.kid}`)).statusCode, 200)
  const unknown = await gw.signed(admin, 'DELETE', '/v1/principals/samr/keys/nope')
  t.equal(unknown.json().code, 'principals.key_not_found')
  // The new key signs, the retired one is refused.
  t.equal((await gw.signed(second.keyFile, 'GET', '/v1/whoami')).statusCode, 200)
  const old = await gw.signed(first.keyFile, 'GET', '/v1/whoami')
  t.equal(old.json().code, 'auth.key_retired')
})

t.test('an agency without principals:write cannot use the admin API', async (t) => {
  const { gw } = await withAdmin(t)
  const agency = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['match'] })
  const res = await gw.signed(agency, 'POST', '/v1/principals', await agencyBody('other'))
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'auth.insufficient_scope')
  t.equal(await principalCount(gw), 2)
})

t.test("a principal over its profile's rate limit gets 429 with Retry-After; others are unaffected", async (t) => {
  const gw = await buildTestGateway(t)
  const slow = await gw.addPrincipal({ id: 'slow-agency', kind: 'agency', scopes: ['match'], profile: { rateLimit: { max: 3, timeWindowSeconds: 60 } } })
  const other = await gw.addPrincipal({ id: 'other-agency', kind: 'agency', scopes: ['match'], profile: { rateLimit: { max: 3, timeWindowSeconds: 60 } } })
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) statuses.push((await gw.signed(slow, 'GET', '/v1/whoami')).statusCode)
  t.same(statuses, [200, 200, 200, 429])
  const limited = await gw.signed(slow, 'GET', '/v1/whoami')
  t.equal(limited.json().code, 'rate_limit.exceeded')
  t.match(limited.headers['content-type'], /^application\/problem\+json/)
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After is set')
  t.ok(limited.headers['x-gw-signature'], 'a 429 to a signed request is signed too')
  t.equal((await gw.signed(other, 'GET', '/v1/whoami')).statusCode, 200, 'limits are per principal')
})
