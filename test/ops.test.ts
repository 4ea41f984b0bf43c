import t from 'tap'
import { buildTestGateway, createTestDatabase } from './helper.js'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { openDatabase } from '../src/infra/db.js'
import { gatewayKeysFromJson, generateGatewayJwk } from '../src/infra/gateway-keys.js'

t.test('healthz, readyz, metrics and the JWKS answer without a signature', async (t) => {
  const gw = await buildTestGateway(t)
  t.same((await gw.app.inject('/healthz')).json(), { status: 'ok' })
  const ready = await gw.app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json().checks, { database: 'ok', migrations: 'ok', matchIndex: 'ok', rules: 'ok' })
  const jwks = (await gw.app.inject('/.well-known/jwks.json')).json()
  t.equal(jwks.keys.length, 1)
  t.equal(jwks.keys[0].kid, 'gw-test-1')
  t.notOk('d' in jwks.keys[0], 'the private part is never published')
  const metrics = await gw.app.inject('/metrics')
  t.match(metrics.headers['content-type'], /^text\/plain/)
  t.match(metrics.body, /gateway_http_request_duration_seconds_bucket\{.*operation="ops.readyz"/)
  t.match(metrics.body, /process_cpu_user_seconds_total/)
})

t.test('readyz is not ready on a database without migrations', async (t) => {
  const database = await openDatabase({})
  t.teardown(() => database.close())
  const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0' }), database, gatewayKeys: gatewayKeysFromJson(JSON.stringify(generateGatewayJwk())), logger: false }).catch((e: Error) => e)
  // Without migrations the principals tables do not exist; the app still builds, and readiness says why.
  if (app instanceof Error) return t.fail(app.message)
  t.teardown(() => app.close())
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 503)
  t.match(ready.json().checks.migrations, /pending: 0001_principals.sql/)
})

t.test('a rotated gateway key set publishes old and new keys and signs with the first', async (t) => {
  const database = await createTestDatabase(t)
  const keys = gatewayKeysFromJson(JSON.stringify({ keys: [generateGatewayJwk('gw-new'), generateGatewayJwk('gw-old')] }))
  const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0' }), database, gatewayKeys: keys, logger: false })
  t.teardown(() => app.close())
  const jwks = (await app.inject('/.well-known/jwks.json')).json()
  t.same(jwks.keys.map((k: { kid: string }) => k.kid), ['gw-new', 'gw-old'])
  t.equal(keys.kid, 'gw-new')
  t.throws(() => gatewayKeysFromJson('{"kty":"oct","k":"abc","kid":"x","d":"y"}'), /ES256|EdDSA/)
  t.throws(() => gatewayKeysFromJson('not json'), /not valid JSON/)
})

t.test('an embedded database directory refuses a second opener and is released on close', async (t) => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const dir = join(mkdtempSync(join(tmpdir(), 'cgw-lock-')), 'pgdata')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const first = await openDatabase({ pgliteDir: dir })
  await t.rejects(openDatabase({ pgliteDir: dir }), /is open in process/)
  await first.close()
  writeFileSync(join(dir, 'gateway.lock'), '999999999') // left by a process that died
  const second = await openDatabase({ pgliteDir: dir })
  await second.close()
})
