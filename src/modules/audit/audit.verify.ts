import type { Database } from '../../infra/db.js'
import { canonicalJson, entryHash, GENESIS_HASH } from './audit.models.js'

export type AuditBreak = 'changed' | 'missing' | 'unlinked' | 'reordered'

export type AuditVerifyResult =
  | { ok: true; entries: number; writers: number; heads: { writerId: string; writerSeq: number; hash: string }[] }
  | {
    ok: false
    writerId: string
    /** The sequence number where the chain breaks (for a deleted row, the missing number). */
    writerSeq: number
    /** The row found at that position (for a deleted row, the first row after the gap). */
    id: number
    /**
     * changed: the row's fields no longer give its hash · missing: a sequence number is absent ·
     * unlinked: prev_hash is not the previous row's hash · reordered: rows exchanged positions.
     */
    reason: AuditBreak
    detail: string
    /** Entries checked before the break. */
    entries: number
  }

export interface AuditVerifyOptions {
  /** Rows per query. */
  pageSize?: number
  /** Check only this writer's chain. */
  writerId?: string
}

interface Row {
  id: string
  writer_seq: string
  at_us: string
  principal_id: string
  action: string
  operation_id: string
  request_id: string
  subject_hash: string | null
  scenario: string | null
  receipt_id: string | null
  result: string
  prev_hash: string
  hash: string
}

// Exact microseconds since the epoch: a timestamp edited below the millisecond must not pass.
// Ordered by the column, not by its text alias of the same name.
const PAGE_SQL = `SELECT id::text AS id, writer_seq::text AS writer_seq, (extract(epoch FROM at) * 1000000)::bigint::text AS at_us,
  principal_id, action, operation_id, request_id, subject_hash, scenario, receipt_id::text AS receipt_id, result::text AS result, prev_hash, hash
FROM audit_entries e WHERE e.writer_id = $1 AND e.writer_seq > $2 ORDER BY e.writer_seq LIMIT $3`

/** The ISO form the writer hashed; a sub-millisecond part (the writer never writes one) is kept so it cannot match. */
function isoAt(atUs: string): string {
  const us = BigInt(atUs)
  const rem = us % 1000n
  const iso = new Date(Number((us - rem) / 1000n)).toISOString()
  return rem === 0n ? iso : `${iso}+${rem}us`
}

function rowHash(writerId: string, r: Row): string {
  let resultJson: string
  try { resultJson = canonicalJson(JSON.parse(r.result)) } catch { resultJson = r.result }
  return entryHash(r.prev_hash, {
    writerId, writerSeq: Number(r.writer_seq), at: isoAt(r.at_us), principalId: r.principal_id, action: r.action, operationId: r.operation_id,
    requestId: r.request_id, subjectHash: r.subject_hash, scenario: r.scenario, receiptId: r.receipt_id, resultJson,
  })
}

/**
 * Walks every writer's chain in writer_seq order, a page at a time, and reports the first broken
 * link: a row whose fields were edited, a deleted row (a gap in writer_seq), a row whose prev_hash
 * does not name its predecessor, or rows that traded places. What a chain alone cannot show: rows
 * cut from the end of a chain, or a chain rewritten whole with fresh hashes; keeping the reported
 * `heads` somewhere else and comparing them later covers both.
 */
export async function verifyAuditChain(database: Database, opts: AuditVerifyOptions = {}): Promise<AuditVerifyResult> {
  const pageSize = opts.pageSize ?? 5000
  const writers = opts.writerId !== undefined
    ? [opts.writerId]
    : (await database.query<{ writer_id: string }>('SELECT DISTINCT writer_id FROM audit_entries ORDER BY writer_id')).map((r) => r.writer_id)
  let entries = 0
  const heads: { writerId: string; writerSeq: number; hash: string }[] = []

  for (const writerId of writers) {
    let buffer: Row[] = []
    let fetchedTo = 0
    let exhausted = false
    // Keep at least two rows buffered: a row is judged with its successor in view (reordering).
    const fill = async () => {
      while (!exhausted && buffer.length < 2) {
        const page = await database.query<Row>(PAGE_SQL, [writerId, fetchedTo, pageSize])
        if (page.length < pageSize) exhausted = true
        if (page.length > 0) fetchedTo = Number(page[page.length - 1]!.writer_seq)
        buffer = buffer.concat(page)
      }
    }
    let prev = { seq: 0, id: 0, hash: GENESIS_HASH }
    for (await fill(); buffer.length > 0; await fill()) {
      const row = buffer.shift()!
      const next = buffer[0]
      const expected = prev.seq + 1
      const seq = Number(row.writer_seq)
      const id = Number(row.id)
      const broken = (reason: AuditBreak, detail: string) => ({ ok: false as const, writerId, writerSeq: expected, id, reason, detail, entries })
      if (seq !== expected) return broken('missing', `writer_seq ${expected}${seq - expected > 1 ? `–${seq - 1}` : ''} is missing; the next row is writer_seq ${seq}`)
      if (id <= prev.id) return broken('reordered', `row id ${id} is not after id ${prev.id} of writer_seq ${prev.seq}`)
      const computed = rowHash(writerId, row)
      if (computed !== row.hash || row.prev_hash !== prev.hash) {
        if (next && row.prev_hash === next.hash) return broken('reordered', `this row follows writer_seq ${next.writer_seq} (its prev_hash is that row's hash)`)
        if (computed !== row.hash) return broken('changed', 'the row\'s fields do not give its stored hash')
        return broken('unlinked', `prev_hash is not the hash of writer_seq ${prev.seq}`)
      }
      prev = { seq, id, hash: row.hash }
      entries++
    }
    if (prev.seq > 0) heads.push({ writerId, writerSeq: prev.seq, hash: prev.hash })
  }
  return { ok: true, entries, writers: heads.length, heads }
}
