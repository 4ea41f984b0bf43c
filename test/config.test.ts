import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'
import { redactIdentifiers, redactPublicQuery } from '../src/infra/logger.js'
import { createIdentifierHasher } from '../src/modules/identity/identity.models.js'

t.test('the embedded demo needs no configuration and seeds demo principals', async (t) => {
  const c = loadConfig({})
  t.equal(c.databaseUrl, undefined)
  t.equal(c.gatewayId, 'credit-gateway')
  t.equal(c.port, 3000)
  t.equal(c.seedDemo, true)
})

t.test('a real database requires a signing key (no default secrets) and is not seeded', async (t) => {
  t.throws(() => loadConfig({ DATABASE_URL: 'postgres://db/x' }), ConfigError)
  t.throws(() => loadConfig({ DATABASE_URL: 'postgres://db/x', GATEWAY_SIGNING_KEY_FILE: '/run/secrets/k' }), /IDENTIFIER_HASH_SECRET/)
  const c = loadConfig({ DATABASE_URL: 'postgres://db/x', GATEWAY_SIGNING_KEY_FILE: '/run/secrets/k', IDENTIFIER_HASH_SECRET: 'x'.repeat(32), PORT: '8080', HOST: '0.0.0.0' })
  t.equal(c.seedDemo, false)
  t.equal(c.port, 8080)
  t.equal(c.host, '0.0.0.0')
})

t.test('each bad value is named in the error', async (t) => {
  const err = t.throws(() => loadConfig({ PORT: 'eighty', GATEWAY_ID: 'Has Spaces', DATABASE_URL: 'mysql://x' })) as Error
  t.type(err, ConfigError)
  t.match(err.message, /PORT/)
  t.match(err.message, /GATEWAY_ID/)
  t.match(err.message, /DATABASE_URL/)
})

t.test('identity numbers and credit codes never reach a log line in clear', async (t) => {
  t.equal(redactIdentifiers('/v1/public/listings?name=张三&id=11010519491231002X'), '/v1/public/listings?name=张三&id=[id]')
  t.equal(redactIdentifiers('/x?c=91350100M000100Y43&old=110105491231002'), '/x?c=[id]&old=[id]')
  t.equal(redactIdentifiers('/x?id=11010519491231002x'), '/x?id=[id]')
  t.equal(redactPublicQuery('/v1/public/listings?name=%E5%BC%A0%E4%B8%89&id=1101051949****002X&page=2'), '/v1/public/listings?name=…&id=…&page=…', 'a citizen’s search terms stay out of the log')
  t.equal(redactPublicQuery('/v1/listings?after=5'), '/v1/listings?after=5', 'signed routes keep their query')
  t.equal(redactIdentifiers('/x?id=%31%31%30%31%30%35%31%39%34%39%31%32%33%31%30%30%32%58'), '/x?id=[id]', 'percent-encoded too')
  t.equal(redactIdentifiers('/v1/principals/court-bj-0105'), '/v1/principals/court-bj-0105', 'ordinary paths untouched')
  const hash = createIdentifierHasher('k'.repeat(32))
  const a = redactIdentifiers('/x?id=11010519491231002x', hash)
  t.match(a, /^\/x\?id=\[id:[0-9a-f]{16}\]$/, 'with a hasher: a keyed hash prefix, never the number')
  t.equal(a, redactIdentifiers('/y?id=11010519491231002X', hash).replace('/y', '/x'), 'the same person gives the same hash')
  t.not(a, redactIdentifiers('/x?id=11010519491231002X', createIdentifierHasher('j'.repeat(32))), 'another key gives another hash')
})
