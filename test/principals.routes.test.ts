import t from 'tap'
import { ADMIN_SCOPES, buildTestGateway } from './helper.js'
import { generatePrincipalKey } from '../src/modules/principals/principals.keygen.js'

t.test('an admin creates an agency and reads it back with its key', async (t) => {
  const gw = await buildTestGateway(t)
  const admin = await gw.addPrincipal({ id: 'admin-1', kind: 'admin', scopes: ADMIN_SCOPES })
  const { publicJwk } = await generatePrincipalKey('samr')
  const create = await gw.signed(admin, 'POST', '/v1/principals', {
    id: 'samr', kind: 'agency', name: '国家市场监督管理总局', scopes: ['match'], profile: { lists: ['dishonest'], scenarios: ['COMPANY_OFFICER_REG'] }, keys: [publicJwk],
  })
  t.equal(create.statusCode, 201, create.body)
  const got = await gw.signed(admin, 'GET', '/v1/principals/samr')
  t.equal(got.statusCode, 200)
  const body = got.json()
  t.equal(body.kind, 'agency')
  t.same(body.scopes, ['match'])
  t.equal(body.keys[0].kid, publicJwk.kid)
  t.equal(body.keys[0].status, 'active')
})
