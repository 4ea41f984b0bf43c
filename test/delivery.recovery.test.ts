import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose'
import t from 'tap'
import { buildTestGateway } from './helper.js'
import { personListing } from './factories.js'

/**
 * Issue 7 "Done when": a real receiver on 127.0.0.1 fails its first deliveries, is then down for a
 * while, then comes back; every event arrives, in order, exactly once after de-duplication by
 * sequence, and every signature verifies. A slow receiver of another subscription does not hold it up.
 */
t.test('a receiver that fails, goes down and comes back gets every event in order', async (t) => {
  const gw = await buildTestGateway(t, { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RETRY_BASE_MS: '1000', WEBHOOK_RETRY_MAX_MS: '8000', WEBHOOK_TIMEOUT_MS: '2000', WEBHOOK_PAUSE_AFTER_SECONDS: '3600', WEBHOOK_POLL_MS: '60000' })
  gw.clock.set(Date.parse('2026-03-02T04:00:00Z'))
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['changes:read'], profile: { lists: ['dishonest'], fields: ['name'] } })
  const samr = await gw.addPrincipal({ id: 'samr', kind: 'agency', scopes: ['changes:read'], profile: { lists: ['dishonest'], fields: ['name'] } })

  const bodies: { seq: number; body: Buffer; signature: string }[] = []
  let failuresLeft = 3
  let port = 0
  const start = () => new Promise<Server>((resolve) => {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        if (failuresLeft > 0) { failuresLeft--; res.writeHead(503).end(); return }
        const body = Buffer.concat(chunks)
        bodies.push({ seq: JSON.parse(body.toString()).event.seq, body, signature: String(req.headers['x-gw-signature']) })
        res.writeHead(200).end()
      })
    })
    server.listen(port, '127.0.0.1', () => { port = (server.address() as AddressInfo).port; resolve(server) })
  })
  let server = await start()
  // A second subscription whose receiver never answers in time.
  const slow = createServer(() => { /* never answers */ })
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r))
  t.teardown(() => { slow.closeAllConnections(); slow.close() })

  const sub = (await gw.signed(caac, 'POST', '/v1/subscriptions', { url: `http://127.0.0.1:${port}/hook` })).json()
  await gw.signed(samr, 'POST', '/v1/subscriptions', { url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/hook` })
  const pushed = await gw.signed(court, 'POST', '/v1/listings', { items: Array.from({ length: 12 }, (_, i) => personListing(i + 1)) })
  await gw.signed(court, 'POST', `/v1/listings/${pushed.json().results[3].listingId}/removal`, { reason: 'performed' })
  const expected = (await gw.database.query<{ seq: string }>('SELECT seq::text AS seq FROM listing_events ORDER BY listing_events.seq')).map((r) => Number(r.seq))
  t.equal(expected.length, 13)

  const pass = async () => { gw.clock.advance(10); return gw.app.delivery.runOnce() }
  for (let i = 0; i < 3; i++) await pass() // the first three attempts get 503
  t.equal(bodies.length, 0)
  await new Promise<void>((r) => server.close(() => r())) // down
  for (let i = 0; i < 3; i++) await pass()
  const down = (await gw.signed(caac, 'GET', `/v1/subscriptions/${sub.id}/deliveries?limit=3`)).json()
  t.ok(down.attempts.every((a: { ok: boolean; httpStatus: number | null }) => !a.ok && a.httpStatus === null), 'refused connections are recorded as failures')
  t.ok(down.subscription.attempts >= 6, `attempts counted (${down.subscription.attempts})`)
  server = await start() // back, on the same port
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  const started = Date.now()
  for (let i = 0; i < 10 && new Set(bodies.map((b) => b.seq)).size < expected.length; i++) await pass()
  t.ok(Date.now() - started < 10_000, 'the slow receiver of the other subscription did not hold deliveries up for long')

  const firstSeen = [...new Map(bodies.map((b) => [b.seq, b])).values()]
  t.same(firstSeen.map((b) => b.seq), expected, 'every event, in order, once after de-duplication by sequence')
  t.same(bodies.map((b) => b.seq), [...bodies.map((b) => b.seq)].sort((a, b) => a - b), 'never out of order')
  const jwks = createLocalJWKSet((await gw.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json())
  for (const b of bodies) {
    const [h, , s] = b.signature.split('.')
    await compactVerify(`${h}.${b.body.toString('base64url')}.${s}`, jwks)
    t.equal(decodeProtectedHeader(b.signature).seq, b.seq)
  }
  t.equal((await gw.signed(caac, 'GET', `/v1/subscriptions/${sub.id}`)).json().ackedSeq, expected.at(-1))
})
