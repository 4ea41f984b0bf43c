#!/usr/bin/env node
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream, createWriteStream, statSync } from 'node:fs'
import { extname, resolve } from 'node:path'
import { finished } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../../config.js'
import { systemClock } from '../../infra/clock.js'
import { openConfiguredDatabase } from '../../runtime.js'
import { loadWorkingDayCalendar } from '../calendar/calendar.loader.js'
import type { Principal, Scope } from '../principals/principals.models.js'
import { createPrincipalsRepository } from '../principals/principals.repository.js'
import { CSV_COLUMNS, CSV_REQUIRED_COLUMNS, DEFAULT_BATCH_SIZE, ImportAbortedError, ImportFormatError, importListings, type ImportFormat, type ImportProgress } from './listings.import.js'
import { createListingsRepository } from './listings.repository.js'
import { createListingsService, MAX_PUSH_ITEMS } from './listings.service.js'

const USAGE = `usage: npm run import -- FILE --court PRINCIPAL_ID [--format ndjson|csv] [--rejects FILE] [--batch N]

Imports a court's back catalogue of listings from FILE into the configured database (DATABASE_URL,
or the embedded one under DATA_DIR; stop a gateway that uses the same embedded database first).
Every line is validated on its own, exactly as POST /v1/listings validates an item, and the lines
are committed in batches of N (default ${DEFAULT_BATCH_SIZE}, at most ${MAX_PUSH_ITEMS}), as the court principal
PRINCIPAL_ID (an active court with listings:write; it writes only its own court code, and its
subordinate courts' codes if its profile grants them).

  --format   ndjson (one ListingInput object a line) or csv; by default from FILE's extension
             (.ndjson, .jsonl, .csv)
  --rejects  where rejected lines go, one JSON record {line, errors, raw} a line
             (default FILE.rejects.ndjson)
  --batch    lines per transaction

CSV: a header row naming columns of
  ${CSV_COLUMNS.join(', ')}
of which ${CSV_REQUIRED_COLUMNS.join(', ')} are required. An empty cell is an absent field;
grounds are written G1|G4, restrictedPersons name;idNumber;role|name;idNumber;role.

Re-running a file is safe: lines already imported report "unchanged". Exit status: 0 when the import
ran (rejected lines are counted and written, not fatal), 1 on an error, 2 on bad usage.`

const FORMAT_BY_EXTENSION: Record<string, ImportFormat> = { '.ndjson': 'ndjson', '.jsonl': 'ndjson', '.csv': 'csv' }
const REQUIRED_SCOPE: Scope = 'listings:write'
const PLAIN_PROGRESS_MS = 5000
const TTY_PROGRESS_MS = 200
const BAR_WIDTH = 30

class UsageError extends Error {}
class HelpRequested extends Error {}
class FatalError extends Error {}

interface Args { file: string; court: string; format: ImportFormat; rejects: string; batch: number }

function parse(argv: string[]): Args {
  let parsed
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { court: { type: 'string' }, format: { type: 'string' }, rejects: { type: 'string' }, batch: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help) throw new HelpRequested()
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'FILE is required' : `one FILE, not ${positionals.length}`)
  const file = positionals[0]!
  if (!values.court) throw new UsageError('--court PRINCIPAL_ID is required')
  const format = (values.format ?? FORMAT_BY_EXTENSION[extname(file).toLowerCase()]) as ImportFormat | undefined
  if (!format) throw new UsageError(`cannot tell the format of ${file} from its extension; pass --format ndjson or --format csv`)
  if (format !== 'ndjson' && format !== 'csv') throw new UsageError(`--format must be ndjson or csv, not ${format}`)
  const batch = values.batch === undefined ? DEFAULT_BATCH_SIZE : Number(values.batch)
  if (!Number.isInteger(batch) || batch < 1 || batch > MAX_PUSH_ITEMS) throw new UsageError(`--batch must be an integer from 1 to ${MAX_PUSH_ITEMS}`)
  const rejects = values.rejects ?? `${file}.rejects.ndjson`
  if (resolve(rejects) === resolve(file)) throw new UsageError('--rejects must not be the input file')
  return { file, court: values.court, format, rejects, batch }
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`
function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
}

/** A bar redrawn in place on a terminal; a plain line every few seconds in a log. */
function progressReporter(totalBytes: number, stream: NodeJS.WriteStream) {
  let last: ImportProgress | undefined
  let shown = 0
  const tty = stream.isTTY === true
  const describe = (p: ImportProgress) => {
    const fraction = totalBytes > 0 ? Math.min(1, p.bytes / totalBytes) : 1
    const rate = p.elapsedMs > 0 ? (p.lines * 1000) / p.elapsedMs : 0
    const eta = fraction > 0 && fraction < 1 ? `  ETA ${duration((p.elapsedMs / fraction) * (1 - fraction))}` : ''
    return { fraction, text: `${(fraction * 100).toFixed(1)}%  ${int(p.lines)} lines  ${int(rate)} lines/s  ${mb(p.bytes)} of ${mb(totalBytes)}  ${int(p.rejected)} rejected${eta}` }
  }
  const draw = () => {
    if (!last) return
    const { fraction, text } = describe(last)
    if (tty) {
      const filled = Math.round(fraction * BAR_WIDTH)
      const line = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${text}`
      stream.write(`\r${line.slice(0, Math.max(20, (stream.columns || 120) - 1))}\x1b[K`)
    } else stream.write(`import: ${text}\n`)
    shown++
  }
  const timer = setInterval(draw, tty ? TTY_PROGRESS_MS : PLAIN_PROGRESS_MS)
  timer.unref()
  return {
    update(p: ImportProgress) { last = p },
    stop() {
      clearInterval(timer)
      if (tty && last) { draw(); stream.write('\n') } else if (tty && shown > 0) stream.write('\n')
    },
  }
}

async function loadCourt(repo: ReturnType<typeof createPrincipalsRepository>, id: string): Promise<Principal> {
  const row = await repo.findById(id)
  if (!row) throw new FatalError(`no principal ${id}`)
  if (row.kind !== 'court' || !row.courtCode) throw new FatalError(`principal ${id} is ${row.kind === 'court' ? 'a court without a court code' : `an ${row.kind}, not a court`}; only a court imports listings`)
  if (row.status !== 'active') throw new FatalError(`principal ${id} is ${row.status}`)
  if (!row.scopes.includes(REQUIRED_SCOPE)) throw new FatalError(`principal ${id} lacks the ${REQUIRED_SCOPE} scope`)
  return { id: row.id, kind: row.kind, name: row.name, courtCode: row.courtCode, scopes: row.scopes as Scope[], profile: row.profile, status: row.status }
}

async function main(argv: string[]): Promise<number> {
  let args: Args
  try {
    args = parse(argv)
  } catch (err) {
    if (err instanceof HelpRequested) { console.log(USAGE); return 0 }
    if (!(err instanceof UsageError)) throw err
    console.error(`error: ${err.message}\n\n${USAGE}`)
    return 2
  }
  let totalBytes: number
  try {
    const st = statSync(args.file)
    if (!st.isFile()) throw new Error('not a regular file')
    totalBytes = st.size
  } catch (err) {
    console.error(`error: cannot read ${args.file}: ${(err as Error).message}`)
    return 1
  }

  const config = loadConfig()
  const database = await openConfiguredDatabase(config)
  try {
    const court = await loadCourt(createPrincipalsRepository(database.db), args.court)
    const service = createListingsService({ repo: createListingsRepository(database.db), calendar: loadWorkingDayCalendar(), clock: systemClock })
    // One request id for the whole run: every change-log event of this import carries it.
    const requestId = `import-${randomUUID()}`
    const rejectsOut = createWriteStream(args.rejects)
    await once(rejectsOut, 'open')
    const progress = progressReporter(totalBytes, process.stderr)
    const abort = new AbortController()
    const onSignal = () => {
      if (abort.signal.aborted) process.exit(130)
      console.error('\ninterrupt: finishing the batch in flight (again to quit at once)')
      abort.abort()
    }
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal)
    let summary
    let interrupted = false
    try {
      summary = await importListings({
        input: createReadStream(args.file), format: args.format, batchSize: args.batch, rejectsOut, signal: abort.signal,
        push: (items) => service.push(court, items, requestId), onProgress: (p) => progress.update(p),
      })
    } catch (err) {
      if (!(err instanceof ImportAbortedError)) {
        // Keep what was written: the rejects of the batches that did settle.
        rejectsOut.end()
        await finished(rejectsOut).catch(() => {})
        throw err
      }
      summary = err.summary
      interrupted = true
    } finally {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal)
      progress.stop()
    }
    rejectsOut.end()
    await finished(rejectsOut)
    const rate = summary.elapsedMs > 0 ? (summary.lines * 1000) / summary.elapsedMs : 0
    console.log(`${interrupted ? 'interrupted' : 'imported'} ${args.file} as ${court.id} (${court.courtCode}), request id ${requestId}`)
    console.log(`  ${int(summary.lines)} lines in ${(summary.elapsedMs / 1000).toFixed(1)} s (${int(rate)} lines/s), ${mb(summary.bytes)} read`)
    console.log(`  created ${int(summary.created)}, updated ${int(summary.updated)}, unchanged ${int(summary.unchanged)}, rejected ${int(summary.rejected)}${summary.warned ? `, with warnings ${int(summary.warned)}` : ''}`)
    console.log(`  rejected lines written to ${args.rejects}`)
    if (interrupted) {
      console.log('  the lines above are committed; run the same command again to finish (they will report unchanged)')
      return 130
    }
    return 0
  } finally {
    await database.close()
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: Error) => {
  const known = err instanceof ConfigError || err instanceof FatalError || err instanceof ImportFormatError
  console.error(`error: ${err.message}`)
  if (!known) console.error('batches committed before the error stay committed; running the same file again reports them unchanged')
  process.exitCode = 1
})
