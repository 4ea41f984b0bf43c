import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t, { type Test } from 'tap'
import { loadConfig } from '../src/config.js'
import { projectPath } from '../src/infra/paths.js'
import { openConfiguredDatabase } from '../src/runtime.js'
import { loadWorkingDayCalendar } from '../src/modules/calendar/calendar.loader.js'
import { ImportAbortedError, importListings, ImportFormatError, type ImportFormat, type ImportSummary, type PushOutcome } from '../src/modules/listings/listings.import.js'
import { createListingsRepository } from '../src/modules/listings/listings.repository.js'
import { createListingsService } from '../src/modules/listings/listings.service.js'
import type { Principal } from '../src/modules/principals/principals.models.js'
import { createPrincipalsRepository } from '../src/modules/principals/principals.repository.js'
import { caseNumber, creditCode, entityListing, personId, personListing } from './factories.js'
import { buildTestGateway } from './helper.js'
import { registerPrincipal } from './principal-setup.js'

/** 2026-03-02 12:00 in China: a working Monday. */
const NOON_2026_03_02 = Date.parse('2026-03-02T04:00:00Z')
const COURT = 'court-bj-0105'

interface RejectRecord { line: number; errors: { field: string; code: string; column?: string }[]; raw: string; rawTruncated?: boolean }

/** A Writable that keeps what it is given, for the rejects output. */
function sink() {
  let text = ''
  const stream = new Writable({ write(chunk: Buffer, _enc, done) { text += chunk.toString('utf8'); done() } })
  return { stream, records: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as RejectRecord) }
}

/** The file's bytes in 7-byte chunks: lines, CRLFs and multi-byte characters get cut across chunks. */
function chunked(text: string, size = 7): Readable {
  const bytes = Buffer.from(text, 'utf8')
  const chunks: Buffer[] = []
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size))
  return Readable.from(chunks)
}

/** A gateway database with the court principal, and the real listings service acting as it. */
async function setup(t: Test) {
  const gw = await buildTestGateway(t)
  gw.clock.set(NOON_2026_03_02)
  await gw.addPrincipal({ id: COURT, kind: 'court', courtCode: '京0105', scopes: ['listings:write', 'listings:read'] })
  const row = (await createPrincipalsRepository(gw.database.db).findById(COURT))!
  const court: Principal = { id: row.id, kind: row.kind, name: row.name, courtCode: row.courtCode, scopes: row.scopes as Principal['scopes'], profile: row.profile, status: row.status }
  const service = createListingsService({ repo: createListingsRepository(gw.database.db), calendar: loadWorkingDayCalendar(), clock: gw.clock })
  const batches: number[] = []
  async function run(text: string, format: ImportFormat, batchSize?: number) {
    const rejects = sink()
    const summary = await importListings({
      input: chunked(text), format, batchSize, rejectsOut: rejects.stream,
      push: (items) => { batches.push(items.length); return service.push(court, items, 'import-test') },
    })
    return { summary, rejects: rejects.records() }
  }
  const caseNumbers = async () => (await gw.database.query<{ case_number: string }>('SELECT case_number FROM listings ORDER BY case_number')).map((r) => r.case_number)
  return { gw, run, batches, caseNumbers }
}

const counts = (s: ImportSummary) => ({ lines: s.lines, created: s.created, updated: s.updated, unchanged: s.unchanged, rejected: s.rejected })

/** 12 physical lines, CRLF, a BOM, one blank line: 11 records, 3 of them bad. */
const NDJSON_LINES = [
  '\uFEFF' + JSON.stringify(personListing(1)),
  JSON.stringify(entityListing(2)),
  '{"listKind": "dishonest", "caseNumber": ',
  '',
  JSON.stringify(personListing(5, { subject: { kind: 'person', name: '钱五', idNumber: '110101199003071230' } })),
  JSON.stringify(personListing(6)),
  JSON.stringify(personListing(7, { caseNumber: caseNumber(7, '沪0101') })),
  JSON.stringify(personListing(8)),
  JSON.stringify(entityListing(9)),
  JSON.stringify(personListing(10)),
  JSON.stringify(personListing(11)),
  JSON.stringify(personListing(12)),
]
const NDJSON = NDJSON_LINES.join('\r\n') + '\r\n'

t.test('an NDJSON file imports through the push; bad lines land in the rejects output with their line numbers', async (t) => {
  const { run, caseNumbers } = await setup(t)
  const { summary, rejects } = await run(NDJSON, 'ndjson')
  t.same(counts(summary), { lines: 11, created: 8, updated: 0, unchanged: 0, rejected: 3 })
  t.equal(summary.bytes, Buffer.byteLength(NDJSON), 'every byte read')
  t.same(rejects.map((r) => r.line), [3, 5, 7], 'physical line numbers (the blank line 4 counts, and is skipped)')
  t.match(rejects[0], { errors: [{ field: '(line)', code: 'import.invalid_json' }], raw: NDJSON_LINES[2] })
  t.match(rejects[1], { errors: [{ field: 'subject.idNumber', code: 'identity.id_check_digit' }] })
  t.match(rejects[2], { errors: [{ field: 'caseNumber', code: 'listings.cross_court_write' }] })
  t.notOk(rejects[1]!.raw.endsWith('\r'), 'CRLF stripped')
  t.same(await caseNumbers(), [1, 2, 6, 8, 9, 10, 11, 12].map((n) => caseNumber(n)).sort())

  const again = await run(NDJSON, 'ndjson')
  t.same(counts(again.summary), { lines: 11, created: 0, updated: 0, unchanged: 8, rejected: 3 }, 're-importing the same file changes nothing')
  t.same(again.rejects, rejects)
})

t.test('batches smaller than the file give the same result as one batch', async (t) => {
  const one = await setup(t)
  const small = await setup(t)
  const a = await one.run(NDJSON, 'ndjson', 5000)
  const b = await small.run(NDJSON, 'ndjson', 3)
  t.same(one.batches, [10], 'one push of the 10 well-formed lines')
  t.ok(small.batches.length >= 4 && small.batches.every((n) => n <= 3), `pushes of at most 3 items (${small.batches.join(', ')})`)
  t.same(counts(b.summary), counts(a.summary))
  t.same(b.rejects, a.rejects)
  t.same(await small.caseNumbers(), await one.caseNumbers())
})

/** One CSV row, quoting cells per RFC 4180 where needed. */
function csvRow(cells: (string | number | undefined)[]): string {
  return cells.map((c) => {
    const s = c === undefined ? '' : String(c)
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s
  }).join(',')
}

const CSV_HEADER = [
  'listKind', 'caseNumber', 'courtName', 'subjectKind', 'subjectName', 'idNumber', 'creditCode', 'legalRepName', 'legalRepIdNumber',
  'restrictedPersons', 'basisIssuer', 'basisDocumentNumber', 'obligation', 'performance', 'amountOutstanding', 'grounds',
  'filedOn', 'publishedOn', 'periodEndsOn', 'extensionYears',
]
const COURT_NAME = '北京市朝阳区人民法院'
/** The CSV form of personListing(seq) (with overrides of the obligation and grounds). */
function personRow(seq: number, o: { obligation?: string; grounds?: string; extensionYears?: number; idNumber?: string; caseNumber?: string; amount?: string } = {}) {
  return csvRow(['dishonest', o.caseNumber ?? caseNumber(seq), COURT_NAME, 'person', `张${seq}`, o.idNumber ?? personId(seq), '', '', '', '',
    COURT_NAME, `（2024）京0105民初${seq}号`, o.obligation ?? '支付货款及利息', 'none', o.amount ?? '120000', o.grounds ?? 'G4', '2025-03-01', '2025-06-01', '', o.extensionYears])
}
/** The CSV form of entityListing(seq). */
function entityRow(seq: number) {
  return csvRow(['restricted', caseNumber(seq), COURT_NAME, 'entity', `北京某某${seq}有限公司`, '', creditCode(seq), `李${seq}`, personId(seq + 500, '19700101'),
    `王${seq};${personId(seq + 700, '19750505')};actualController`, '', '', '', 'partial', '5000000', '', '', '2025-06-01', '2027-06-01', ''])
}

t.test('a CSV file imports: quoted commas, doubled quotes and line breaks; its rows equal the NDJSON form', async (t) => {
  const { gw, run } = await setup(t)
  // First the JSON form of two listings: the CSV rows for the same listings must then be "unchanged".
  const json = await run([personListing(20), entityListing(21)].map((l) => JSON.stringify(l)).join('\n'), 'ndjson')
  t.same(counts(json.summary), { lines: 2, created: 2, updated: 0, unchanged: 0, rejected: 0 })

  const lines = [
    '\uFEFF' + CSV_HEADER.join(','),                                                       // 1
    personRow(20),                                                                          // 2 unchanged
    entityRow(21),                                                                          // 3 unchanged
    personRow(22, { obligation: '支付货款, 利息及"违约金"', grounds: 'G2|G4', extensionYears: 1 }), // 4 created
    personRow(23, { idNumber: '110101199003071230' }),                                      // 5 rejected: check digit
    'dishonest,（2025）京0105执24号,too,few',                                                // 6 rejected: cell count
    personRow(25, { obligation: '第一行\n第二行' }),                                         // 7–8 created (one record)
    personRow(26, { caseNumber: caseNumber(26, '沪0101') }),                                // 9 rejected: cross-court
    '"dishonest"x,' + personRow(27).split(',').slice(1).join(','),                          // 10 rejected: syntax
    '',                                                                                     // 11 blank
    personRow(28, { amount: '12,000' }),                                                    // 12 rejected: not a number
    personRow(29),                                                                          // 13 created
  ]
  const text = lines.join('\r\n') + '\r\n'
  const { summary, rejects } = await run(text, 'csv', 4)
  t.same(counts(summary), { lines: 10, created: 3, updated: 0, unchanged: 2, rejected: 5 })
  t.same(rejects.map((r) => r.line), [5, 6, 9, 10, 12], 'physical line numbers; the two-line record is line 7')
  t.match(rejects[0], { errors: [{ field: 'subject.idNumber', code: 'identity.id_check_digit', column: 'idNumber' }] })
  t.match(rejects[1], { errors: [{ field: '(line)', code: 'import.csv_columns' }], raw: lines[5] })
  t.match(rejects[2], { errors: [{ field: 'caseNumber', code: 'listings.cross_court_write', column: 'caseNumber' }] })
  t.match(rejects[3], { errors: [{ code: 'import.csv_syntax' }] })
  t.match(rejects[4], { errors: [{ field: 'amountOutstanding', column: 'amountOutstanding' }] })

  const record = async (seq: number) => (await gw.database.query<{ record: Record<string, unknown> }>('SELECT record FROM listings WHERE case_number = $1', [caseNumber(seq)]))[0]?.record
  t.match(await record(22), { obligation: '支付货款, 利息及"违约金"', grounds: ['G2', 'G4'], extensionYears: 1, amountOutstanding: 120000, periodEndsOn: '2028-06-01' })
  t.match(await record(25), { obligation: '第一行\n第二行' })
  t.ok(await record(29))

  const again = await run(text, 'csv')
  t.same(counts(again.summary), { lines: 10, created: 0, updated: 0, unchanged: 5, rejected: 5 }, 're-importing reports everything unchanged')
})

t.test('a CSV header naming an unknown or lacking a required column stops the import before any push', async (t) => {
  let pushed = 0
  const push = async (items: unknown[]): Promise<PushOutcome> => { pushed += items.length; return { results: items.map((_, index) => ({ index, status: 'created' as const })) } }
  const attempt = (text: string) => importListings({ input: Readable.from([text]), format: 'csv', push, rejectsOut: sink().stream })
  await t.rejects(attempt(`${CSV_HEADER.join(',')},colour\n${personRow(1)},red\n`), ImportFormatError)
  await t.rejects(attempt(`${CSV_HEADER.filter((c) => c !== 'caseNumber').join(',')}\n`), { message: /lacks the required column caseNumber/ })
  await t.rejects(attempt('\n\n'), { message: /no header/ })
  t.equal(pushed, 0)
})

t.test('a long line is rejected and cut, not held; a truncated raw is marked', async (t) => {
  const rejects = sink()
  const long = JSON.stringify(personListing(1, { obligation: '债'.repeat(3000) }))
  const summary = await importListings({
    input: Readable.from([`${long}\n`, 'x'.repeat(5000), 'y'.repeat(5000), '\n{}\n']), format: 'ndjson', maxLineChars: 8000, rejectsOut: rejects.stream,
    push: async (items) => ({ results: items.map((_, index) => ({ index, status: 'rejected' as const, errors: [{ field: 'listKind', code: 'request.validation', message: 'x' }] })) }),
  })
  t.equal(summary.rejected, 3)
  const [first, second] = rejects.records()
  t.equal(first!.raw.length, 500)
  t.equal(first!.rawTruncated, true)
  t.match(second, { line: 2, errors: [{ code: 'import.line_too_long' }], rawTruncated: true })
  t.equal(second!.raw, 'x'.repeat(500))
})

/** n lines of `{"n":i}`, and how many the importer has pulled from the source. */
function numbered(n: number) {
  const state = { produced: 0 }
  const input = Readable.from((function* () { while (state.produced < n) yield `{"n":${++state.produced}}\n` })())
  return { input, state }
}
const allCreated = async (items: unknown[]): Promise<PushOutcome> => ({ results: items.map((_, index) => ({ index, status: 'created' as const })) })

t.test('a failing push stops the import: reading stops, earlier batches stay counted and their rejects written', async (t) => {
  const { input, state } = numbered(100_000)
  const rejects = sink()
  let calls = 0
  const push = async (items: unknown[]): Promise<PushOutcome> => {
    if (++calls === 3) throw new Error('connection lost')
    return { results: items.map((_, index) => (index === 0 ? { index, status: 'rejected' as const, errors: [{ field: 'x', code: 'y', message: 'z' }] } : { index, status: 'created' as const })) }
  }
  await t.rejects(importListings({ input, format: 'ndjson', batchSize: 10, push, rejectsOut: rejects.stream }), { message: 'connection lost' })
  t.same(rejects.records().map((r) => r.line), [1, 11], 'the rejects of the two settled batches')
  t.ok(state.produced < 1000, `reading stopped (${state.produced} of 100 000 lines pulled)`)
})

t.test('an abort stops reading; the batch in flight settles and the partial summary comes with the error', async (t) => {
  const { input, state } = numbered(100_000)
  const abort = new AbortController()
  let pushed = 0
  const push = async (items: unknown[]) => {
    pushed += items.length
    if (pushed >= 30) abort.abort()
    await new Promise((resolve) => setImmediate(resolve))
    return allCreated(items)
  }
  const err = await importListings({ input, format: 'ndjson', batchSize: 10, push, rejectsOut: sink().stream, signal: abort.signal }).catch((e: unknown) => e)
  t.type(err, ImportAbortedError)
  const summary = (err as ImportAbortedError).summary
  t.equal(summary.lines, pushed, 'every pushed line settled and is counted')
  t.equal(summary.created, pushed)
  t.ok(state.produced < 1000, `reading stopped (${state.produced} lines pulled)`)
})

t.test('200 000 streamed lines: bounded memory, at most one batch in flight, batches of at most batchSize', async (t) => {
  const TOTAL = 200_000
  const BATCH = 5000
  const LINES_PER_CHUNK = 100
  // About 1.3 KB a line, some 260 MB in all: holding the file (or the parsed lines) would show.
  const template = personListing(1, { obligation: '支付货款及利息'.repeat(100) })
  let produced = 0
  async function* generate() {
    while (produced < TOTAL) {
      let chunk = ''
      for (let i = 0; i < LINES_PER_CHUNK; i++) {
        produced++
        chunk += JSON.stringify({ ...template, caseNumber: caseNumber(produced) }) + '\n'
      }
      yield Buffer.from(chunk)
    }
  }
  const batches: number[] = []
  let inFlight = 0
  let maxInFlight = 0
  let maxAhead = 0
  let pushedLines = 0
  // What is retained, not garbage V8 has yet to collect: collect before each sample.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
  const baseline = process.memoryUsage().heapUsed
  let peakHeap = baseline
  const summary = await importListings({
    input: Readable.from(generate()), format: 'ndjson', batchSize: BATCH, rejectsOut: sink().stream,
    push: async (items) => {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      batches.push(items.length)
      pushedLines += items.length
      // Let the reader run while this batch is "in the database".
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
      maxAhead = Math.max(maxAhead, produced - pushedLines)
      if (batches.length % 4 === 0) { gc(); peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed) }
      inFlight--
      return { results: items.map((_, index) => ({ index, status: 'created' as const })) }
    },
  })
  t.same(counts(summary), { lines: TOTAL, created: TOTAL, updated: 0, unchanged: 0, rejected: 0 })
  t.equal(batches.length, TOTAL / BATCH)
  t.ok(batches.every((n) => n <= BATCH), 'no batch larger than batchSize')
  t.equal(maxInFlight, 1, 'one batch in flight at a time')
  // The next batch, plus what the stream buffers ahead (16 chunks) and the chunk being split.
  t.ok(maxAhead <= BATCH + 17 * LINES_PER_CHUNK, `reading stays at most one batch ahead of the push (${maxAhead} lines)`)
  const growthMb = (peakHeap - baseline) / 1e6
  t.ok(growthMb < 150, `retained heap growth ${growthMb.toFixed(0)} MB stays below 150 MB for ${(TOTAL * 1.3 / 1000).toFixed(0)} MB of input`)
})

t.test('the CLI imports a file as a court into the embedded database, and refuses what it must', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cgw-import-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'data')
  // Create the principals with the gateway's own code, then close PGlite before the child opens the directory.
  const database = await openConfiguredDatabase(loadConfig({ DATA_DIR: dataDir }))
  try {
    await registerPrincipal(database.db, COURT, 'court', ['listings:write'], { courtCode: '京0105' })
    await registerPrincipal(database.db, 'samr', 'agency', ['match'])
  } finally {
    await database.close()
  }
  const file = join(dir, 'catalogue.ndjson')
  writeFileSync(file, NDJSON)

  const cli = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'silent' }
    delete env.NODE_OPTIONS
    delete env.NODE_V8_COVERAGE
    delete env.DATABASE_URL
    execFile(process.execPath, ['--import', 'tsx', 'src/modules/listings/listings.import.cli.ts', ...args], { cwd: projectPath('.'), env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })
    })
  })

  const missing = await cli([join(dir, 'absent.ndjson'), '--court', COURT])
  t.equal(missing.code, 1, 'a missing file: error')
  t.match(missing.stderr, /cannot read .*absent\.ndjson/)
  const usage = await cli([file])
  t.equal(usage.code, 2, 'no --court: usage')
  t.match(usage.stderr, /--court PRINCIPAL_ID is required[\s\S]*usage: npm run import/)
  t.equal((await cli([join(dir, 'catalogue.txt'), '--court', COURT])).code, 2, 'an unknown extension without --format: usage')

  const agency = await cli([file, '--court', 'samr'])
  t.equal(agency.code, 1, agency.stderr)
  t.match(agency.stderr, /an agency, not a court/)

  const res = await cli([file, '--court', COURT, '--batch', '4'])
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /imported .*catalogue\.ndjson as court-bj-0105 \(京0105\)/)
  t.match(res.stdout, /11 lines in/)
  t.match(res.stdout, /created 8, updated 0, unchanged 0, rejected 3/)
  const rejects = readFileSync(`${file}.rejects.ndjson`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RejectRecord)
  t.same(rejects.map((r) => r.line), [3, 5, 7])
  t.same(rejects.map((r) => r.errors[0]!.code), ['import.invalid_json', 'identity.id_check_digit', 'listings.cross_court_write'])

  const again = await cli([file, '--court', COURT, '--rejects', join(dir, 'again.ndjson')])
  t.equal(again.code, 0, again.stderr)
  t.match(again.stdout, /created 0, updated 0, unchanged 8, rejected 3/)
  t.equal(readFileSync(join(dir, 'again.ndjson'), 'utf8').trim().split('\n').length, 3)
})
