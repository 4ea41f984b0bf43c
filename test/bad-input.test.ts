import t from 'tap'
import { ADMIN_SCOPES, buildTestGateway } from './helper.js'
import { generatePrincipalKey } from '../src/modules/principals/principals.keygen.js'

const PROBLEM = /^application\/problem\+json/

t.test('bad input gets a clear 4xx problem with a stable code and changes nothing', async (t) => {
  const gw = await buildTestGateway(t, { BODY_LIMIT_BYTES: '4096' })
  const admin = await gw.addPrincipal({ id: 'admin-1', kind: 'admin', scopes: ADMIN_SCOPES })
  const { publicJwk } = await generatePrincipalKey('samr')
  const valid = { id: 'samr', kind: 'agency', name: 'SAMR', scopes: ['match'], keys: [publicJwk] }
  const count = async () => (await gw.database.query<{ n: number }>('SELECT count(*)::int AS n FROM principals'))[0]!.n

  const cases: { what: string; bytes: Buffer; type?: string; status: number; code: string; field?: string }[] = [
    { what: 'malformed JSON', bytes: Buffer.from('{"id": "samr",'), status: 400, code: 'request.malformed_json' },
    { what: 'an empty JSON body', bytes: Buffer.alloc(0), status: 400, code: 'request.malformed_json' },
    { what: 'a prototype-poisoning key', bytes: Buffer.from(JSON.stringify(valid).replace('{', '{"__proto__":{"admin":true},')), status: 400, code: 'request.malformed_json' },
    { what: 'a body over the size limit', bytes: Buffer.from(JSON.stringify({ ...valid, name: 'x'.repeat(5000) })), status: 413, code: 'request.body_too_large' },
    { what: 'an unknown field', bytes: Buffer.from(JSON.stringify({ ...valid, isRoot: true })), status: 400, code: 'request.validation', field: 'body.isRoot' },
    { what: 'a missing field', bytes: Buffer.from(JSON.stringify({ ...valid, name: undefined })), status: 400, code: 'request.validation', field: 'body.name' },
    { what: 'a number where text is required (never coerced)', bytes: Buffer.from(JSON.stringify({ ...valid, name: 12345 })), status: 400, code: 'request.validation', field: 'body.name' },
    { what: 'an unknown enum value', bytes: Buffer.from(JSON.stringify({ ...valid, kind: 'root' })), status: 400, code: 'request.validation', field: 'body.kind' },
    { what: 'a non-JSON media type', bytes: Buffer.from('id=samr'), type: 'application/x-www-form-urlencoded', status: 415, code: 'request.unsupported_media_type' },
    { what: 'a JSON array instead of an object', bytes: Buffer.from('[]'), status: 400, code: 'request.validation' },
  ]
  for (const c of cases) {
    const res = await gw.signedRaw(admin, 'POST', '/v1/principals', c.bytes, c.type)
    t.equal(res.statusCode, c.status, `${c.what}: status`)
    t.match(res.headers['content-type'], PROBLEM, `${c.what}: problem+json`)
    const body = res.json()
    t.equal(body.code, c.code, `${c.what}: code`)
    t.equal(body.status, c.status)
    t.ok(body.type && body.title && body.detail, `${c.what}: type, title and detail`)
    if (c.field) t.equal(body.field, c.field, `${c.what}: field`)
  }
  t.equal(await count(), 1, 'nothing was written')
})

t.test('an unknown route and a bad path parameter are problems too, never 500', async (t) => {
  const gw = await buildTestGateway(t)
  const admin = await gw.addPrincipal({ id: 'admin-1', kind: 'admin', scopes: ADMIN_SCOPES })
  const nf = await gw.app.inject({ method: 'GET', url: '/v1/nothing-here' })
  t.equal(nf.statusCode, 404)
  t.equal(nf.json().code, 'route.not_found')
  t.match(nf.headers['content-type'], PROBLEM)
  const badId = await gw.signed(admin, 'GET', '/v1/principals/NOT_A_SLUG')
  t.equal(badId.statusCode, 400)
  t.equal(badId.json().field, 'params.id')
  const badUrl = await gw.app.inject({ method: 'GET', url: '/v1/principals/%E0%A4%A' })
  t.ok(badUrl.statusCode >= 400 && badUrl.statusCode < 500, `malformed percent-encoding: ${badUrl.statusCode}`)
})
