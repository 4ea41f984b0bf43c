import { hostname } from 'node:os'
import t, { type Test } from 'tap'
import type { KeyFile } from '../src/client/gw1-client.js'
import { createProcessHeartbeat } from '../src/modules/processes/processes.heartbeat.js'
import { createProcessesRepository } from '../src/modules/processes/processes.repository.js'
import { ADMIN_SCOPES, buildTestGateway, type TestGateway } from './helper.js'
import { entityListing, personListing } from './factories.js'

// The longest interval allowed: the timer does not fire during a test, each test drives the beats.
const HEARTBEAT = 60
const MINUTE_MS = 60_000

async function setup(t: Test) {
  const gw = await buildTestGateway(t, { PROCESS_HEARTBEAT_SECONDS: String(HEARTBEAT) })
  await gw.app.ready()
  const admin = await gw.addPrincipal({ id: 'admin-1', kind: 'admin', scopes: ADMIN_SCOPES })
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  return { gw, admin, court }
}

async function report(t: Test, gw: TestGateway, key: KeyFile) {
  const res = await gw.signed(key, 'GET', '/v1/supervision/processes')
  t.equal(res.statusCode, 200, res.body)
  return res.json()
}

/** Events per minute by listing_events.at, as the endpoint should report them. */
async function eventMinutes(gw: TestGateway): Promise<{ minute: string; events: number }[]> {
  const rows = await gw.database.query<{ at: Date | string }>('SELECT at FROM listing_events ORDER BY seq')
  const counts = new Map<number, number>()
  for (const r of rows) {
    const m = Math.floor(new Date(r.at).getTime() / MINUTE_MS) * MINUTE_MS
    counts.set(m, (counts.get(m) ?? 0) + 1)
  }
  return [...counts].sort(([a], [b]) => a - b).map(([m, events]) => ({ minute: new Date(m).toISOString(), events }))
}

async function insertProcess(gw: TestGateway, id: string, lastSeenMs: number, indexSeq = 0) {
  await gw.database.query(
    `INSERT INTO gateway_processes (id, host, pid, started_at, last_seen_at, index_seq, index_ready, index_size, events_applied, events_per_second)
     VALUES ($1, 'gw-other', 4242, $2, $2, $3, true, 0, 0, 0)`,
    [id, new Date(lastSeenMs).toISOString(), indexSeq])
}

t.test('each process reports its index lag behind the change log, and the change log its throughput', async (t) => {
  const { gw, admin, court } = await setup(t)
  const startedAt = new Date(gw.clock.nowMs()).toISOString()
  const id = gw.app.processHeartbeat.id

  const first = await report(t, gw, admin)
  t.same(first, {
    asOf: startedAt, headSeq: 0,
    processes: [{
      id, host: hostname(), pid: process.pid, startedAt, lastSeenAt: startedAt, stale: false,
      indexReady: true, indexSize: 0, indexSeq: 0, indexLag: 0, eventsApplied: 0, eventsPerSecond: 0,
    }],
    changeLog: { perMinute: [], lastHour: 0, last24Hours: 0 },
  }, 'the process is on record once the app is ready')

  const push = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), personListing(2), entityListing(3)] })
  t.equal(push.json().summary.created, 3, push.body)
  const [{ head }] = await gw.database.query<{ head: number }>('SELECT max(seq)::int AS head FROM listing_events') as [{ head: number }]
  const [{ n }] = await gw.database.query<{ n: number }>('SELECT count(*)::int AS n FROM listing_events') as [{ n: number }]
  t.equal(n, 3, 'one published event per listing')

  const before = await report(t, gw, admin)
  t.equal(before.headSeq, head)
  t.match(before.processes[0], { indexSeq: 0, indexLag: head, eventsApplied: 0 }, 'as of the last heartbeat, the index is behind')
  t.same(before.changeLog, { perMinute: await eventMinutes(gw), lastHour: 3, last24Hours: 3 }, 'the change log counts the events just pushed')
  t.equal(before.changeLog.perMinute.reduce((s: number, m: { events: number }) => s + m.events, 0), 3)

  await gw.app.matchSync.catchUp()
  gw.clock.advance(HEARTBEAT)
  await gw.app.processHeartbeat.beat()
  const after = await report(t, gw, admin)
  t.same(after.processes, [{
    id, host: hostname(), pid: process.pid, startedAt, lastSeenAt: new Date(gw.clock.nowMs()).toISOString(), stale: false,
    indexReady: true, indexSize: 3, indexSeq: head, indexLag: 0, eventsApplied: 3, eventsPerSecond: 3 / HEARTBEAT,
  }], 'caught up: indexSeq = headSeq, lag 0, 3 events applied in the last interval')
  t.equal(after.asOf, new Date(gw.clock.nowMs()).toISOString(), 'as of the app clock')

  gw.clock.advance(HEARTBEAT)
  await gw.app.processHeartbeat.beat()
  t.match((await report(t, gw, admin)).processes[0], { eventsApplied: 3, eventsPerSecond: 0 }, 'nothing applied since the previous heartbeat')

  // Older events fall out of the hour (and the per-minute series) but not the day.
  const now = gw.clock.nowMs()
  await gw.database.query('UPDATE listing_events SET at = $1 WHERE seq = (SELECT min(seq) FROM listing_events)', [new Date(now - 2 * 3_600_000).toISOString()])
  await gw.database.query('UPDATE listing_events SET at = $1 WHERE seq = (SELECT max(seq) FROM listing_events)', [new Date(now - 25 * 3_600_000).toISOString()])
  const windows = (await report(t, gw, admin)).changeLog
  t.same([windows.lastHour, windows.last24Hours], [1, 2])
  t.same(windows.perMinute, (await eventMinutes(gw)).filter((m) => Date.parse(m.minute) >= Math.floor(now / MINUTE_MS) * MINUTE_MS - 59 * MINUTE_MS), 'only the last hour, per minute')
  t.equal(windows.perMinute.reduce((s: number, m: { events: number }) => s + m.events, 0), 1)
})

t.test('a process not seen for 3 heartbeat intervals is stale; one not seen for 10 minutes is deleted', async (t) => {
  const { gw, admin } = await setup(t)
  const now = gw.clock.nowMs()
  const self = gw.app.processHeartbeat.id
  const recent = '00000000-0000-4000-8000-000000000001'
  const silent = '00000000-0000-4000-8000-000000000002'
  const dead = '00000000-0000-4000-8000-000000000003'
  await insertProcess(gw, recent, now - 2 * HEARTBEAT * 1000)
  await insertProcess(gw, silent, now - 4 * HEARTBEAT * 1000)
  await insertProcess(gw, dead, now - 11 * MINUTE_MS)

  const staleOf = async () => Object.fromEntries((await report(t, gw, admin)).processes.map((p: { id: string; stale: boolean }) => [p.id, p.stale]))
  t.same(await staleOf(), { [self]: false, [recent]: false, [silent]: true, [dead]: true })

  await gw.app.processHeartbeat.beat()
  t.same(await staleOf(), { [self]: false, [recent]: false, [silent]: true }, 'the heartbeat deleted the row not seen for 10 minutes')

  gw.clock.advance(3 * HEARTBEAT)
  t.same(await staleOf(), { [self]: true, [recent]: true, [silent]: true }, 'this process too, once it has missed 3 beats')
})

t.test('only supervision:read sees the processes', async (t) => {
  const { gw, court } = await setup(t)
  const auditor = await gw.addPrincipal({ id: 'auditor', kind: 'admin', scopes: ['audit:read'] })
  const agency = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['match'], profile: { lists: ['dishonest'], fields: ['name'], scenarios: ['TICKET_AIR'] } })
  for (const [who, key] of [['an admin without supervision:read', auditor], ['a court', court], ['an agency', agency]] as const) {
    const res = await gw.signed(key, 'GET', '/v1/supervision/processes')
    t.equal(res.statusCode, 403, who)
    t.equal(res.json().code, 'auth.insufficient_scope', who)
    t.match(res.headers['content-type'], /application\/problem\+json/, who)
  }
  t.equal((await gw.app.inject({ method: 'GET', url: '/v1/supervision/processes' })).statusCode, 401, 'unsigned')
})

t.test('a process deletes its row on close', async (t) => {
  const { gw } = await setup(t)
  const id = gw.app.processHeartbeat.id
  const rows = () => gw.database.query<{ id: string }>('SELECT id FROM gateway_processes')
  t.same(await rows(), [{ id }])
  await gw.app.close()
  t.same(await rows(), [], 'gone with the process')
})

t.test('a failed heartbeat is logged at warn and the next one succeeds', async (t) => {
  const { gw } = await setup(t)
  const warnings: unknown[][] = []
  const heartbeat = createProcessHeartbeat({
    repository: createProcessesRepository(gw.database), clock: gw.clock, intervalSeconds: HEARTBEAT,
    log: { warn: (...args: unknown[]) => { warnings.push(args) } }, sync: gw.app.matchSync, index: gw.app.matchIndex,
  })
  await gw.database.query('ALTER TABLE gateway_processes RENAME TO gateway_processes_away')
  await heartbeat.start() // the first beat fails: start() resolves all the same
  t.equal(warnings.length, 1)
  t.equal(warnings[0]![1], 'process heartbeat failed; retrying next tick')
  await gw.database.query('ALTER TABLE gateway_processes_away RENAME TO gateway_processes')
  await heartbeat.beat()
  t.same((await gw.database.query<{ id: string }>('SELECT id FROM gateway_processes WHERE id = $1', [heartbeat.id])).map((r) => r.id), [heartbeat.id])
  await heartbeat.stop()
  t.same(await gw.database.query('SELECT id FROM gateway_processes WHERE id = $1', [heartbeat.id]), [], 'stopped: its row is deleted')
})
