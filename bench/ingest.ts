/**
 * bench/ingest: listings committed per second through `POST /v1/listings` in 10 000-item batches,
 * beside a same-run baseline: a plain multi-row INSERT of the same normalized rows into a copy of
 * the listings table, on the same PostgreSQL. Run: `npm run bench:ingest` (BENCH_DATABASE_URL
 * defaults to the local server; BATCHES=5). Loopback only; bounded by BATCHES.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import postgres from 'postgres'
import { signRequest, type KeyFile } from '../src/client/gw1-client.js'
import { openDatabase } from '../src/infra/db.js'
import { generateGatewayJwk } from '../src/infra/gateway-keys.js'
import { migrate } from '../src/infra/migrate.js'
import { projectPath } from '../src/infra/paths.js'
import { loadWorkingDayCalendar } from '../src/modules/calendar/calendar.loader.js'
import { shanghaiDate } from '../src/modules/calendar/working-days.js'
import { normalizeListing, type ListingInput } from '../src/modules/listings/listings.models.js'
import { generatePrincipalKey } from '../src/modules/principals/principals.keygen.js'
import { createPrincipalsRepository } from '../src/modules/principals/principals.repository.js'
import { createPrincipalsService } from '../src/modules/principals/principals.service.js'
import { caseNumber, creditCode, entityListing, personId, personListing } from '../test/factories.js'

const BATCH = 10_000
const BATCHES = Number(process.env.BATCHES ?? 5)
const BASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const AUDIENCE = 'credit-gateway-bench'

/** Batch b, item i: a unique, valid listing (persons and entities, both lists). */
function item(b: number, i: number): ListingInput {
  const seq = b * BATCH + i + 1
  const c = caseNumber(seq, '京0105', 2026)
  if (i % 5 === 0) {
    return entityListing(seq, { caseNumber: c, subject: { kind: 'entity', name: `企业${seq}`, creditCode: creditCode(seq), legalRepresentative: { name: `李${seq}`, idNumber: personId(seq, '19700101', '110101') } }, restrictedPersons: [] }) as unknown as ListingInput
  }
  return personListing(seq, { caseNumber: c, subject: { kind: 'person', name: `张${seq}`, idNumber: personId(seq, `19${60 + (seq % 40)}0101`, ['110105', '110101', '310104', '440305'][seq % 4]) } }) as unknown as ListingInput
}

async function main() {
  const admin = postgres(BASE_URL, { max: 1, onnotice: () => {} })
  const dbName = `cg_bench_ingest_${Date.now()}`
  await admin.unsafe(`CREATE DATABASE "${dbName}"`)
  const url = new URL(BASE_URL)
  url.pathname = `/${dbName}`
  let child: ReturnType<typeof spawn> | undefined
  try {
    // Schema, a court principal and its key, straight through the code (as the bootstrap CLI does).
    const database = await openDatabase({ url: url.toString() })
    await migrate(database)
    const { keyFile, publicJwk } = await generatePrincipalKey('court-bench')
    await createPrincipalsService(createPrincipalsRepository(database.db)).create({ principalId: 'bench' }, { id: 'court-bench', kind: 'court', name: '朝阳法院', courtCode: '京0105', scopes: ['listings:write'], keys: [publicJwk] })
    await database.close()

    child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: projectPath('.'), stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, DATABASE_URL: url.toString(), GATEWAY_SIGNING_KEY: JSON.stringify(generateGatewayJwk()), IDENTIFIER_HASH_SECRET: randomUUID() + randomUUID(), GATEWAY_ID: AUDIENCE, PORT: '0', LOG_LEVEL: 'info', SEED_DEMO: 'false', NODE_ENV: 'production' },
    })
    const base = await new Promise<string>((resolve, reject) => {
      let out = ''
      child!.stdout!.on('data', (d: Buffer) => { out += d; const m = /listening on (http:\/\/[^\s"]+)/.exec(out); if (m) resolve(m[1]!) })
      child!.once('exit', (code) => reject(new Error(`gateway exited ${code}`)))
      setTimeout(() => reject(new Error('gateway did not start in 30 s')), 30_000)
    })

    const bodies = Array.from({ length: BATCHES + 1 }, (_, b) => Buffer.from(JSON.stringify({ items: Array.from({ length: BATCH }, (_, i) => item(b, i)) })))
    const push = async (body: Buffer) => {
      const { authorization } = await signRequest({ method: 'POST', pathWithQuery: '/v1/listings', body, audience: AUDIENCE, key: keyFile as KeyFile })
      const res = await fetch(`${base}/v1/listings`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: new Uint8Array(body) })
      const json = (await res.json()) as { summary?: { created: number; rejected: number } }
      if (res.status !== 200 || json.summary?.rejected) throw new Error(`push failed: ${res.status} ${JSON.stringify(json).slice(0, 500)}`)
      return json.summary!.created
    }
    await push(bodies[BATCHES]!) // warm-up batch (not counted)
    let created = 0
    const t0 = performance.now()
    for (let b = 0; b < BATCHES; b++) created += await push(bodies[b]!)
    const gatewayMs = performance.now() - t0
    // The same pushes again: nothing changes, every item answers `unchanged`.
    const t1 = performance.now()
    for (let b = 0; b < BATCHES; b++) await push(bodies[b]!)
    const repushMs = performance.now() - t1

    // Baseline: the same normalized rows, plain multi-row INSERTs (2 000 rows a statement, one transaction per batch).
    const calendar = loadWorkingDayCalendar()
    const today = shanghaiDate(new Date())
    const sql = postgres(url.toString(), { max: 1, onnotice: () => {} })
    await sql.unsafe('CREATE TABLE listings_baseline (LIKE listings INCLUDING ALL)')
    const rowsFor = (b: number) => Array.from({ length: BATCH }, (_, i) => {
      const n = normalizeListing(item(b + 100, i), { today, calendar, defaultCourtCode: '京0105' })
      if (!n.ok) throw new Error(JSON.stringify(n.errors))
      const l = n.listing
      return {
        id: randomUUID(), list_kind: l.listKind, court_code: l.courtCode, court_name: l.courtName, case_number: l.caseNumber, case_number_raw: l.caseNumberRaw,
        subject_kind: l.subjectKind, subject_id: l.subjectId, subject_name: l.subjectName, record: l.record, match_keys: l.matchKeys, grounds: l.grounds,
        published_on: l.publishedOn, grace_until: l.graceUntil, period_ends_on: l.periodEndsOn, status: 'published', full_performance_on: l.fullPerformanceOn,
        removal_due_on: l.removalDueOn, content_hash: l.contentHash, version: 1, created_by: 'bench',
      }
    })
    const baselineRows = Array.from({ length: BATCHES }, (_, b) => rowsFor(b))
    const t2 = performance.now()
    for (const rows of baselineRows) {
      await sql.begin(async (tx) => {
        for (let i = 0; i < rows.length; i += 2000) await tx`INSERT INTO listings_baseline ${sql(rows.slice(i, i + 2000) as never)}`
      })
    }
    const baselineMs = performance.now() - t2
    await sql.end()

    const total = BATCHES * BATCH
    const result = {
      when: new Date().toISOString(), batches: BATCHES, batchSize: BATCH, database: 'PostgreSQL 15 (local)',
      gateway: { listingsPerSecond: Math.round(created / (gatewayMs / 1000)), created, ms: Math.round(gatewayMs) },
      repushUnchanged: { listingsPerSecond: Math.round(total / (repushMs / 1000)), ms: Math.round(repushMs) },
      baselinePlainInsert: { listingsPerSecond: Math.round(total / (baselineMs / 1000)), ms: Math.round(baselineMs), note: 'normalization not timed; rows prepared before timing' },
    }
    const ratio = (result.baselinePlainInsert.listingsPerSecond / result.gateway.listingsPerSecond).toFixed(2)
    console.log(`\nbench/ingest: ${BATCHES} pushes of ${BATCH} listings each, signed, over HTTP, on ${result.database}`)
    console.table({
      'POST /v1/listings (new)': { 'listings/s': result.gateway.listingsPerSecond, 'ms': result.gateway.ms },
      'POST /v1/listings (unchanged re-push)': { 'listings/s': result.repushUnchanged.listingsPerSecond, 'ms': result.repushUnchanged.ms },
      'baseline: plain multi-row INSERT': { 'listings/s': result.baselinePlainInsert.listingsPerSecond, 'ms': result.baselinePlainInsert.ms },
    })
    console.log(`baseline / gateway = ${ratio}x`)
    mkdirSync(projectPath('bench', 'results'), { recursive: true })
    writeFileSync(projectPath('bench', 'results', `ingest-${Date.now()}.json`), JSON.stringify({ ...result, ratio: Number(ratio) }, null, 2))
  } finally {
    child?.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 500))
    await admin.unsafe(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`)
    await admin.end()
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
