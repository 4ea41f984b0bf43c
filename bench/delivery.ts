/**
 * bench/delivery: events delivered per second by webhook to one fast loopback receiver, and
 * snapshot rows per second, each beside a same-run baseline. In-process (the gateway app through
 * the test helper's builder), on PostgreSQL when TEST_DATABASE_URL is set, else embedded PGlite.
 *   - webhooks: N listing events delivered in order, signed, each acknowledged before the next
 *     (`runOnce` passes until drained); baselines: SELECT of the same events, and a plain sequential
 *     POST of the same bodies to the same receiver with no signing and no state.
 *   - snapshot: every page of GET /v1/snapshot (5 000 rows a page) through the signed route;
 *     baseline: SELECT of the same rows.
 * Run: `npx tsx bench/delivery.ts` (N=5000 by default).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { buildTestGateway } from '../test/helper.js'
import { caseNumber, personId, personListing } from '../test/factories.js'

const N = Number(process.env.N ?? 5000)
const teardowns: (() => unknown)[] = []
const gw = await buildTestGateway({ teardown: (f: () => unknown) => teardowns.push(f) } as never, { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_POLL_MS: '60000' })
let received = 0
const server = createServer((req, res) => { req.resume(); req.on('end', () => { received++; res.writeHead(204).end() }) })
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
try {
  gw.clock.set(Date.parse('2026-03-02T04:00:00Z'))
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['changes:read'], profile: { lists: ['dishonest', 'restricted'], fields: ['name', 'caseNumber'] } })
  const sub = await gw.signed(caac, 'POST', '/v1/subscriptions', { url, afterSeq: 0 })
  for (let b = 0; b < N; b += 1000) {
    const items = Array.from({ length: Math.min(1000, N - b) }, (_, i) => personListing(b + i + 1, { caseNumber: caseNumber(b + i + 1, '京0105', 2026), subject: { kind: 'person', name: `张${b + i}`, idNumber: personId(b + i, `19${50 + ((b + i) % 40)}0101`) } }))
    const r = await gw.signed(court, 'POST', '/v1/listings', { items })
    if (r.json().summary.created !== items.length) throw new Error(r.body)
  }

  let t0 = performance.now()
  let delivered = 0
  while (delivered < N) {
    const n = await gw.app.delivery.runOnce()
    if (n === 0) throw new Error(`stalled at ${delivered}; receiver got ${received}; ${JSON.stringify(await gw.database.query("SELECT count(*), count(*) FILTER (WHERE ok) AS ok, count(DISTINCT seq) AS seqs, max(seq) FROM delivery_attempts"))} skipped: ${JSON.stringify(await gw.database.query("SELECT kind, list_kind, count(*) FROM listing_events e WHERE NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.seq = e.seq) GROUP BY 1, 2"))}`)
    delivered += n
  }
  const webhookSeconds = (performance.now() - t0) / 1000

  t0 = performance.now()
  const events = await gw.database.query<{ listing: unknown }>('SELECT seq, kind, listing_id, version, listing, at FROM listing_events ORDER BY seq')
  const selectEventsSeconds = (performance.now() - t0) / 1000
  const before = received
  t0 = performance.now()
  for (const e of events) await fetch(url, { method: 'POST', body: JSON.stringify({ event: e }), headers: { 'content-type': 'application/json' } })
  const plainPostSeconds = (performance.now() - t0) / 1000
  if (received - before !== events.length) throw new Error('plain POST baseline lost requests')

  t0 = performance.now()
  let rows = 0
  let cursor: string | null = null
  do {
    const res = await gw.signed(caac, 'GET', `/v1/snapshot?limit=5000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
    const lines = res.body.trimEnd().split('\n')
    const manifest = JSON.parse(lines.pop()!).manifest
    rows += lines.length
    cursor = manifest.next
  } while (cursor)
  const snapshotSeconds = (performance.now() - t0) / 1000
  t0 = performance.now()
  const selected = await gw.database.query("SELECT * FROM listings WHERE status = 'published' ORDER BY id")
  const selectListingsSeconds = (performance.now() - t0) / 1000

  const perSecond = (n: number, s: number) => Math.round(n / s).toLocaleString('en')
  console.log(`delivery bench, ${gw.database.engine}, ${N.toLocaleString('en')} events / listings`)
  console.log(`  webhooks to one loopback receiver: ${perSecond(N, webhookSeconds)} events/s (signed, in order, each acknowledged before the next)`)
  console.log(`    baselines: SELECT of the same events ${perSecond(events.length, selectEventsSeconds)}/s; plain sequential POST of the same bodies ${perSecond(events.length, plainPostSeconds)}/s`)
  console.log(`  snapshot through GET /v1/snapshot: ${perSecond(rows, snapshotSeconds)} rows/s (${rows} rows)`)
  console.log(`    baseline: SELECT of the same rows ${perSecond(selected.length, selectListingsSeconds)}/s`)
} finally {
  server.close()
  for (const f of teardowns.reverse()) await f()
}
