import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { systemClock, type Clock } from '../../infra/clock.js'
import type { Database } from '../../infra/db.js'
import { AppError } from '../../infra/errors.js'
import { auditError } from './audit.errors.js'
import { canonicalEntryTail, chainHash, GENESIS_HASH, InvalidAuditEntryError, prepareEntry, type AuditEntryInput, type PreparedEntry } from './audit.models.js'

export interface AuditFlush {
  /** Entries in the INSERT. */
  entries: number
  ok: boolean
  ms: number
  firstSeq?: number
  lastSeq?: number
}

export interface AuditWriterOptions {
  /** The chain this writer extends; default a random uuid per process. Reusing an id continues its chain. */
  writerId?: string
  /** Most entries per INSERT (a single append larger than this still goes in one INSERT). */
  maxBatch?: number
  /**
   * How long the first append of a batch waits for others to join it (default 1 ms): under load
   * each INSERT then carries several requests' entries, saving client and database CPU per request.
   */
  lingerMs?: number
  clock?: Clock
  /** Called after every INSERT attempt (tests and metrics); must not throw. */
  onFlush?: (flush: AuditFlush) => void
}

export interface AuditWriter {
  readonly writerId: string
  /**
   * Resolves once every entry is committed, chained to this writer's previous entries. Rejects
   * with 503 `service.unavailable` when the database fails (nothing of the batch is chained),
   * or 500 `audit.invalid_entry` / `audit.entry_rejected` for an entry that cannot be stored.
   */
  append(entries: AuditEntryInput[]): Promise<void>
  /** Commits what is queued, then refuses further appends. */
  close(): Promise<void>
  /** Counters since creation: INSERTs that committed, entries they held, INSERTs that failed. */
  readonly stats: { readonly flushes: number; readonly entries: number; readonly failures: number }
  /**
   * The last entry this writer knows committed (what a checkpoint signs); undefined before its
   * first commit and after a failed INSERT, until the next commit re-reads the chain.
   */
  readonly head: { readonly seq: number; readonly hash: string } | undefined
}

interface Pending { entries: PreparedEntry[]; resolve: () => void; reject: (err: unknown) => void }
interface Head { seq: number; hash: string }

const INSERT_SQL = `INSERT INTO audit_entries
  (writer_id, writer_seq, at, principal_id, action, operation_id, request_id, subject_hash, scenario, receipt_id, result, prev_hash, hash)
SELECT writer_id, writer_seq, at, principal_id, action, operation_id, request_id, subject_hash, scenario, receipt_id, result, prev_hash, hash
FROM jsonb_to_recordset($1::jsonb) AS x(writer_id text, writer_seq bigint, at timestamptz, principal_id text, action text,
  operation_id text, request_id text, subject_hash text, scenario text, receipt_id uuid, result jsonb, prev_hash text, hash text)
ORDER BY writer_seq`

const SEQ_CONSTRAINT = 'audit_entries_writer_id_writer_seq_key'

function sqlState(err: unknown): { code?: string; constraint?: string } {
  const e = err as { code?: unknown; constraint_name?: unknown; constraint?: unknown } | null
  // postgres.js names it constraint_name, PGlite constraint.
  const constraint = e?.constraint_name ?? e?.constraint
  return { code: typeof e?.code === 'string' ? e.code : undefined, constraint: typeof constraint === 'string' ? constraint : undefined }
}

const unavailable = (message: string, cause?: unknown) =>
  Object.assign(new AppError('service.unavailable', 503, message, { headers: { 'retry-after': '1' } }), cause === undefined ? {} : { cause })

/**
 * The audit trail's group-commit writer (DESIGN.md "Every look-up is on the record"). Entries
 * appended by concurrent requests queue up while one INSERT is in flight and go together in the
 * next one: one multi-row INSERT per batch, one flush at a time, each caller waiting only for the
 * commit of its own batch. The chain (writer_seq, prev_hash, hash) is assigned when a batch is
 * sent and becomes the head only once it has committed; after any failure the head is re-read
 * from the database before the next batch, so a failed batch consumes no sequence numbers, and a
 * batch whose commit was lost with the connection (committed, but reported as failed) is
 * continued from rather than forked.
 */
export function createAuditWriter(database: Database, opts: AuditWriterOptions = {}): AuditWriter {
  const writerId = opts.writerId ?? randomUUID()
  const writerIdJson = JSON.stringify(writerId)
  const maxBatch = opts.maxBatch ?? 1000
  const lingerMs = opts.lingerMs ?? 1
  const clock = opts.clock ?? systemClock
  const stats = { flushes: 0, entries: 0, failures: 0 }
  let queue: Pending[] = []
  let running: Promise<void> | undefined
  /** The last committed entry of this writer; undefined = read it from the database first. */
  let head: Head | undefined
  let closed = false

  async function loadHead(): Promise<Head> {
    const [row] = await database.query<{ seq: string; hash: string }>(
      'SELECT writer_seq::text AS seq, hash FROM audit_entries WHERE writer_id = $1 ORDER BY writer_seq DESC LIMIT 1', [writerId])
    return row ? { seq: Number(row.seq), hash: row.hash } : { seq: 0, hash: GENESIS_HASH }
  }

  function notify(flush: AuditFlush) {
    try { opts.onFlush?.(flush) } catch { /* an observer never breaks the writer */ }
  }

  /** Takes whole appends up to maxBatch entries (at least one append). */
  function take(): Pending[] {
    let n = 0
    let i = 0
    while (i < queue.length && (i === 0 || n + queue[i]!.entries.length <= maxBatch)) n += queue[i++]!.entries.length
    const batch = queue.slice(0, i)
    queue = queue.slice(i)
    return batch
  }

  async function commit(batch: Pending[], retried: boolean): Promise<void> {
    const started = performance.now()
    const count = batch.reduce((n, p) => n + p.entries.length, 0)
    let firstSeq: number | undefined
    let lastSeq: number | undefined
    try {
      let { seq, hash } = head ?? await loadHead()
      firstSeq = seq + 1
      const rows: string[] = []
      for (const p of batch) {
        for (const e of p.entries) {
          // The row is the hashed canonical JSON plus prev_hash and hash: what is stored is what was hashed.
          const canonical = e.head + canonicalEntryTail(writerIdJson, ++seq)
          const prevHash = hash
          hash = chainHash(prevHash, canonical)
          rows.push(`${canonical.slice(0, -1)},"prev_hash":"${prevHash}","hash":"${hash}"}`)
        }
      }
      lastSeq = seq
      await database.query(INSERT_SQL, [`[${rows.join(',')}]`], { prepare: true })
      head = { seq, hash }
      stats.flushes++
      stats.entries += count
      notify({ entries: count, ok: true, ms: performance.now() - started, firstSeq, lastSeq })
      for (const p of batch) p.resolve()
    } catch (err) {
      head = undefined
      stats.failures++
      notify({ entries: count, ok: false, ms: performance.now() - started, firstSeq, lastSeq })
      const { code, constraint } = sqlState(err)
      // Another writer with the same id took these sequence numbers: continue after its rows, once.
      if (code === '23505' && constraint === SEQ_CONSTRAINT) {
        if (!retried) return commit(batch, true)
      } else if (code?.startsWith('22') || code?.startsWith('23')) {
        // Data or integrity error (e.g. a receipt id already on record): it lies in some entry, not
        // the database. Halve the batch until the offending append is alone, and refuse only it.
        if (batch.length > 1) {
          const mid = batch.length >> 1
          await commit(batch.slice(0, mid), false)
          await commit(batch.slice(mid), false)
          return
        }
        batch[0]!.reject(Object.assign(auditError('entry_rejected', 500, `the audit entry was refused by the database (${code})`), { cause: err }))
        return
      }
      const error = unavailable('the audit trail is unavailable; retry shortly', err)
      for (const p of batch) p.reject(error)
    }
  }

  async function drain(): Promise<void> {
    try {
      while (queue.length > 0) await commit(take(), false)
    } finally {
      // Cleared in the same tick as the emptiness check, so an append never waits on a finished drain.
      running = undefined
    }
  }

  return {
    writerId,
    stats,
    get head() { return head },
    append(inputs) {
      if (closed) return Promise.reject(unavailable('the audit writer is closed'))
      if (inputs.length === 0) return Promise.resolve()
      let entries: PreparedEntry[]
      try {
        const at = new Date(clock.nowMs()).toISOString()
        entries = inputs.map((i) => prepareEntry(i, at))
      } catch (err) {
        if (err instanceof InvalidAuditEntryError) return Promise.reject(auditError('invalid_entry', 500, err.message))
        return Promise.reject(err)
      }
      return new Promise<void>((resolve, reject) => {
        queue.push({ entries, resolve, reject })
        running ??= new Promise<void>((r) => setTimeout(r, lingerMs)).then(drain)
      })
    },
    async close() {
      closed = true
      while (running) await running
    },
  }
}
