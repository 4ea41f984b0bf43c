/**
 * bench/supervision: how long the supervision figures (GET /v1/supervision/agencies…) take over a
 * large audit trail. Creates a fresh database on PostgreSQL, migrates it, fills audit_entries with
 * ROWS synthetic match entries (default 10 000 000; 20 agencies over 365 days, each entry a request
 * of 1–20 subjects with a summary like the match service writes; the audit trigger sums them into
 * match_daily as they go in) and match_feedback with one row per tenth entry, ANALYZEs, then times
 * the service's own queries (each run 3 times, best and median) beside a same-run baseline: the
 * same figures summed straight from the audit rows of the range, which must agree with the rollup. Run: `npm run bench:supervision` (BENCH_DATABASE_URL defaults to the local
 * server; ROWS=1000000 for a quick run; BENCH_KEEP_DB=1 keeps the database).
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import postgres from 'postgres'
import { openDatabase } from '../src/infra/db.js'
import { migrate } from '../src/infra/migrate.js'
import { projectPath } from '../src/infra/paths.js'
import { shanghaiDate, startOfShanghaiDay } from '../src/modules/calendar/working-days.js'
import { createSupervisionRepository } from '../src/modules/supervision/supervision.repository.js'

const ROWS = Number(process.env.ROWS ?? 10_000_000)
const BASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const AGENCIES = 20
const DAYS = 365
const START = Date.parse('2025-03-01T00:00:00+08:00')

async function timed<T>(fn: () => Promise<T>): Promise<{ best: number; median: number; result: T }> {
  const ms: number[] = []
  let result!: T
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now()
    result = await fn()
    ms.push(performance.now() - t0)
  }
  ms.sort((a, b) => a - b)
  return { best: ms[0]!, median: ms[1]!, result }
}

async function main() {
  const admin = postgres(BASE_URL, { max: 1, onnotice: () => {} })
  const name = `cg_supervision_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`
  await admin.unsafe(`CREATE DATABASE "${name}"`)
  const url = new URL(BASE_URL)
  url.pathname = `/${name}`
  const database = await openDatabase({ url: url.toString(), poolSize: 2 })
  try {
    await migrate(database)
    const fill0 = performance.now()
    // Synthetic rows straight in SQL (the chain fields are placeholders: audit:verify is not the point here).
    const chunk = 1_000_000
    for (let from = 0; from < ROWS; from += chunk) {
      const n = Math.min(chunk, ROWS - from)
      await database.query(`
        INSERT INTO audit_entries (writer_id, writer_seq, at, principal_id, action, operation_id, request_id, subject_hash, scenario, receipt_id, result, prev_hash, hash)
        SELECT 'bench', g, to_timestamp($2 / 1000.0) + ((g * 7919) % ($3 * 86400)) * interval '1 second',
               'agency-' || (g % $4), 'match', 'match.batch', 'req-' || g, NULL, 'SCENARIO', gen_random_uuid(),
               jsonb_build_object('summary', jsonb_build_object('subjects', 1 + g % 20, 'refused', 0, 'matched', g % 3, 'allow', 1 + g % 20 - g % 3, 'review', 0, 'deny', g % 3, 'ruleSetVersion', 1), 'items', '[]'::jsonb),
               repeat('0', 64), repeat('0', 64)
        FROM generate_series($1::bigint + 1, $1::bigint + $5) AS g`, [from, START, DAYS, AGENCIES, n])
      process.stderr.write(`  ${from + n} audit rows\n`)
    }
    await database.query(`
      INSERT INTO match_feedback (receipt_id, principal_id, entry_id, matched_at, action, measures, request_id)
      SELECT receipt_id, principal_id, id, at, CASE WHEN id % 2 = 0 THEN 'restricted' ELSE 'not_applicable' END,
             CASE WHEN id % 2 = 0 THEN ARRAY['CAAC-AIR'] ELSE '{}'::text[] END, 'req'
      FROM audit_entries WHERE id % 10 = 0`)
    await database.query('ANALYZE audit_entries')
    await database.query('ANALYZE match_feedback')
    const fillSeconds = (performance.now() - fill0) / 1000
    const [{ size }] = await database.query<{ size: string }>("SELECT pg_size_pretty(pg_total_relation_size('audit_entries')) AS size") as [{ size: string }]

    const repo = createSupervisionRepository(database)
    const day = 86_400_000
    const end = new Date(START + DAYS * day)
    const cases = [
      { what: 'one agency, 30 days', from: new Date(end.getTime() - 30 * day), principalId: 'agency-7' },
      { what: 'one agency, 365 days', from: new Date(START), principalId: 'agency-7' },
      { what: 'all 20 agencies, 30 days', from: new Date(end.getTime() - 30 * day), principalId: undefined },
    ]
    const results = []
    for (const c of cases) {
      const fromDay = shanghaiDate(c.from)
      const toDay = shanghaiDate(new Date(end.getTime() - 1))
      const range = { fromDay, toDay, from: startOfShanghaiDay(fromDay), to: end, dueDay: shanghaiDate(new Date(end.getTime() - 8 * day)), principalId: c.principalId }
      const query = await timed(async () => Promise.all([repo.agencyDays(range), repo.measureDays(range)]))
      const baseline = await timed(() => database.query<{ requests: number; subjects: number; hits: number }>(
        `SELECT count(*)::int AS requests, sum((result->'summary'->>'subjects')::int)::int AS subjects, sum((result->'summary'->>'matched')::int)::int AS hits
         FROM audit_entries WHERE action = 'match' AND at >= $1 AND at < $2 ${c.principalId ? 'AND principal_id = $3' : ''}`,
        [range.from.toISOString(), range.to.toISOString(), ...(c.principalId ? [c.principalId] : [])]))
      const sum = (k: 'requests' | 'subjects' | 'hits') => query.result[0].reduce((n, r) => n + r[k], 0)
      const raw = baseline.result[0]!
      const agrees = sum('requests') === raw.requests && sum('subjects') === raw.subjects && sum('hits') === raw.hits
      if (!agrees) throw new Error(`${c.what}: rollup ${sum('requests')}/${sum('subjects')}/${sum('hits')} ≠ audit rows ${raw.requests}/${raw.subjects}/${raw.hits}`)
      results.push({ what: c.what, entries: raw.requests, agencyDays: query.result[0].length, bestMs: Math.round(query.best), medianMs: Math.round(query.median), baselineFromAuditRowsMs: Math.round(baseline.median), rollupAgreesWithAuditRows: agrees })
    }
    const out = { at: new Date().toISOString(), rows: ROWS, auditTableSize: size, fillSeconds: Math.round(fillSeconds), results }
    mkdirSync(projectPath('bench', 'results'), { recursive: true })
    writeFileSync(projectPath('bench', 'results', `supervision-${out.at.replaceAll(':', '-')}.json`), JSON.stringify(out, null, 2))
    console.log(`supervision queries over ${ROWS.toLocaleString('en')} audit entries (${size}; filled in ${out.fillSeconds} s)`)
    console.log('case                         entries in range  agency-days  best ms  median ms  baseline: summed from audit rows, ms')
    for (const r of results) console.log(`${r.what.padEnd(28)} ${String(r.entries).padStart(16)}  ${String(r.agencyDays).padStart(11)}  ${String(r.bestMs).padStart(7)}  ${String(r.medianMs).padStart(9)}  ${String(r.baselineFromAuditRowsMs).padStart(36)}`)
  } finally {
    await database.close()
    if (process.env.BENCH_KEEP_DB !== '1') await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    await admin.end()
  }
}

await main()
