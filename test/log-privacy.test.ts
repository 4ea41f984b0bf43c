import { readFileSync } from 'node:fs'
import t from 'tap'
import { findPrivateData } from './log-privacy.js'
import { personListing } from './factories.js'
import { buildTestGateway, testLogFile } from './helper.js'

const vectors = JSON.parse(readFileSync(new URL('../../shared/vectors/identifiers.json', import.meta.url), 'utf8')) as { residentId: { valid: string[]; invalid: Array<{ value: string }> } }

t.test('the detector finds identity numbers and key material, and passes what the gateway writes instead', async (t) => {
  for (const id of vectors.residentId.valid) {
    t.equal(findPrivateData(`{"msg":"matched ${id}"}`).length, 1, `a valid resident id in a message`)
    t.equal(findPrivateData(`{"url":"/v1/public/listings?id=${encodeURIComponent(id)}"}`).length, 1, 'in a url')
  }
  for (const { value } of vectors.residentId.invalid.filter((v) => /^(\d{15}|\d{17}[\dX])$/.test(v.value))) {
    t.equal(findPrivateData(`{"err":"bad id ${value}"}`).length, 1, `a seeded invalid id (${value.length} chars) is still someone's number`)
  }
  t.equal(findPrivateData('{"d":"' + 'A'.repeat(43) + '"}')[0]?.kind, 'private JWK member')
  t.equal(findPrivateData('-----BEGIN PRIVATE KEY-----')[0]?.kind, 'PEM private key')
  t.equal(findPrivateData('authorization: GW1 eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln')[0]?.kind, 'GW1 token')
  const clean = '{"level":30,"time":1763798400000,"reqId":"0f8d8a54-3c1e-4b7e-9a51-8d6f2c9e4b10","req":{"url":"/v1/public/listings?name=…&id=…"},"subject":"[id:3f9a0c2b7d1e4a56]","writerSeq":123456789012345}'
  t.same(findPrivateData(clean), [], 'uuids, times, hashes and masked values pass')
  t.notOk(JSON.stringify(findPrivateData(`x ${vectors.residentId.valid[0]}`)).includes(vectors.residentId.valid[0]!), 'the report masks what it found')
})

t.test('a gateway fed identity numbers in URLs, bodies, bad tokens and errors logs none of them', async (t) => {
  const gw = await buildTestGateway(t)
  const court = await gw.addPrincipal({ id: 'court-a', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const agency = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['match'], profile: { lists: ['dishonest'], fields: ['name'], scenarios: ['TICKET_AIR'] } })
  const listing = personListing(3)
  const idNumber = (listing.subject as { idNumber: string; name: string }).idNumber
  t.equal((await gw.signed(court, 'POST', '/v1/listings', { items: [listing] })).statusCode, 200)
  await gw.app.matchSync.catchUp()
  t.equal((await gw.signed(agency, 'POST', '/v1/match', { idNumber, scenario: 'TICKET_AIR' })).json().matched, true)
  t.equal((await gw.signed(agency, 'POST', '/v1/match', { idNumber: vectors.residentId.invalid[0]!.value, scenario: 'TICKET_AIR' })).statusCode, 400)
  const name = (listing.subject as { name: string }).name
  await gw.app.inject({ url: `/v1/public/listings?name=${encodeURIComponent(name)}&id=${idNumber}` })
  await gw.app.inject({ url: `/v1/nowhere/${idNumber}` })
  await gw.app.inject({ method: 'POST', url: '/v1/match', payload: { idNumber }, headers: { authorization: `GW1 ${'x'.repeat(20)}` } })
  await gw.app.inject({ method: 'POST', url: '/v1/match', payload: `{"idNumber":"${idNumber}"`, headers: { 'content-type': 'application/json' } })
  await gw.app.close() // flushes the log

  const log = readFileSync(testLogFile(), 'utf8')
  t.equal((log.match(/"req":\{/g) ?? []).length, 7, 'every request was logged')
  t.match(log, /\/v1\/nowhere\/\[id(:[0-9a-f]+)?\]/, 'an identifier in a path is logged as its keyed hash')
  t.same(findPrivateData(log, testLogFile()), [], 'no identity number or key material in the log')
})
