import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startWebhookReceiver } from '../src/client/webhook-receiver.js'
import { buildTestGateway } from './helper.js'
import { personListing } from './factories.js'

t.test('the reference receiver verifies, de-duplicates and applies pushed events', async (t) => {
  const gw = await buildTestGateway(t, { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_POLL_MS: '60000' })
  gw.clock.set(Date.parse('2026-03-02T04:00:00Z'))
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['changes:read'], profile: { lists: ['dishonest'], fields: ['name'] } })
  const dir = mkdtempSync(join(tmpdir(), 'cg-webhook-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const jwks = (await gw.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
  const receiver = await startWebhookReceiver({ outDir: dir, jwks })
  t.teardown(() => receiver.close())

  const sub = (await gw.signed(caac, 'POST', '/v1/subscriptions', { url: receiver.url })).json()
  const pushed = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), personListing(2), personListing(3)] })
  const ids = pushed.json().results.map((r: { listingId: string }) => r.listingId) as string[]
  await gw.signed(court, 'POST', `/v1/listings/${ids[1]}/removal`, { reason: 'performed' })
  t.equal(await gw.app.delivery.runOnce(), 4)
  const copy = () => readFileSync(join(dir, 'listings.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).id as string).sort()
  t.same(copy(), [ids[0], ids[2]].sort(), 'published and removed as pushed')
  t.same(receiver.stats, { applied: 4, repeats: 0, refused: 0 })

  // Delivery is at least once: the same event again is acknowledged and not applied twice.
  await gw.signed(caac, 'PATCH', `/v1/subscriptions/${sub.id}`, { status: 'active' })
  await gw.database.query('UPDATE subscriptions SET acked_seq = 0 WHERE id = $1', [sub.id])
  t.equal(await gw.app.delivery.runOnce(), 4, 'redelivered from the start')
  t.same(receiver.stats, { applied: 4, repeats: 4, refused: 0 })
  t.same(copy(), [ids[0], ids[2]].sort())

  // A forged event (a valid signature of another body) is refused and changes nothing.
  const body = JSON.stringify({ subscriptionId: sub.id, event: { seq: 999, kind: 'removed', listingId: ids[0], version: 9, listing: { id: ids[0], version: 9 } } })
  const [attempt] = (await gw.signed(caac, 'GET', `/v1/subscriptions/${sub.id}/deliveries?limit=1`)).json().attempts
  t.ok(attempt.ok)
  const real = await gw.gatewayKeys.signDetached(Buffer.from('{"other":true}'), { sub: sub.id, seq: 999 })
  const forged = await fetch(receiver.url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-gw-signature': real } })
  t.equal(forged.status, 401)
  const unsigned = await fetch(receiver.url, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
  t.equal(unsigned.status, 400)
  t.same(copy(), [ids[0], ids[2]].sort(), 'the copy is unchanged')
  t.equal(receiver.stats.refused, 1)
})
