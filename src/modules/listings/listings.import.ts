import { once } from 'node:events'
import type { Writable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import secureJson from 'secure-json-parse'
import type { FieldError } from './listings.models.js'
import { MAX_PUSH_ITEMS, type PushStatus } from './listings.service.js'

/**
 * Bulk import of a court's back catalogue (issue 3 item 6): an NDJSON or CSV file, streamed line by
 * line, every line validated on its own by the same push the API uses (schemas/ListingInput.json),
 * in batches of up to 10 000. Memory stays bounded whatever the file size: at most one batch is being
 * pushed while the next is read, and reading waits (backpressure) until the pushed batch settles.
 *
 * Line numbers are physical, 1-based lines of the file (the CSV header is line 1); a CSV record whose
 * quoted field spans several lines carries the number of its first line.
 *
 * Duplicates inside one file: two lines with the same court, case number and subject in the same
 * batch are a `listings.duplicate_in_request` rejection of the second (as in one API push); in
 * different batches the later line updates the earlier one. Remembering every key of a
 * million-line file to make both cases alike would cost the memory bound.
 */

export type ImportFormat = 'ndjson' | 'csv'
export const IMPORT_FORMATS: readonly ImportFormat[] = ['ndjson', 'csv']
export const DEFAULT_BATCH_SIZE = 5000
/** A longer line is rejected without being held in memory (a file with no newlines must not fill the heap). */
export const DEFAULT_MAX_LINE_CHARS = 1024 * 1024
/** How much of a rejected line the rejects file repeats. */
export const REJECT_RAW_CHARS = 500

/**
 * The CSV columns, mapped to ListingInput. An empty cell is an absent field. `grounds` holds `G1|G4`;
 * `restrictedPersons` holds `name;idNumber;role` entries separated by `|` (idNumber and role
 * optional). Numbers and booleans are converted when they look like one; anything else is passed on
 * as text, so the schema names the field that is wrong.
 */
export const CSV_COLUMNS = [
  'listKind', 'caseNumber', 'courtName',
  'subjectKind', 'subjectName', 'idNumber', 'creditCode', 'orgCode', 'legalRepName', 'legalRepIdNumber',
  'restrictedPersons', 'basisIssuer', 'basisDocumentNumber', 'obligation',
  'performance', 'fullPerformanceOn', 'amountOutstanding', 'grounds',
  'filedOn', 'publishedOn', 'graceUntil', 'extensionYears', 'periodEndsOn', 'convictedOfRefusal',
] as const
export type CsvColumn = (typeof CSV_COLUMNS)[number]
/** Without these every row would be rejected: the header is refused instead. */
export const CSV_REQUIRED_COLUMNS: readonly CsvColumn[] = ['listKind', 'caseNumber', 'courtName', 'subjectKind', 'subjectName', 'performance', 'publishedOn']

export interface ImportError extends FieldError {
  /** CSV: the column the field comes from, when there is one. */
  column?: string
}

/** What `push` must return: one result per item, `index` into the items it was given. */
export interface PushOutcome {
  results: { index: number; status: PushStatus; errors?: FieldError[]; warnings?: FieldError[] }[]
}

export interface ImportProgress {
  /** Records settled (committed or rejected): blank lines and the CSV header are not counted. */
  lines: number
  /** Bytes of input consumed by the reader (it runs up to one batch ahead of `lines`). */
  bytes: number
  created: number
  updated: number
  unchanged: number
  rejected: number
  /** Lines accepted with a warning (e.g. a pre-2016 case number, taken as the importing court's). */
  warned: number
  elapsedMs: number
}
export type ImportSummary = ImportProgress

export interface ImportOptions {
  /** A byte (or string) stream: a file, stdin, a generator. Never read whole. */
  input: AsyncIterable<Buffer | string>
  format: ImportFormat
  /** Validates and commits one batch; the service's push bound to the importing court. */
  push: (items: unknown[]) => Promise<PushOutcome>
  /** Every rejected line is written here as one NDJSON record `{line, errors, raw}`. */
  rejectsOut: Writable
  batchSize?: number
  /** Called after each batch settles (committed counts and bytes read so far). */
  onProgress?: (progress: ImportProgress) => void
  /** Stops reading; the batch in flight still settles, then `importListings` throws ImportAbortedError. */
  signal?: AbortSignal
  maxLineChars?: number
  now?: () => number
}

/** The file cannot be imported at all (a bad CSV header): nothing was pushed. */
export class ImportFormatError extends Error {
  override name = 'ImportFormatError'
}

export class ImportAbortedError extends Error {
  override name = 'ImportAbortedError'
  constructor(readonly summary: ImportSummary) {
    super(`import interrupted after ${summary.lines} lines`)
  }
}

interface Entry {
  line: number
  raw: string
  item?: unknown
  /** Set when the line was rejected before the push (syntax). */
  errors?: ImportError[]
  /** `raw` is already cut (an over-long line is never held whole). */
  cut?: boolean
}

interface PhysicalLine { text: string; tooLong: boolean }

/**
 * Splits a byte stream into lines (LF or CRLF) without holding more than one chunk and one line.
 * Yields the lines of each chunk together; the consumer pulling the next chunk is the backpressure.
 * A line longer than `maxChars` is cut to its first REJECT_RAW_CHARS characters and flagged.
 */
async function* physicalLines(input: AsyncIterable<Buffer | string>, maxChars: number, counter: { bytes: number }): AsyncGenerator<PhysicalLine[]> {
  const decoder = new StringDecoder('utf8')
  let partial = ''
  let tooLong = false
  let first = true
  const finish = (text: string): PhysicalLine => {
    if (text.endsWith('\r')) text = text.slice(0, -1)
    if (first) { first = false; if (text.charCodeAt(0) === 0xfeff) text = text.slice(1) }
    const out = { text, tooLong }
    tooLong = false
    return out
  }
  const append = (piece: string) => {
    if (tooLong) return
    if (partial.length + piece.length > maxChars) { partial = (partial + piece.slice(0, REJECT_RAW_CHARS)).slice(0, REJECT_RAW_CHARS); tooLong = true } else partial += piece
  }
  for await (const chunk of input) {
    counter.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk)
    const lines: PhysicalLine[] = []
    let start = 0
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      append(text.slice(start, nl))
      lines.push(finish(partial))
      partial = ''
      start = nl + 1
    }
    append(text.slice(start))
    if (lines.length > 0) yield lines
  }
  append(decoder.end())
  if (partial.length > 0 || tooLong) yield [finish(partial)]
}

/** Cuts a line for the rejects file, never through a surrogate pair. */
function truncateRaw(raw: string, cut = false): { raw: string; rawTruncated?: true } {
  if (raw.length <= REJECT_RAW_CHARS) return cut ? { raw, rawTruncated: true } : { raw }
  let end = REJECT_RAW_CHARS
  const code = raw.charCodeAt(end - 1)
  if (code >= 0xd800 && code <= 0xdbff) end--
  return { raw: raw.slice(0, end), rawTruncated: true }
}

// ---------------------------------------------------------------------------------------------
// CSV (RFC 4180): comma-separated, fields optionally in double quotes, "" is a quote inside a quoted
// field, a quoted field may hold commas and line breaks. A quote inside an unquoted field is taken
// literally (as most spreadsheet exports write it).

/** One record, fed physical line by physical line (a quoted field may span lines). */
class CsvRecord {
  cells: string[] = []
  private cell = ''
  private inQuotes = false
  error: string | undefined
  length = 0

  /** Returns true when the record is complete, false when a quoted field continues on the next line. */
  feed(line: string): boolean {
    this.length += line.length + 1
    let i = 0
    const n = line.length
    if (this.inQuotes) this.cell += '\n'
    for (;;) {
      if (this.inQuotes) {
        const q = line.indexOf('"', i)
        if (q === -1) { this.cell += line.slice(i); return false }
        this.cell += line.slice(i, q)
        if (line.charCodeAt(q + 1) === 0x22) { this.cell += '"'; i = q + 2; continue }
        this.inQuotes = false
        i = q + 1
        if (i < n && line[i] !== ',') {
          // "abc"def: not RFC 4180. Keep reading to the end of the field, and reject the record.
          this.error ??= `text after a closing quote at character ${i + 1}`
          const comma = line.indexOf(',', i)
          this.cell += line.slice(i, comma === -1 ? n : comma)
          i = comma === -1 ? n : comma
        }
        this.cells.push(this.cell)
        this.cell = ''
        if (i >= n) return true
        i++ // past the comma: a new field starts
      }
      if (line.charCodeAt(i) === 0x22) { this.inQuotes = true; i++; continue }
      const comma = line.indexOf(',', i)
      if (comma === -1) { this.cells.push(line.slice(i)); return true }
      this.cells.push(line.slice(i, comma))
      i = comma + 1
    }
  }
}

function parseHeader(cells: string[], line: number): CsvColumn[] {
  const known = new Set<string>(CSV_COLUMNS)
  const names = cells.map((c) => c.trim())
  const unknown = names.filter((c) => !known.has(c))
  if (unknown.length > 0) throw new ImportFormatError(`line ${line}: unknown CSV column${unknown.length > 1 ? 's' : ''} ${unknown.map((c) => JSON.stringify(c)).join(', ')}; the columns are ${CSV_COLUMNS.join(', ')}`)
  const dup = names.find((c, i) => names.indexOf(c) !== i)
  if (dup) throw new ImportFormatError(`line ${line}: CSV column "${dup}" appears twice`)
  const missing = CSV_REQUIRED_COLUMNS.filter((c) => !names.includes(c))
  if (missing.length > 0) throw new ImportFormatError(`line ${line}: the CSV header lacks the required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`)
  return names as CsvColumn[]
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
const INTEGER = /^[+-]?\d+$/
const asNumber = (v: string | undefined, re: RegExp) => (v !== undefined && re.test(v.trim()) ? Number(v.trim()) : v)
function asBoolean(v: string | undefined): boolean | string | undefined {
  const t = v?.trim().toLowerCase()
  return t === 'true' ? true : t === 'false' ? false : v
}
/** Sets only the fields that are present, so that an absent cell is an absent field. */
function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k]
  return o
}

/** Maps one CSV row to a ListingInput-shaped object; validation is the push's. */
export function csvRowToListing(header: readonly CsvColumn[], cells: readonly string[]): Record<string, unknown> {
  const v: Partial<Record<CsvColumn, string>> = {}
  header.forEach((name, i) => { const cell = cells[i]; if (cell !== undefined && cell !== '') v[name] = cell })
  const legalRep = v.legalRepName !== undefined || v.legalRepIdNumber !== undefined ? compact({ name: v.legalRepName, idNumber: v.legalRepIdNumber }) : undefined
  const basis = v.basisIssuer !== undefined || v.basisDocumentNumber !== undefined ? compact({ issuer: v.basisIssuer, documentNumber: v.basisDocumentNumber }) : undefined
  const split = (s: string, sep: string) => s.split(sep).map((p) => p.trim())
  return compact({
    listKind: v.listKind,
    caseNumber: v.caseNumber,
    courtName: v.courtName,
    subject: compact({ kind: v.subjectKind, name: v.subjectName, idNumber: v.idNumber, creditCode: v.creditCode, orgCode: v.orgCode, legalRepresentative: legalRep }),
    restrictedPersons: v.restrictedPersons === undefined ? undefined : split(v.restrictedPersons, '|').filter(Boolean).map((p) => {
      const [name, idNumber, role] = split(p, ';')
      return compact({ name, idNumber: idNumber || undefined, role: role || undefined })
    }),
    basis,
    obligation: v.obligation,
    performance: v.performance,
    fullPerformanceOn: v.fullPerformanceOn,
    amountOutstanding: asNumber(v.amountOutstanding, NUMBER),
    grounds: v.grounds === undefined ? undefined : split(v.grounds, '|').filter(Boolean),
    filedOn: v.filedOn,
    publishedOn: v.publishedOn,
    graceUntil: v.graceUntil,
    extensionYears: asNumber(v.extensionYears, INTEGER),
    periodEndsOn: v.periodEndsOn,
    convictedOfRefusal: asBoolean(v.convictedOfRefusal),
  })
}

const FIELD_COLUMNS: Record<string, CsvColumn> = {
  'subject.kind': 'subjectKind', 'subject.name': 'subjectName', 'subject.idNumber': 'idNumber', 'subject.creditCode': 'creditCode',
  'subject.orgCode': 'orgCode', 'subject.legalRepresentative': 'legalRepName', 'subject.legalRepresentative.name': 'legalRepName',
  'subject.legalRepresentative.idNumber': 'legalRepIdNumber', basis: 'basisIssuer', 'basis.issuer': 'basisIssuer', 'basis.documentNumber': 'basisDocumentNumber',
}
/** The CSV column a push error's field comes from, so a clerk can find the cell. */
export function csvColumnFor(field: string): CsvColumn | undefined {
  if (FIELD_COLUMNS[field]) return FIELD_COLUMNS[field]
  const top = field.split('.')[0]!
  return (CSV_COLUMNS as readonly string[]).includes(top) && top !== 'subject' ? (top as CsvColumn) : undefined
}

// ---------------------------------------------------------------------------------------------

/**
 * Streams `input` through `push` in batches and writes every rejected line to `rejectsOut`.
 * Resolves with the totals once every batch has settled and every reject has been written (the
 * caller ends `rejectsOut`). Rejects when reading, pushing or writing fails: batches settled before
 * that are committed, and re-running the same file reports them `unchanged`.
 */
export async function importListings(opts: ImportOptions): Promise<ImportSummary> {
  const { format, push, rejectsOut, onProgress, signal } = opts
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_PUSH_ITEMS) throw new RangeError(`batchSize must be an integer from 1 to ${MAX_PUSH_ITEMS}`)
  if (!IMPORT_FORMATS.includes(format)) throw new RangeError(`format must be one of ${IMPORT_FORMATS.join(', ')}`)
  const now = opts.now ?? Date.now
  const started = now()
  const counter = { bytes: 0 }
  const totals = { lines: 0, created: 0, updated: 0, unchanged: 0, rejected: 0, warned: 0 }
  const progress = (): ImportProgress => ({ ...totals, bytes: counter.bytes, elapsedMs: now() - started })

  async function write(text: string) {
    if (rejectsOut.destroyed) throw new Error('the rejects output is closed')
    if (!rejectsOut.write(text)) await once(rejectsOut, 'drain')
  }

  /** Pushes one batch, counts its results and writes its rejects in line order. */
  async function settle(entries: Entry[]) {
    const pushed = entries.filter((e) => e.errors === undefined)
    if (pushed.length > 0) {
      const { results } = await push(pushed.map((e) => e.item))
      if (results.length !== pushed.length) throw new Error(`push returned ${results.length} results for ${pushed.length} items`)
      for (const r of results) {
        const entry = pushed[r.index]
        if (!entry) throw new Error(`push returned a result for item ${r.index} of ${pushed.length}`)
        if (r.status === 'rejected') {
          const errors: ImportError[] = r.errors?.length ? r.errors : [{ field: '(item)', code: 'import.rejected', message: 'rejected' }]
          entry.errors = format === 'csv' ? errors.map((e) => { const column = csvColumnFor(e.field); return column ? { ...e, column } : e }) : errors
        } else {
          totals[r.status]++
          if (r.warnings?.length) totals.warned++
        }
      }
    }
    let out = ''
    for (const e of entries) {
      if (!e.errors) continue
      totals.rejected++
      out += JSON.stringify({ line: e.line, errors: e.errors, ...truncateRaw(e.raw, e.cut) }) + '\n'
    }
    totals.lines += entries.length
    if (out) await write(out)
    onProgress?.(progress())
  }

  // At most one batch in flight: the next is read meanwhile, and handed over only when it settles.
  let inflight: Promise<void> | undefined
  let failed: { error: unknown } | undefined
  async function dispatch(entries: Entry[]) {
    if (inflight) await inflight
    const p = settle(entries)
    p.catch((error: unknown) => { failed ??= { error } })
    inflight = p
  }

  let batch: Entry[] = []
  const add = async (entry: Entry) => {
    batch.push(entry)
    if (batch.length >= batchSize) { const full = batch; batch = []; await dispatch(full) }
  }

  let lineNo = 0
  let header: CsvColumn[] | undefined
  let record: CsvRecord | undefined
  let recordLine = 0
  let recordRaw = ''
  const maxLineChars = opts.maxLineChars ?? DEFAULT_MAX_LINE_CHARS

  const csvRecordDone = async () => {
    const rec = record!
    record = undefined
    if (!header) { header = parseHeader(rec.cells, recordLine); return }
    if (rec.error) return add({ line: recordLine, raw: recordRaw, errors: [{ field: '(line)', code: 'import.csv_syntax', message: rec.error }] })
    if (rec.cells.length !== header.length) {
      return add({ line: recordLine, raw: recordRaw, errors: [{ field: '(line)', code: 'import.csv_columns', message: `${rec.cells.length} cells where the header has ${header.length}` }] })
    }
    return add({ line: recordLine, raw: recordRaw, item: csvRowToListing(header, rec.cells) })
  }

  // A failing rejects output (a full disk) stops the import rather than crashing the process.
  const onRejectsError = (error: unknown) => { failed ??= { error } }
  rejectsOut.on('error', onRejectsError)
  try {
    return await run()
  } finally {
    rejectsOut.off('error', onRejectsError)
  }

  async function run(): Promise<ImportSummary> {
    reading: for await (const lines of physicalLines(opts.input, maxLineChars, counter)) {
      for (const { text, tooLong } of lines) {
        lineNo++
        if (tooLong) {
          if (record) { await add({ line: recordLine, raw: recordRaw, errors: [{ field: '(line)', code: 'import.csv_syntax', message: 'a quoted field is not closed' }] }); record = undefined }
          await add({ line: lineNo, raw: text, cut: true, errors: [{ field: '(line)', code: 'import.line_too_long', message: `the line is longer than ${maxLineChars} characters` }] })
          continue
        }
        if (format === 'ndjson') {
          if (text.trim() === '') continue
          let item: unknown
          try {
            item = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
          } catch (err) {
            await add({ line: lineNo, raw: text, errors: [{ field: '(line)', code: 'import.invalid_json', message: (err as Error).message }] })
            continue
          }
          if (typeof item !== 'object' || item === null || Array.isArray(item)) {
            await add({ line: lineNo, raw: text, errors: [{ field: '(line)', code: 'import.not_an_object', message: 'an NDJSON line holds one JSON object (a listing)' }] })
          } else await add({ line: lineNo, raw: text, item })
        } else {
          if (!record) {
            if (text.trim() === '') continue
            record = new CsvRecord()
            recordLine = lineNo
            recordRaw = text
          } else recordRaw = recordRaw.length < REJECT_RAW_CHARS ? `${recordRaw}\n${text}` : recordRaw
          if (record.feed(text)) await csvRecordDone()
          else if (record.length > maxLineChars) {
            await add({ line: recordLine, raw: recordRaw, errors: [{ field: '(line)', code: 'import.csv_syntax', message: `a quoted field runs past ${maxLineChars} characters (a quote not closed?)` }] })
            record = undefined
          }
        }
        if (failed) break reading
      }
      if (failed || signal?.aborted) break
    }
    const stopped = failed !== undefined || signal?.aborted === true
    if (!stopped) {
      if (record) {
        record = undefined
        await add({ line: recordLine, raw: recordRaw, errors: [{ field: '(line)', code: 'import.csv_syntax', message: 'a quoted field is not closed at the end of the file' }] })
      }
      if (format === 'csv' && !header) throw new ImportFormatError('the CSV file has no header row')
      if (batch.length > 0) await dispatch(batch)
    }
    if (inflight) await inflight.catch(() => {})
    if (failed) throw failed.error
    const summary = progress()
    if (signal?.aborted) throw new ImportAbortedError(summary)
    return summary
  }
}
