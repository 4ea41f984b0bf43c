/**
 * Issue 9 item 3 (c): the process holding the expiry lock and a webhook delivery lease is killed
 * (SIGKILL); the other process takes both over.
 *
 * How the two are taken (src/modules/listings/listings.service.ts runDue, src/modules/delivery/):
 *  - the expiry / grace-period pass runs in one transaction under `pg_try_advisory_xact_lock`
 *    (SCHEDULER_LOCK 7 210 003); a process that does not get it skips the pass. It is held from the
 *    start of the pass until its commit, which comes after the change-log append (which itself waits
 *    for the change-log lock, CHANGE_LOG_LOCK 7 210 002).
 *  - a delivery worker leases a subscription (`subscriptions.lease_until`, `leased_by`) for
 *    WEBHOOK_LEASE_SECONDS and POSTs its next events in order, renewing the lease before each POST
 *    (with the cursor reached so far); the lease must exceed WEBHOOK_TIMEOUT_MS, so a live process's
 *    lease outlasts its POST in flight. Another process leases it only once `lease_until` has passed.
 *    Here the lease is 8 s and the timeout 2.5 s (the default 60 s lease made B wait ~50 s).
 *
 * The test makes A hold both at once, deterministically. A's scheduler pass is stuck first: the
 * test holds the change-log lock while a listing falls due, so A's pass stops at its append, inside
 * the transaction holding the scheduler lock. B is started and must not take it over while A lives.
 * The subscription is paused meanwhile (its next events wait), and B is stopped (SIGSTOP) while it
 * is resumed, so that A, not B, leases it: the receiver answers A's first POST and holds the second
 * unanswered. A lease now lasts only a few seconds past its POST's timeout, so A must die while that
 * POST is in flight: B is continued, watched not to take the lease over for WATCH_LEASE_MS, and A
 * killed well within WEBHOOK_TIMEOUT_MS of the held POST. Then the change-log lock is released at
 * once (a backend blocked on a lock does not notice its client is gone until the wait ends), and a
 * second listing falls due. B must expire both within the scheduler interval plus slack (each with
 * one `expired` event: A's pass rolled back), and deliver the pending events once A's lease has run
 * out, within slack of it, not before. Delivery is at least once (README "Keeping a copy":
 * receivers drop repeats by seq; DESIGN.md says nothing stricter), so the event A had in flight may
 * come twice (the renewal before it recorded the one before); nothing else may, and each process's
 * deliveries are in sequence order.
 *
 * Needs TEST_DATABASE_URL: two processes share one PostgreSQL database (PGlite cannot be shared).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import postgres from 'postgres'
import t from 'tap'
import { signRequest, type KeyFile } from '../src/client/gw1-client.js'
import { generateGatewayJwk } from '../src/infra/gateway-keys.js'
import { CHANGE_LOG_LOCK } from '../src/modules/listings/listings.repository.js'
import { SCHEDULER_LOCK } from '../src/modules/listings/listings.service.js'
import { personListing } from './factories.js'
import { createTestDatabase } from './helper.js'
import { registerPrincipal } from './principal-setup.js'
import { startGateway, type GatewayProcess } from './processes.js'

const GATEWAY_ID = 'gw-faults-locks'
const SCHEDULER_INTERVAL_SECONDS = 1
/** Past the lease (or the scheduler interval), how long B may take: its poll, a busy 2-core machine. */
const SLACK_MS = 5_000
/** While A lives, how long B is watched not taking the scheduler over. */
const WATCH_B_MS = 2_000
/** A's webhook timeout and lease: the held POST must still be in flight at the kill. */
const WEBHOOK_TIMEOUT_MS = 2_500
const WEBHOOK_LEASE_SECONDS = 8
/** While A's POST is held, how long B (continued) is watched not taking the lease over; well under the timeout. */
const WATCH_LEASE_MS = 1_000
const REQUEST_TIMEOUT_MS = 10_000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Delivery { seq: number; kind: string; subscription: string; at: number; held: boolean }

if (!process.env.TEST_DATABASE_URL) {
  t.test('the other process takes over the expiry lock and the delivery lease of a killed one', { skip: 'needs PostgreSQL shared by two processes' }, () => {})
} else {
  t.test('the other process takes over the expiry lock and the delivery lease of a killed one', async (t) => {
    const testStart = performance.now()
    const database = await createTestDatabase(t)
    const court = await registerPrincipal(database.db, 'court-locks', 'court', ['listings:write'], { courtCode: '京0105' })
    const agency = await registerPrincipal(database.db, 'agency-locks', 'agency', ['changes:read'], { profile: { lists: ['dishonest'], fields: ['name'] } })

    // --- the webhook receiver: records every POST; can hold one unanswered ------------------------------
    const deliveries: Delivery[] = []
    let holdNth: number | undefined // hold the nth request from now on (1-based)
    let held: ServerResponse | undefined
    let heldClosedAt: number | undefined // when the held POST's connection closed (A gave up on it, or died)
    const receiver = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const { subscriptionId, event } = JSON.parse(Buffer.concat(chunks).toString('utf8'))
        const hold = holdNth !== undefined && --holdNth === 0
        deliveries.push({ seq: event.seq, kind: event.kind, subscription: subscriptionId, at: Date.now(), held: hold })
        if (String(req.headers['x-gw-subscription']) !== subscriptionId) { res.writeHead(400).end(); return }
        if (hold) { held = res; res.once('close', () => { heldClosedAt = Date.now() }); return } // never answered: the sender's socket dies with it
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
    t.teardown(() => { receiver.closeAllConnections(); return new Promise<void>((r) => receiver.close(() => r())) })
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`

    // A session of the test's own, for the change-log lock (session-level, released explicitly).
    const locker = postgres(database.url!, { max: 1, onnotice: () => {} })
    t.teardown(() => locker.end({ timeout: 1 }))

    const env = {
      DATABASE_URL: database.url!, GATEWAY_SIGNING_KEY: JSON.stringify(generateGatewayJwk('gw-locks-1')), GATEWAY_ID,
      IDENTIFIER_HASH_SECRET: 'faults-locks-identifier-hash-secret',
      SCHEDULER_INTERVAL_SECONDS: String(SCHEDULER_INTERVAL_SECONDS),
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_POLL_MS: '100', WEBHOOK_RETRY_BASE_MS: '100', WEBHOOK_RETRY_MAX_MS: '1000',
      // A's held POST would time out after 2.5 s: the test kills A well before. The lease (8 s, renewed
      // before each POST) is what B waits out after the kill.
      WEBHOOK_TIMEOUT_MS: String(WEBHOOK_TIMEOUT_MS), WEBHOOK_LEASE_SECONDS: String(WEBHOOK_LEASE_SECONDS),
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: '0',
    }
    async function call(gw: GatewayProcess, key: KeyFile, path: string, json: unknown) {
      const body = Buffer.from(JSON.stringify(json))
      const { authorization } = await signRequest({ method: 'POST', pathWithQuery: path, body, audience: GATEWAY_ID, key })
      const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
      return { status: res.status, body: await res.json() as any }
    }
    async function waitReady(gw: GatewayProcess) {
      for (let i = 0; ; i++) {
        const r = await fetch(`${gw.url}/readyz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
        if (r.status === 200) return
        if (i > 300) throw new Error(`gateway ${gw.name} not ready: ${await r.text()}`)
        await sleep(50)
      }
    }
    async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
      const start = performance.now()
      for (;;) {
        const v = await probe()
        if (v !== undefined) return v
        if (performance.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
        await sleep(25)
      }
    }
    const subscriptionRow = async (id: string) => (await database.query<{ acked_seq: string; leased_by: string | null; lease_ms: string | null; attempts: number; status: string }>(
      'SELECT acked_seq::text, leased_by::text, (extract(epoch FROM lease_until) * 1000)::bigint::text AS lease_ms, attempts, status FROM subscriptions WHERE id = $1', [id]))[0]!
    /** The advisory locks of interest: who holds them (backend pid), who waits. */
    const advisory = async () => database.query<{ key: string; pid: number; granted: boolean }>(
      `SELECT objid::text AS key, pid, granted FROM pg_locks
       WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND classid = 0 AND objsubid = 1 AND objid IN (${CHANGE_LOG_LOCK}, ${SCHEDULER_LOCK})`)
    const schedulerHolder = async () => (await advisory()).find((l) => l.key === String(SCHEDULER_LOCK) && l.granted)?.pid
    const listingRow = async (id: string) => (await database.query<{ status: string; removal_reason: string | null; version: number }>(
      'SELECT status, removal_reason, version FROM listings WHERE id = $1', [id]))[0]!
    const isAlive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

    // --- A alone: a subscription, two events delivered and settled -------------------------------------
    const a = await startGateway(t, 'locks-a', env)
    await waitReady(a)
    t.comment(`gateway A pid ${a.pid} at ${a.url}`)
    const sub = await call(a, agency, '/v1/subscriptions', { url: hookUrl })
    t.equal(sub.status, 201, `the agency subscribes through A: ${JSON.stringify(sub.body)}`)
    const subId: string = sub.body.id
    const first = await call(a, court, '/v1/listings', { items: [personListing(1), personListing(2)] })
    t.same(first.body.summary, { created: 2, updated: 0, unchanged: 0, rejected: 0 }, 'two listings pushed through A')
    const [x, y] = first.body.results.map((r: { listingId: string }) => r.listingId) as [string, string]
    const head = async () => Number((await database.query<{ seq: string | null }>('SELECT max(seq)::text AS seq FROM listing_events'))[0]!.seq ?? 0)
    const settledSeq = await head()
    await until('A to settle the first two events', 10_000, async () => (Number((await subscriptionRow(subId)).acked_seq) === settledSeq ? true : undefined))

    // --- the next two events wait: the subscription is paused ------------------------------------------
    // A leases a due subscription on every poll even with nothing to send; a pause lets that lease settle.
    await database.query("UPDATE subscriptions SET status = 'paused' WHERE id = $1", [subId])
    await until('A to release the subscription', 10_000, async () => ((await subscriptionRow(subId)).leased_by === null ? true : undefined))
    const second = await call(a, court, '/v1/listings', { items: [personListing(3), personListing(4)] })
    t.equal(second.body.summary.created, 2, 'two more listings pushed through A (their events wait: the subscription is paused)')

    // --- A takes the scheduler lock, and stays in its pass ---------------------------------------------
    await locker`SELECT pg_advisory_lock(${CHANGE_LOG_LOCK}::bigint)`
    const [lockerPid] = await locker<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`
    await database.query("UPDATE listings SET period_ends_on = (now() AT TIME ZONE 'Asia/Shanghai')::date WHERE id = $1", [x])
    const holderPid = await until('A\'s pass to take the scheduler lock and wait at its append', 10_000, async () => {
      const locks = await advisory()
      const holder = locks.find((l) => l.key === String(SCHEDULER_LOCK) && l.granted)
      const waiting = locks.find((l) => l.key === String(CHANGE_LOG_LOCK) && !l.granted && l.pid === holder?.pid)
      return holder && waiting ? holder.pid : undefined
    })
    t.not(holderPid, lockerPid!.pid, 'the scheduler lock is held by a backend of A, not by the test')
    t.comment(`A's backend ${holderPid} holds the scheduler lock and waits for the change-log lock (held by the test's backend ${lockerPid!.pid})`)

    // --- B starts and takes nothing over while A lives ---------------------------------------------------
    const b = await startGateway(t, 'locks-b', env)
    await waitReady(b)
    t.comment(`gateway B pid ${b.pid} at ${b.url}`)
    await sleep(WATCH_B_MS)
    t.equal(await schedulerHolder(), holderPid, `the scheduler lock is still A's: B's passes skip (watched ${WATCH_B_MS} ms)`)
    t.equal((await listingRow(x)).status, 'published', 'the due listing is not expired yet (A\'s pass is stuck, B may not run one)')

    // --- A leases the subscription (B stopped meanwhile) and is held on its second POST ----------------
    process.kill(b.pid, 'SIGSTOP')
    let bStopped = true
    const continueB = () => { if (bStopped) { bStopped = false; process.kill(b.pid, 'SIGCONT') } }
    t.teardown(continueB)
    await sleep(200) // a lease query B sent just before the stop has run by now (and found the subscription paused)
    holdNth = 2
    await database.query("UPDATE subscriptions SET status = 'active' WHERE id = $1", [subId])
    await until('A to POST the held event', 10_000, async () => held)
    const heldAt = Date.now()
    continueB()
    const leased = await subscriptionRow(subId)
    t.ok(leased.leased_by, 'A holds the subscription\'s lease')
    const answeredSeq = deliveries.filter((d) => d.seq > settledSeq && !d.held).map((d) => d.seq)
    const heldSeq = deliveries.find((d) => d.held)!.seq
    t.equal(answeredSeq.length, 1, `A's first POST after the resume was answered (seq ${answeredSeq.join(', ')})`)
    t.equal(Number(leased.acked_seq), answeredSeq[0], 'the renewal before the held POST recorded the answered event as acknowledged')
    const leaseUntil = Number(leased.lease_ms)
    t.ok(leaseUntil - heldAt <= WEBHOOK_LEASE_SECONDS * 1000 && leaseUntil - heldAt > WEBHOOK_LEASE_SECONDS * 1000 - 1000, `renewed before the held POST: it runs out ${leaseUntil - heldAt} ms after the POST arrived (lease ${WEBHOOK_LEASE_SECONDS} s)`)
    t.comment(`A's delivery worker ${leased.leased_by} leased the subscription until ${new Date(leaseUntil).toISOString()} (${leaseUntil - Date.now()} ms from now); the receiver holds its POST of seq ${heldSeq}`)
    const before = deliveries.length
    await sleep(WATCH_LEASE_MS)
    t.equal(deliveries.length, before, `B (continued) delivers nothing while A's lease runs (watched ${WATCH_LEASE_MS} ms)`)
    t.equal((await subscriptionRow(subId)).leased_by, leased.leased_by, 'the lease is still A\'s')
    t.equal(await schedulerHolder(), holderPid, 'the scheduler lock is still A\'s')
    t.equal(heldClosedAt, undefined, `A is still waiting for its held POST (${Date.now() - heldAt} ms of its ${WEBHOOK_TIMEOUT_MS} ms timeout gone): it dies holding the lease`)

    // --- kill A ---------------------------------------------------------------------------------------
    const ackedAtKill = Number((await subscriptionRow(subId)).acked_seq)
    const killWall = Date.now()
    const killAt = performance.now()
    process.kill(a.pid, 'SIGKILL')
    for (let i = 0; isAlive(a.pid) && i < 200; i++) await sleep(10)
    t.notOk(isAlive(a.pid), 'A is dead')
    const orphanHolds = (await schedulerHolder()) === holderPid
    await locker`SELECT pg_advisory_unlock(${CHANGE_LOG_LOCK}::bigint)`
    const releasedAt = performance.now()
    // A second listing falls due after the kill.
    await database.query("UPDATE listings SET period_ends_on = (now() AT TIME ZONE 'Asia/Shanghai')::date WHERE id = $1", [y])

    // --- B takes the scheduler over ---------------------------------------------------------------------
    const lockFreedMs = await until('A\'s backend to release the scheduler lock', SLACK_MS, async () => ((await schedulerHolder()) !== holderPid ? performance.now() - killAt : undefined))
    const expiredMs = await until('B to expire both due listings', SCHEDULER_INTERVAL_SECONDS * 1000 + SLACK_MS, async () => {
      const [rx, ry] = [await listingRow(x), await listingRow(y)]
      return rx.status === 'removed' && ry.status === 'removed' ? performance.now() - killAt : undefined
    })
    for (const id of [x, y]) {
      const row = await listingRow(id)
      t.same(row, { status: 'removed', removal_reason: 'expired', version: 2 }, `listing ${id === x ? 'x (due before the kill)' : 'y (due after it)'} expired once: version 2`)
      const events = await database.query<{ kind: string; version: number }>('SELECT kind, version FROM listing_events WHERE listing_id = $1 ORDER BY seq', [id])
      t.same(events, [{ kind: 'published', version: 1 }, { kind: 'expired', version: 2 }], 'one published and one expired event (A\'s pass left nothing)')
    }
    t.ok(expiredMs <= SCHEDULER_INTERVAL_SECONDS * 1000 + SLACK_MS, `B expired them ${expiredMs.toFixed(0)} ms after the kill (bound: interval ${SCHEDULER_INTERVAL_SECONDS} s + ${SLACK_MS} ms)`)

    // --- B takes the delivery over once A's lease has run out --------------------------------------------
    const finalHead = await head()
    const takeoverWall = await until('B\'s first delivery', Math.max(0, leaseUntil - Date.now()) + SLACK_MS, async () => deliveries.find((d) => d.at >= killWall)?.at)
    await until('B to deliver up to the head of the change log', SLACK_MS, async () => {
      const s = await subscriptionRow(subId)
      return Number(s.acked_seq) === finalHead && s.leased_by === null ? true : undefined
    })
    t.ok(takeoverWall >= leaseUntil - 1, `B's first delivery came after A's lease ran out (${takeoverWall - leaseUntil} ms after), never during it`)
    t.ok(takeoverWall <= leaseUntil + SLACK_MS, `and within ${SLACK_MS} ms of it (${takeoverWall - leaseUntil} ms)`)
    const final = await subscriptionRow(subId)
    t.match(final, { status: 'active', attempts: 0, leased_by: null }, 'the subscription is settled by B: active, no failures, no lease')

    // --- what the receiver saw ---------------------------------------------------------------------------
    const logSeqs = (await database.query<{ seq: string }>("SELECT seq::text FROM listing_events WHERE list_kind = 'dishonest' ORDER BY seq")).map((r) => Number(r.seq))
    t.ok(deliveries.every((d) => d.subscription === subId), 'every POST names the subscription')
    const preKill = deliveries.filter((d) => d.at < killWall).map((d) => d.seq)
    const postKill = deliveries.filter((d) => d.at >= killWall).map((d) => d.seq)
    const increasing = (s: number[]) => s.every((v, i) => i === 0 || v > s[i - 1]!)
    t.ok(increasing(preKill), `A delivered in sequence order (${preKill.join(', ')})`)
    t.ok(increasing(postKill), `B delivered in sequence order (${postKill.join(', ')})`)
    t.equal(postKill[0], logSeqs.find((s) => s > ackedAtKill), 'B resumed from the first event after the acknowledged cursor')
    const unique = [...new Set(deliveries.map((d) => d.seq))].sort((p, q) => p - q)
    t.same(unique, logSeqs, 'every event of the change log reached the receiver (after dropping repeats by seq)')
    const repeats = [...new Set(deliveries.map((d) => d.seq).filter((s, i, all) => all.indexOf(s) !== i))].sort((p, q) => p - q)
    const unsettled = preKill.filter((s) => s > ackedAtKill)
    t.same(unsettled, [heldSeq], 'A\'s cursor, recorded at its last renewal, stood just before the POST it had in flight')
    t.same(repeats, unsettled, `only the event A had in flight when killed came twice (${repeats.join(', ') || 'none'}), as at-least-once delivery allows`)
    t.same(deliveries.map((d) => d.kind).filter((k) => k === 'expired').length, 2, 'both expiries delivered (once each)')

    t.comment(`kill → A's orphaned backend ${orphanHolds ? 'still held' : 'had already dropped'} the scheduler lock until the test released the change-log lock ${(releasedAt - killAt).toFixed(0)} ms after the kill; lock free at +${lockFreedMs.toFixed(0)} ms`)
    t.comment(`expiry takeover: both due listings expired by B at +${expiredMs.toFixed(0)} ms after the kill (scheduler interval ${SCHEDULER_INTERVAL_SECONDS} s)`)
    t.comment(`delivery takeover: B's first POST at +${takeoverWall - killWall} ms after the kill, ${takeoverWall - leaseUntil} ms after A's lease ran out (lease ${WEBHOOK_LEASE_SECONDS} s, renewed ${WEBHOOK_LEASE_SECONDS * 1000 - (leaseUntil - killWall)} ms before the kill)`)
    t.comment(`receiver saw ${deliveries.length} POSTs for ${unique.length} events: A ${preKill.join(',')} | B ${postKill.join(',')}; repeats: ${repeats.length ? repeats.join(',') : 'none'}; test took ${((performance.now() - testStart) / 1000).toFixed(1)} s`)
    if (!t.passing()) t.comment(`--- A's last output ---\n${a.log().split('\n').slice(-15).join('\n')}\n--- B's ---\n${b.log().split('\n').slice(-25).join('\n')}`)
  })
}
