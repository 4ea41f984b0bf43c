import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { decodeProtectedHeader } from 'jose'
import t, { type Test } from 'tap'
import { buildApp } from '../src/app.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { gatewayKeysFromJson, generateGatewayJwk } from '../src/infra/gateway-keys.js'
import { buildTestGateway, testClock, testLogFile } from './helper.js'
import { personListing } from './factories.js'

/**
 * A webhook delivery pass must never outlive its lease (README "Keeping a copy": two processes never
 * deliver one subscription at once). Two gateways on one database, each with its own delivery worker
 * and its own clock; a receiver that answers each POST only when the test says so (a slow receiver,
 * with time passing on the test's clocks, not the wall's). Reported: with a fixed 60 s lease never
 * renewed, a second process whose clock was 61 s ahead leased the subscription while the first was
 * still delivering, and the receiver got 1,2,1,3,2,4,3,5,4,6,5,6.
 */

const T0 = Date.parse('2026-03-02T04:00:00Z')
const LEASE_SECONDS = 60
// The poll timers stay out of the way: the test runs every pass itself.
const ENV = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_TIMEOUT_MS: '20000', WEBHOOK_LEASE_SECONDS: String(LEASE_SECONDS), WEBHOOK_RETRY_BASE_MS: '1000', WEBHOOK_RETRY_MAX_MS: '4000', WEBHOOK_PAUSE_AFTER_SECONDS: '600', WEBHOOK_POLL_MS: '60000' }

interface Post { seq: number; by: string; answer(status?: number): void }

/** A receiver holding every POST until the test answers it; `by` is the sending gateway (its signing key). */
async function heldReceiver(t: Test) {
  const posts: Post[] = []
  const open = new Set<ServerResponse>()
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const { event } = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      open.add(res)
      posts.push({ seq: event.seq, by: String(decodeProtectedHeader(String(req.headers['x-gw-signature'])).kid), answer: (status = 204) => { open.delete(res); res.writeHead(status).end() } })
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => { for (const res of open) res.destroy(); server.closeAllConnections(); return new Promise<void>((r) => server.close(() => r())) })
  /** Waits for the nth POST (1-based) to arrive; returns it. */
  async function nth(n: number): Promise<Post> {
    for (let i = 0; posts.length < n; i++) {
      if (i > 400) throw new Error(`no POST #${n} within 10 s (got ${posts.map((p) => `${p.by}:${p.seq}`).join(', ')})`)
      await new Promise((r) => setTimeout(r, 25))
    }
    return posts[n - 1]!
  }
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, posts, nth }
}

/** Gateway A (buildTestGateway) and gateway B: a second app on A's database, its own clock, key and delivery worker. */
async function twoGateways(t: Test) {
  const a = await buildTestGateway(t, { ...ENV })
  a.clock.set(T0)
  const clockB = testClock(T0)
  const b = await buildApp({ config: a.config, database: a.database, gatewayKeys: gatewayKeysFromJson(JSON.stringify(generateGatewayJwk('gw-test-b'))), clock: clockB, logFile: testLogFile() })
  t.teardown(() => b.close())
  const court = await a.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const caac = await a.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['changes:read'], profile: { lists: ['dishonest'], fields: ['name'] } })
  const hook = await heldReceiver(t)
  const sub = (await a.signed(caac, 'POST', '/v1/subscriptions', { url: hook.url })).json()
  const pushed = await a.signed(court, 'POST', '/v1/listings', { items: Array.from({ length: 6 }, (_, i) => personListing(i + 1)) })
  t.equal(pushed.json().summary.created, 6, 'six listings: six events')
  const seqs = (await a.database.query<{ seq: string }>('SELECT seq::text AS seq FROM listing_events WHERE seq > $1 ORDER BY listing_events.seq', [sub.ackedSeq])).map((r) => Number(r.seq))
  /** The subscription's row, and every cursor value seen so far (to show it never moved backwards). */
  const cursors: number[] = [sub.ackedSeq]
  const row = async () => {
    const [r] = await a.database.query<{ acked_seq: string; leased_by: string | null; lease_ms: string | null; attempts: number; last_error: string | null }>(
      'SELECT acked_seq::text, leased_by, (extract(epoch FROM lease_until) * 1000)::bigint::text AS lease_ms, attempts, last_error FROM subscriptions WHERE id = $1', [sub.id])
    cursors.push(Number(r!.acked_seq))
    return { ackedSeq: Number(r!.acked_seq), leasedBy: r!.leased_by, leaseUntil: r!.lease_ms === null ? null : Number(r!.lease_ms), attempts: r!.attempts, lastError: r!.last_error }
  }
  return { a, b, clockB, hook, sub, seqs, row, cursors }
}

const sent = (posts: Post[]) => posts.map((p) => `${p.by === 'gw-test-1' ? 'A' : 'B'}:${p.seq}`)
const increasing = (s: number[]) => s.every((v, i) => i === 0 || v > s[i - 1]!)

t.test('a slow pass renews its lease before each POST: the other process does not take over while it lasts', async (t) => {
  const { a, b, clockB, hook, seqs, row, cursors } = await twoGateways(t)
  const passA = a.app.delivery.runOnce()
  for (let n = 1; n <= seqs.length; n++) {
    const p = await hook.nth(n)
    t.equal(p.seq, seqs[n - 1], `A posts seq ${p.seq}`)
    const held = await row()
    t.equal(held.leaseUntil, a.clock.nowMs() + LEASE_SECONDS * 1000, `renewed before the POST: until A's clock + ${LEASE_SECONDS} s`)
    t.equal(held.ackedSeq, n === 1 ? cursors[0] : seqs[n - 2], 'the renewal carries the cursor: every event answered so far is acknowledged')
    // The receiver is slow: 59 s pass (on both clocks) before each answer; the pass lasts 6 × 59 s.
    a.clock.advance(59)
    clockB.set(a.clock.nowMs())
    if (n === 2) t.ok(clockB.nowMs() > T0 + LEASE_SECONDS * 1000, 'B\'s clock is past the lease taken at the start of the pass (what a never-renewed lease lets it take over)')
    t.equal(await b.delivery.runOnce(), 0, `B takes nothing during A's POST of seq ${p.seq}`)
    p.answer()
  }
  t.equal(await passA, seqs.length, 'A delivered all six in one pass lasting almost six leases')
  t.same(sent(hook.posts), seqs.map((s) => `A:${s}`), `the receiver got every event once, in order, from A alone (${sent(hook.posts).join(' ')})`)
  t.match(await row(), { ackedSeq: seqs.at(-1), leasedBy: null, attempts: 0, lastError: null }, 'settled at the head, lease released')
  t.ok(increasing([...new Set(cursors)]) && cursors.every((c, i) => i === 0 || c >= cursors[i - 1]!), `the cursor never moved backwards (${cursors.join(' → ')})`)
})

t.test('a pass that lost its lease stops before its next POST and writes nothing; the cursor never moves backwards', async (t) => {
  for (const order of ['A answered before B finishes (with an error)', 'A answered after B settled'] as const) {
    await t.test(order, async (t) => {
      const { a, b, clockB, hook, seqs, row, cursors } = await twoGateways(t)
      const passA = a.app.delivery.runOnce()
      ;(await hook.nth(1)).answer()
      const heldA = await hook.nth(2) // A's POST of the second event: held while A's lease runs out on B's clock
      t.equal(heldA.seq, seqs[1])
      const before = await row()
      t.equal(before.ackedSeq, seqs[0], 'A\'s renewal recorded the first event as acknowledged')
      // A stalls (or its clock lags): B's clock passes the lease A renewed before this POST.
      clockB.set(before.leaseUntil! + 1000)
      const passB = b.delivery.runOnce()
      const firstB = await hook.nth(3)
      t.equal(firstB.seq, seqs[1], 'B resumes from the cursor A recorded: only the event A has in flight is repeated')
      const taken = await row()
      t.not(taken.leasedBy, before.leasedBy, 'B holds the lease now')

      if (order === 'A answered before B finishes (with an error)') {
        heldA.answer(500) // A's in-flight POST fails after its lease has gone
        t.equal(await passA, 1, 'A\'s pass ends: one event delivered')
        const afterA = await row()
        t.same(afterA, taken, 'A wrote nothing: B\'s lease, cursor and state (no failure recorded) stand')
        firstB.answer()
        for (let n = 4; n <= seqs.length + 1; n++) (await hook.nth(n)).answer()
      } else {
        firstB.answer()
        for (let n = 4; n <= seqs.length + 1; n++) (await hook.nth(n)).answer()
        t.equal(await passB, seqs.length - 1, 'B delivered the rest')
        t.match(await row(), { ackedSeq: seqs.at(-1), leasedBy: null }, 'B settled at the head')
        heldA.answer() // only now does the receiver acknowledge A's POST
        t.equal(await passA, 2, 'A\'s pass ends after the POST in flight: it never posts again')
      }
      t.equal(await passB, seqs.length - 1, 'B delivered the events from A\'s cursor on')
      await new Promise((r) => setTimeout(r, 100))
      t.same(sent(hook.posts), [`A:${seqs[0]}`, `A:${seqs[1]}`, ...seqs.slice(1).map((s) => `B:${s}`)], `no overlapping passes: A stopped at the POST in flight when its lease went, B delivered the rest in order (${sent(hook.posts).join(' ')})`)
      const repeats = hook.posts.map((p) => p.seq).filter((s, i, all) => all.indexOf(s) !== i)
      t.same(repeats, [seqs[1]], 'the one repeat is the event A had in flight when it lost its lease')
      const end = await row()
      t.match(end, { ackedSeq: seqs.at(-1), leasedBy: null, attempts: 0, lastError: null }, 'the subscription is settled by B at the head')
      t.ok(cursors.every((c, i) => i === 0 || c >= cursors[i - 1]!), `the cursor never moved backwards (${cursors.join(' → ')})`)
    })
  }
})

t.test('WEBHOOK_LEASE_SECONDS: default 60, and it must exceed WEBHOOK_TIMEOUT_MS by more than 5 s', async (t) => {
  t.equal(loadConfig({}).webhooks.leaseSeconds, 60)
  t.equal(loadConfig({ WEBHOOK_LEASE_SECONDS: '8', WEBHOOK_TIMEOUT_MS: '2000' }).webhooks.leaseSeconds, 8)
  t.equal(loadConfig({ WEBHOOK_LEASE_SECONDS: '11' }).webhooks.leaseSeconds, 11, 'the default timeout (5 s) allows 11 s')
  for (const env of [{ WEBHOOK_LEASE_SECONDS: '10' }, { WEBHOOK_TIMEOUT_MS: '60000' }, { WEBHOOK_LEASE_SECONDS: '8', WEBHOOK_TIMEOUT_MS: '3000' }]) {
    const err = t.throws(() => loadConfig(env), JSON.stringify(env)) as Error
    t.type(err, ConfigError)
    t.match(err.message, /WEBHOOK_LEASE_SECONDS .* must exceed WEBHOOK_TIMEOUT_MS .* by more than 5 s/)
  }
  t.match((t.throws(() => loadConfig({ WEBHOOK_TIMEOUT_MS: '60000' })) as Error).message, /raise WEBHOOK_LEASE_SECONDS to at least 66/)
  t.equal(loadConfig({ WEBHOOK_TIMEOUT_MS: '60000', WEBHOOK_LEASE_SECONDS: '66' }).webhooks.leaseSeconds, 66)
  for (const bad of ['0', '3601', 'soon']) t.throws(() => loadConfig({ WEBHOOK_LEASE_SECONDS: bad }), /WEBHOOK_LEASE_SECONDS/, bad)
})
