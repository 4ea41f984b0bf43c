/**
 * Issue 9 item 3 (b): PostgreSQL restarts under match and push load.
 *
 * A gateway child process runs against a PRIVATE throwaway cluster (test/pg-cluster.ts; the shared
 * PostgreSQL on 5432 is never touched) while loops of signed matches and signed pushes run. Mid-load
 * the cluster is stopped (`pg_ctl stop -m fast`), kept down about 3 s and started again. During the
 * outage every refused request must be a 503 problem+json with Retry-After — no 500, no hang, no
 * reset connection; within 5 s of the database accepting connections again matches and pushes
 * succeed; every acknowledged push is in the database, every acknowledged match has its audit entry,
 * the audit trail verifies, and a listing pushed after the restart is matched (the index caught up
 * from the change log).
 *
 * Runs only where TEST_DATABASE_URL is set, like the other multi-process tests (CI's PostgreSQL
 * run); the cluster itself is private, not TEST_DATABASE_URL's server.
 */
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { signRequest, type KeyFile } from '../src/client/gw1-client.js'
import { openDatabase } from '../src/infra/db.js'
import { generateGatewayJwk, gatewayKeysFromJson } from '../src/infra/gateway-keys.js'
import { migrate } from '../src/infra/migrate.js'
import { verifyAuditTrail, formatAuditReport } from '../src/modules/audit/audit.verify.js'
import { caseNumber, personId, personListing } from './factories.js'
import { privateClusterUnavailable, startPrivateCluster } from './pg-cluster.js'
import { registerPrincipal } from './principal-setup.js'
import { startGateway } from './processes.js'

const GATEWAY_ID = 'gw-faults-pg-restart'
/** A request unanswered after this long is a hang, and fails the test. */
const REQUEST_TIMEOUT_MS = 10_000
/** How long the database stays down. */
const OUTAGE_MS = 3_000
/** Matches and pushes must succeed again within this long of the database accepting connections. */
const RECOVERY_LIMIT_MS = 5_000
/** Load before the outage, and after recovery. */
const WARM_UP_MS = 2_500
const AFTER_RECOVERY_MS = 2_000
/** Give up waiting for recovery after this long (a failure, measured). */
const RECOVERY_GIVE_UP_MS = 15_000
const MATCH_WORKERS = 3
const PUSH_WORKERS = 2
const PUSH_BATCH = 3
const SEEDED = 40
/** Keeps the loops from saturating the 2 shared cores: a pause between one worker's requests. */
const PAUSE_MS = 15
const CHECKPOINT_SECONDS = 2

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Outcome {
  kind: 'match' | 'push'
  /** performance.now() when sent and when answered (or failed). */
  sentAt: number
  doneAt: number
  status?: number
  code?: string
  retryAfter?: string | null
  contentType?: string | null
  /** 'timeout' (no answer within REQUEST_TIMEOUT_MS) or the network error (reset, refused). */
  error?: string
  /** match: the receipt; push: the listings acknowledged (per item created/updated/unchanged). */
  receiptId?: string
  matched?: boolean
  listingIds?: string[]
  body?: string
}

const why = process.env.TEST_DATABASE_URL
  ? await privateClusterUnavailable()
  : 'TEST_DATABASE_URL is not set: the PostgreSQL fault tests run with the other multi-process tests (they use a private throwaway cluster, never the shared server)'

if (why) {
  t.plan(0, why)
} else {
  t.test('PostgreSQL restarts under match and push load', async (t) => {
    const cluster = await startPrivateCluster(t, { name: 'restart' })
    const database = await openDatabase({ url: cluster.url, poolSize: 3 })
    t.teardown(() => database.close())
    await migrate(database)

    const court = await registerPrincipal(database.db, 'court-faults', 'court', ['listings:write'], { courtCode: '京0105' })
    const agency = await registerPrincipal(database.db, 'agency-faults', 'agency', ['match'], { profile: { lists: ['dishonest'], rateLimit: { max: 10_000, timeWindowSeconds: 1 } } })

    const gatewayJwk = generateGatewayJwk('gw-faults-1')
    const jwks = gatewayKeysFromJson(JSON.stringify(gatewayJwk)).jwks
    const gw = await startGateway(t, 'pg-restart', {
      DATABASE_URL: cluster.url, GATEWAY_SIGNING_KEY: JSON.stringify(gatewayJwk), GATEWAY_ID,
      IDENTIFIER_HASH_SECRET: 'faults-pg-restart-identifier-hash-secret', AUDIT_CHECKPOINT_SECONDS: String(CHECKPOINT_SECONDS),
      // Load shedding off: this test is about the database, and a busy CI machine must not add 503s of its own.
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
    })
    const processAlive = () => { try { process.kill(gw.pid, 0); return true } catch { return false } }

    /** One freshly signed call, bounded by REQUEST_TIMEOUT_MS; never throws. */
    async function call(kind: Outcome['kind'], key: KeyFile, path: string, json: unknown): Promise<Outcome> {
      const body = Buffer.from(JSON.stringify(json))
      const { authorization } = await signRequest({ method: 'POST', pathWithQuery: path, body, audience: GATEWAY_ID, key })
      const sentAt = performance.now()
      try {
        const res = await fetch(`${gw.url}${path}`, {
          method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body,
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        })
        const text = await res.text()
        const doneAt = performance.now()
        let parsed: any
        try { parsed = JSON.parse(text) } catch { /* not JSON: kept raw */ }
        const out: Outcome = {
          kind, sentAt, doneAt, status: res.status, code: parsed?.code,
          retryAfter: res.headers.get('retry-after'), contentType: res.headers.get('content-type'),
        }
        if (res.status >= 300) out.body = text.slice(0, 300)
        if (kind === 'match' && res.status === 200) { out.receiptId = parsed?.receiptId; out.matched = parsed?.matched }
        if (kind === 'push' && res.status < 300) {
          out.listingIds = (parsed?.results ?? []).filter((r: any) => ['created', 'updated', 'unchanged'].includes(r.status)).map((r: any) => r.listingId)
        }
        return out
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } }
        const error = e.name === 'TimeoutError' ? 'timeout' : `${e.name}: ${e.cause?.code ?? e.message}`
        return { kind, sentAt, doneAt: performance.now(), error }
      }
    }
    const match = (idNumber: string) => call('match', agency, '/v1/match', { idNumber })
    const push = (items: unknown[]) => call('push', court, '/v1/listings', { items })
    const ok = (o: Outcome) => o.status !== undefined && o.status >= 200 && o.status < 300

    // Seed listings through the gateway (retrying the 503s of a process still warming up) and wait
    // until it is ready (index built, rules loaded).
    let seeded = await push(Array.from({ length: SEEDED }, (_, i) => personListing(i + 1)))
    for (let i = 0; seeded.status === 503 && i < 20; i++) {
      await sleep(500)
      seeded = await push(Array.from({ length: SEEDED }, (_, i) => personListing(i + 1)))
    }
    t.equal(seeded.status, 200, `seed push: ${seeded.body ?? ''}`)
    t.equal(seeded.listingIds?.length, SEEDED, 'every seeded listing acknowledged')
    for (let i = 0; ; i++) {
      const r = await fetch(`${gw.url}/readyz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
      if (r.status === 200) break
      if (i > 100) throw new Error(`gateway not ready: ${await r.text()}`)
      await sleep(100)
    }

    // --- the load -----------------------------------------------------------------------------------
    const outcomes: Outcome[] = []
    let running = true
    let nextSeq = 100 // push loop case numbers: 100, 101, ... (distinct from the seeded 1..40)
    const matchLoop = async (w: number) => {
      for (let i = 0; running; i++) {
        // Mostly listed subjects (hits carry listing ids on the audit entry), some never listed.
        const seq = i % 4 === 3 ? 5000 + w : 1 + ((i * 7 + w) % SEEDED)
        outcomes.push(await match(personId(seq)))
        await sleep(PAUSE_MS)
      }
    }
    const pushLoop = async () => {
      while (running) {
        const seqs = Array.from({ length: PUSH_BATCH }, () => nextSeq++)
        // personId uses seq % 1000: another birth date per thousand keeps identities distinct.
        outcomes.push(await push(seqs.map((s) => personListing(s, {
          caseNumber: caseNumber(s),
          subject: { kind: 'person', name: `张${s}`, idNumber: personId(s, `1980010${1 + Math.floor(s / 1000)}`) },
        }))))
        await sleep(PAUSE_MS * 3)
      }
    }
    const loops = Promise.all([
      ...Array.from({ length: MATCH_WORKERS }, (_, w) => matchLoop(w)),
      ...Array.from({ length: PUSH_WORKERS }, () => pushLoop()),
    ])

    // Two outages under the same load: a fast shutdown (sessions told 57P01, then refused), and an
    // immediate one (sessions cut, crash recovery on start).
    interface Round { mode: 'fast' | 'immediate'; stopAt: number; downAt: number; startAt: number; upAt: number; upWallMs: number }
    const rounds: Round[] = []
    const firstOkAfter = (kind: Outcome['kind'], since: number) => outcomes.find((o) => o.kind === kind && o.sentAt >= since && ok(o))
    for (const mode of ['fast', 'immediate'] as const) {
      await sleep(WARM_UP_MS)
      const stopAt = performance.now()
      await cluster.stop(mode)
      const downAt = performance.now()
      await sleep(OUTAGE_MS)
      const startAt = performance.now()
      await cluster.start()
      // pg_ctl start -w returns once the server accepts connections.
      const upAt = performance.now()
      rounds.push({ mode, stopAt, downAt, startAt, upAt, upWallMs: Date.now() })
      // Keep the load running until a match and a push sent after upAt have succeeded, then a while longer.
      while (performance.now() - upAt < RECOVERY_GIVE_UP_MS && !(firstOkAfter('match', upAt) && firstOkAfter('push', upAt))) await sleep(50)
      await sleep(AFTER_RECOVERY_MS)
    }
    running = false
    await loops

    // --- what happened --------------------------------------------------------------------------------
    const tally = (list: Outcome[]) => {
      const counts = new Map<string, number>()
      for (const o of list) {
        const k = `${o.kind} ${o.error ?? `${o.status}${o.code ? ` ${o.code}` : ''}`}`
        counts.set(k, (counts.get(k) ?? 0) + 1)
      }
      return [...counts].sort().map(([k, n]) => `${k}: ${n}`).join('; ')
    }
    const failures = outcomes.filter((o) => !ok(o))
    const timeouts = outcomes.filter((o) => o.error === 'timeout')
    t.comment(`requests overall: ${outcomes.length} (${outcomes.filter((o) => o.kind === 'match').length} matches, ${outcomes.filter((o) => o.kind === 'push').length} pushes), ${outcomes.filter(ok).length} succeeded; failures: ${tally(failures) || 'none'}`)
    t.comment(`timeouts (no answer within ${REQUEST_TIMEOUT_MS} ms): ${timeouts.length}`)

    for (const r of rounds) {
      const during = outcomes.filter((o) => o.doneAt >= r.stopAt && o.sentAt <= r.upAt)
      const slowest = during.reduce((m, o) => Math.max(m, o.doneAt - o.sentAt), 0)
      const matchOk = firstOkAfter('match', r.upAt)
      const pushOk = firstOkAfter('push', r.upAt)
      const recovery = (o: Outcome | undefined) => (o ? (o.doneAt - r.upAt).toFixed(0) : 'never')
      t.comment(`pg_ctl stop -m ${r.mode}: stop requested at +0 ms, server down at +${(r.downAt - r.stopAt).toFixed(0)} ms, start at +${(r.startAt - r.stopAt).toFixed(0)} ms, accepting connections at +${(r.upAt - r.stopAt).toFixed(0)} ms (database unavailable ${(r.upAt - r.stopAt).toFixed(0)} ms)`)
      t.comment(`  during the outage: ${during.length} requests tried, ${during.filter(ok).length} succeeded (sent just before, or answered once it was back), ${during.filter((o) => !ok(o)).length} failed: ${tally(during.filter((o) => !ok(o))) || 'none'}; slowest answer ${slowest.toFixed(0)} ms`)
      t.comment(`  recovery after the database returned: first successful match answered at +${recovery(matchOk)} ms, first successful push at +${recovery(pushOk)} ms`)
      t.ok(during.some((o) => !ok(o)), `${r.mode}: the outage was felt (some requests failed while the database was down)`)
      t.ok(matchOk && matchOk.doneAt - r.upAt < RECOVERY_LIMIT_MS, `${r.mode}: a match succeeds within ${RECOVERY_LIMIT_MS} ms of the database returning (${recovery(matchOk)} ms)`)
      t.ok(pushOk && pushOk.doneAt - r.upAt < RECOVERY_LIMIT_MS, `${r.mode}: a push succeeds within ${RECOVERY_LIMIT_MS} ms of the database returning (${recovery(pushOk)} ms)`)
      const recovered = Math.max(matchOk?.doneAt ?? Infinity, pushOk?.doneAt ?? Infinity)
      const next = rounds[rounds.indexOf(r) + 1]?.stopAt ?? Infinity
      const afterRecovery = outcomes.filter((o) => o.sentAt > recovered + 500 && o.doneAt < next)
      t.same(afterRecovery.filter((o) => !ok(o)).map((o) => `${o.kind} ${o.status ?? o.error} ${o.code ?? ''}`), [], `${r.mode}: once recovered, every request succeeds (${afterRecovery.length})`)
    }

    t.equal(timeouts.length, 0, 'no request hung')
    const netErrors = failures.filter((o) => o.error && o.error !== 'timeout')
    t.same(netErrors.map((o) => o.error), [], 'no connection reset or refused by the gateway')
    const bad = failures.filter((o) => o.error === undefined && !(
      o.status === 503 && o.retryAfter && /^\d+$/.test(o.retryAfter) && o.contentType?.startsWith('application/problem+json') && typeof o.code === 'string'))
    t.same(bad.map((o) => `${o.kind} ${o.status} ${o.code} retry-after=${o.retryAfter} ${o.contentType} ${o.body}`), [],
      'every failed request is a 503 problem+json with a code and Retry-After (no 500)')
    const codes = [...new Set(failures.filter((o) => o.status === 503).map((o) => o.code!))].sort()
    t.same(codes.filter((c) => !['service.unavailable', 'service.overloaded', 'rules.not_loaded'].includes(c)), [],
      `503 codes say the service is unavailable (${codes.join(', ')})`)
    t.ok(processAlive(), 'the gateway process is still running')

    // --- nothing acknowledged is lost ------------------------------------------------------------------
    const ackedListings = [...new Set(outcomes.flatMap((o) => o.listingIds ?? []).concat(seeded.listingIds ?? []))]
    const stored = await database.query<{ id: string }>('SELECT id::text AS id FROM listings WHERE id = ANY($1::uuid[])', [ackedListings])
    const storedIds = new Set(stored.map((r) => r.id))
    t.same(ackedListings.filter((id) => !storedIds.has(id)), [], `every acknowledged push is stored (${ackedListings.length} listings)`)
    const events = await database.query<{ n: string }>('SELECT count(DISTINCT listing_id)::text AS n FROM listing_events WHERE listing_id = ANY($1::uuid[])', [ackedListings])
    t.equal(Number(events[0]!.n), ackedListings.length, 'each has its change-log event')

    const receipts = outcomes.filter((o) => o.receiptId).map((o) => o.receiptId!)
    const audited = await database.query<{ receipt_id: string }>(
      "SELECT receipt_id::text AS receipt_id FROM audit_entries WHERE action = 'match' AND receipt_id = ANY($1::uuid[])", [receipts])
    const auditedIds = new Set(audited.map((r) => r.receipt_id))
    t.same(receipts.filter((r) => !auditedIds.has(r)), [], `every acknowledged match has its audit entry (${receipts.length} receipts)`)
    t.equal(receipts.length, outcomes.filter((o) => o.kind === 'match' && ok(o)).length, 'every successful match carried a receipt')

    // The checkpointer signs the chain's head again after the restarts.
    const lastUpWall = rounds[rounds.length - 1]!.upWallMs
    let checkpointAfter = false
    for (let i = 0; i < 50 && !checkpointAfter; i++) {
      const [row] = await database.query<{ n: string }>('SELECT count(*)::text AS n FROM audit_checkpoints WHERE at > $1::timestamptz', [new Date(lastUpWall).toISOString()])
      checkpointAfter = Number(row?.n) > 0
      if (!checkpointAfter) await sleep(200)
    }
    t.ok(checkpointAfter, `an audit checkpoint is signed after the last restart (every ${CHECKPOINT_SECONDS} s)`)

    const report = await verifyAuditTrail(database, { jwks })
    t.ok(report.ok, `the audit trail verifies: ${formatAuditReport(report)}`)
    t.comment(`audit trail: ${report.entries} entries on ${report.writers} writer chain(s); checkpoints ${report.checkpoints.valid}/${report.checkpoints.total}`)

    // --- the index caught up from the change log -----------------------------------------------------
    const freshSeq = 999
    const fresh = await push([personListing(freshSeq, { caseNumber: caseNumber(freshSeq), subject: { kind: 'person', name: `张${freshSeq}`, idNumber: personId(freshSeq, '19850505') } })])
    t.equal(fresh.status, 200, `a listing pushed after the restart is acknowledged: ${fresh.body ?? ''}`)
    const pushedAt = performance.now()
    let matchedAfter: number | undefined
    while (performance.now() - pushedAt < 5_000) {
      if ((await match(personId(freshSeq, '19850505'))).matched === true) { matchedAfter = performance.now() - pushedAt; break }
      await sleep(20)
    }
    t.comment(`listing pushed after the restart matched ${matchedAfter === undefined ? 'never (5 s)' : `${matchedAfter.toFixed(0)} ms after its push was acknowledged`}`)
    t.ok(matchedAfter !== undefined && matchedAfter < 1_000, 'the match index follows the change log again (within 1 s)')
    const ready = await fetch(`${gw.url}/readyz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    t.equal(ready.status, 200, `ready again: ${await ready.text()}`)

    // Stop the gateway while its database is still up (teardowns would stop the cluster first).
    await gw.stop()
    if (!t.passing()) t.comment(`--- gateway warnings and errors ---\n${gw.log().split('\n').filter((l) => !/"level":30/.test(l)).slice(-40).join('\n')}`)
  })
}
