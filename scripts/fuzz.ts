/**
 * The long input-fuzzing run (issue 9 item 2): `npm run fuzz` (or `tsx scripts/fuzz.ts`).
 *
 *   FUZZ_RUNS=20000 FUZZ_SEED=7 npm run fuzz
 *   npm run fuzz -- --runs 20000 --seed 7
 *   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run fuzz   # a fresh database on that server, dropped after
 *
 * Builds the gateway as test/helper.ts does (in-memory PGlite unless TEST_DATABASE_URL is set),
 * sends the requests of test/fuzz.arbitraries.ts through app.inject, prints a summary and exits 1
 * on any 5xx, any 4xx that is not a complete problem+json, any domain row changed without an
 * accepted write, or a heap that grew by more than FUZZ_HEAP_BOUND_MB (default 200).
 */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import postgres from 'postgres'
import { buildApp } from '../src/app.js'
import type { KeyFile } from '../src/client/gw1-client.js'
import { loadConfig } from '../src/config.js'
import { openDatabase, type Database } from '../src/infra/db.js'
import { gatewayKeysFromJson, generateGatewayJwk } from '../src/infra/gateway-keys.js'
import { migrate } from '../src/infra/migrate.js'
import type { PrincipalKind, Scope } from '../src/modules/principals/principals.models.js'
import { generatePrincipalKey } from '../src/modules/principals/principals.keygen.js'
import { createPrincipalsRepository } from '../src/modules/principals/principals.repository.js'
import { createPrincipalsService } from '../src/modules/principals/principals.service.js'
import { domainState, FUZZ_ENV, FUZZ_PRINCIPALS, routeCatalogue, runFuzz, seedFuzzData, settledHeap, type FuzzStats } from '../test/fuzz.arbitraries.js'

const AUDIENCE = 'credit-gateway-fuzz'

const { values: args } = parseArgs({ options: { runs: { type: 'string' }, seed: { type: 'string' } }, allowPositionals: false })
const runs = Number(args.runs ?? process.env.FUZZ_RUNS ?? 20_000)
const seed = Number(args.seed ?? process.env.FUZZ_SEED ?? 20261122)
const heapBoundMb = Number(process.env.FUZZ_HEAP_BOUND_MB ?? 200)
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
  console.error('FUZZ_RUNS (--runs) must be a positive integer and FUZZ_SEED (--seed) an integer')
  process.exit(2)
}

const cleanups: Array<() => Promise<unknown>> = []

/** As test/helper.ts's createTestDatabase: a fresh database on TEST_DATABASE_URL's server, or in-memory PGlite. */
async function openFuzzDatabase(): Promise<{ database: Database; where: string }> {
  const base = process.env.TEST_DATABASE_URL
  if (!base) {
    const database = await openDatabase({ pglite: await PGlite.create() })
    await migrate(database)
    cleanups.push(() => database.close())
    return { database, where: 'PGlite (in memory)' }
  }
  const name = `cgfuzz_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
  const admin = postgres(base, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE "${name}"`)
  const url = new URL(base)
  url.pathname = `/${name}`
  const database = await openDatabase({ url: url.toString(), poolSize: 5 })
  cleanups.push(async () => {
    await database.close()
    await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    await admin.end()
  })
  await migrate(database)
  return { database, where: `PostgreSQL (${url.host}, database ${name})` }
}

function summary(stats: FuzzStats) {
  const lines = [
    `requests tried: ${stats.tried} in ${(stats.ms / 1000).toFixed(1)} s (${Math.round(stats.tried / (stats.ms / 1000))}/s)`,
    `by status class: ${Object.entries(stats.byClass).sort().map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `5xx: ${stats.fiveXX}; not a complete problem+json: ${stats.offenders.length - stats.offenders.filter((o) => /^5\d\d /.test(o.problem)).length}; not sent: ${stats.injectErrors.length}`,
    `signed requests past authentication: ${stats.signedReached} of ${stats.signedTotal}`,
    `accepted writes: ${JSON.stringify(stats.acceptedWrites)}`,
    `codes: ${Object.entries(stats.byCode).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ×${v}`).join(', ')}`,
  ]
  return lines.join('\n')
}

async function main(): Promise<number> {
  const { database, where } = await openFuzzDatabase()
  const config = loadConfig({ GATEWAY_ID: AUDIENCE, DATA_DIR: '/nonexistent', LOG_LEVEL: 'silent', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', ...FUZZ_ENV })
  const gatewayKeys = gatewayKeysFromJson(JSON.stringify(generateGatewayJwk('gw-fuzz-1')))
  const app = await buildApp({ config, database, gatewayKeys, logger: false })
  cleanups.unshift(() => app.close())
  await app.ready()
  await app.matchSync.catchUp()

  const service = createPrincipalsService(createPrincipalsRepository(database.db))
  const keys = {} as Record<PrincipalKind, KeyFile>
  for (const p of FUZZ_PRINCIPALS) {
    const { keyFile, publicJwk } = await generatePrincipalKey(p.id, 'ES256')
    await service.create({ principalId: 'fuzz' }, { id: p.id, kind: p.kind, name: p.id, scopes: p.scopes as Scope[], courtCode: p.courtCode, profile: p.profile as never, keys: [publicJwk] })
    keys[p.kind] = keyFile
  }
  const signers = { keys, audience: AUDIENCE, nowSeconds: () => Math.floor(Date.now() / 1000) }
  await seedFuzzData(app, signers)
  const routes = routeCatalogue(app)
  console.log(`fuzzing ${routes.length} routes (${routes.filter((r) => r.signed).length} signed, ${routes.filter((r) => !r.signed).length} public) on ${where}: ${runs} requests, seed ${seed}`)

  const query = <T>(sql: string) => database.query<T>(sql)
  const before = await domainState(query)
  const heapStart = await settledHeap()
  let lastReport = Date.now()
  const stats = await runFuzz(app, {
    routes, seed, runs, signers,
    progress: (done, s) => {
      if (Date.now() - lastReport < 10_000) return
      lastReport = Date.now()
      console.log(`  ${done}/${runs}: 5xx ${s.fiveXX}, offenders ${s.offenders.length}, heapUsed ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MB`)
    },
  })
  const heapEnd = await settledHeap()
  const after = await domainState(query)

  console.log(summary(stats))
  console.log(`heapUsed after GC: start ${(heapStart / 2 ** 20).toFixed(1)} MB, end ${(heapEnd / 2 ** 20).toFixed(1)} MB`)
  const failures: string[] = []
  if (stats.offenders.length > 0) {
    failures.push(`${stats.offenders.length} offending responses (${stats.fiveXX} of them 5xx)`)
    console.log('first offending requests:')
    for (const o of stats.offenders.slice(0, 5)) console.log(`  ${o.problem}\n    ${o.request}`)
  }
  if (stats.injectErrors.length > 0) {
    failures.push(`${stats.injectErrors.length} requests could not be sent`)
    for (const e of stats.injectErrors.slice(0, 3)) console.log(`  not sent: ${e.error}\n    ${e.request}`)
  }
  const writes = Object.values(stats.acceptedWrites).reduce((a, b) => a + b, 0)
  const matches = Object.entries(stats.acceptedWrites).filter(([r]) => r.startsWith('POST /v1/match')).reduce((a, [, n]) => a + n, 0)
  const changed = Object.keys(before).filter((k) => k !== 'audit').reduce((n, k) => n + Math.abs(after[k]! - before[k]!), 0)
  console.log(`domain rows changed: ${changed} (accepted writes ${writes}); audit entries added: ${after.audit! - before.audit!} (answered matches ${matches})`)
  if (changed > writes * 2 || (writes === 0 && changed > 0)) failures.push(`domain rows changed (${changed}) beyond the accepted writes (${writes}): ${JSON.stringify({ before, after })}`)
  if (after.audit! - before.audit! > matches) failures.push(`audit entries added (${after.audit! - before.audit!}) beyond answered matches (${matches})`)
  if (heapEnd >= heapStart + heapBoundMb * 2 ** 20) failures.push(`heap grew by ${((heapEnd - heapStart) / 2 ** 20).toFixed(1)} MB (bound ${heapBoundMb} MB)`)
  console.log(failures.length === 0 ? 'FUZZ OK' : `FUZZ FAILED:\n  ${failures.join('\n  ')}`)
  return failures.length === 0 ? 0 : 1
}

let code = 1
try {
  code = await main()
} catch (err) {
  console.error(err)
} finally {
  for (const cleanup of cleanups) await cleanup().catch((err) => console.error('cleanup:', err))
}
process.exit(code)
