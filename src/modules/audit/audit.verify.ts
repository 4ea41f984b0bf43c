import type { Database } from '../../infra/db.js'
import { verifyCheckpoint, type CheckpointClaims } from './audit.checkpoints.js'
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
 * cut from the end of a chain, or a chain rewritten whole with fresh hashes; the signed checkpoints
 * cover both (verifyAuditTrail below, which `npm run audit:verify` runs).
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

/** What `verifyAuditTrail` can find wrong. */
export type AuditProblemKind =
  | AuditBreak
  /** The chain ends before a signed checkpoint's writer_seq: its last entries were deleted. */
  | 'truncated'
  /** The entry at a checkpoint's writer_seq has another hash (the chain was recomputed, or that row is gone). */
  | 'checkpoint_mismatch'
  /** A checkpoint row's columns disagree with what its JWS signs. */
  | 'checkpoint_altered'
  | 'checkpoint_bad_signature'
  | 'checkpoint_unknown_key'
  | 'checkpoint_malformed'

export interface AuditProblem {
  kind: AuditProblemKind
  writerId?: string
  writerSeq?: number
  /** audit_entries.id of the row concerned, where there is one. */
  entryId?: number
  /** audit_checkpoints.id, or `file:LINE` for a checkpoint given from outside the database. */
  checkpoint?: number | string
  kid?: string
  detail: string
}

export interface AuditTrailReport {
  ok: boolean
  /** Entries in the intact part of every chain. */
  entries: number
  writers: number
  checkpoints: { total: number; valid: number }
  /** Per writer: its last entry and the latest checkpoint that verified (entries after it are vouched for by the chain alone). */
  heads: { writerId: string; writerSeq: number; hash: string; checkpointSeq: number | null; checkpointAt: string | null }[]
  problems: AuditProblem[]
}

export interface AuditTrailOptions extends AuditVerifyOptions {
  /** The gateway's public keys (its JWKS, plus any retired keys kept after a rotation). */
  jwks: { keys: Record<string, unknown>[] }
  /** Checkpoint JWSs kept outside the database (shipped logs), checked like the stored ones. */
  externalCheckpoints?: { source: string; jws: string }[]
}

interface CheckpointRow {
  id: string; writer_id: string; writer_seq: string; hash: string; at_ms: string; kid: string; jws: string
  /** The entry at the row's (writer_id, writer_seq), joined in the same read. */
  entry_id: string | null; entry_hash: string | null
}

/**
 * The whole audit trail: every writer's chain (the first break of each, not only the first
 * overall), then every signed checkpoint — its signature against the JWKS by kid, its row against
 * its payload, the chain's hash at its writer_seq — and that no chain ends before its latest
 * checkpoint. Every problem is listed; `ok` only when there is none.
 */
export async function verifyAuditTrail(database: Database, opts: AuditTrailOptions): Promise<AuditTrailReport> {
  const only = opts.writerId
  const problems: AuditProblem[] = []
  // Each writer's last row as stored (whether or not its chain holds).
  const entryWriters = (await database.query<{ writer_id: string; last: string; hash: string }>(
    'SELECT DISTINCT ON (writer_id) writer_id, writer_seq::text AS last, hash FROM audit_entries ORDER BY writer_id, writer_seq DESC'))
    .filter((r) => only === undefined || r.writer_id === only)
  const lastSeq = new Map(entryWriters.map((r) => [r.writer_id, Number(r.last)]))

  let entries = 0
  for (const { writer_id: writerId } of entryWriters) {
    const chain = await verifyAuditChain(database, { writerId, pageSize: opts.pageSize })
    entries += chain.entries
    if (!chain.ok) {
      problems.push({ kind: chain.reason, writerId, writerSeq: chain.writerSeq, entryId: chain.id, detail: chain.detail })
    }
  }

  // Checkpoints: the stored ones in id order, then any from outside.
  const stored = (await database.query<CheckpointRow>(
    `SELECT c.id::text AS id, c.writer_id, c.writer_seq::text AS writer_seq, c.hash, (extract(epoch FROM c.at) * 1000)::bigint::text AS at_ms, c.kid, c.jws,
       e.id::text AS entry_id, e.hash AS entry_hash
     FROM audit_checkpoints c LEFT JOIN audit_entries e ON e.writer_id = c.writer_id AND e.writer_seq = c.writer_seq ORDER BY c.id`))
  const candidates: { ref: number | string; jws: string; row?: CheckpointRow }[] = [
    ...stored.map((row) => ({ ref: Number(row.id), jws: row.jws, row })),
    ...(opts.externalCheckpoints ?? []).map((c) => ({ ref: c.source, jws: c.jws })),
  ]
  let total = 0
  let valid = 0
  const latest = new Map<string, { seq: number; at: string; ref: number | string }>()
  const vouched: { ref: number | string; kid: string; claims: CheckpointClaims; row?: CheckpointRow }[] = []
  for (const c of candidates) {
    const check = verifyCheckpoint(c.jws, opts.jwks)
    const writerId = check.ok ? check.claims.writerId : c.row?.writer_id
    if (only !== undefined && writerId !== only) continue
    total++
    if (!check.ok) {
      problems.push({ kind: `checkpoint_${check.fault}`, checkpoint: c.ref, writerId, writerSeq: c.row ? Number(c.row.writer_seq) : undefined, kid: check.kid ?? c.row?.kid, detail: check.detail })
      continue
    }
    valid++
    const { claims } = check
    const altered = c.row !== undefined && (c.row.writer_id !== claims.writerId || Number(c.row.writer_seq) !== claims.writerSeq || c.row.hash !== claims.hash
      || Number(c.row.at_ms) !== Date.parse(claims.at) || c.row.kid !== check.kid)
    if (altered) {
      problems.push({ kind: 'checkpoint_altered', checkpoint: c.ref, writerId: claims.writerId, writerSeq: claims.writerSeq, kid: check.kid, detail: 'the row\'s columns differ from its signed payload (the payload is what counts)' })
    }
    // The joined entry answers for a row whose columns are its payload; others are looked up by the payload.
    vouched.push({ ref: c.ref, kid: check.kid, claims, row: altered ? undefined : c.row })
    const prev = latest.get(claims.writerId)
    if (!prev || claims.writerSeq > prev.seq) latest.set(claims.writerId, { seq: claims.writerSeq, at: claims.at, ref: c.ref })
  }

  // Each signed head against the chain as it is now.
  for (const [writerId, cp] of [...latest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const last = lastSeq.get(writerId) ?? 0
    if (cp.seq > last) {
      problems.push({
        kind: 'truncated', writerId, writerSeq: last + 1, checkpoint: cp.ref,
        detail: `the chain ends at writer_seq ${last} but checkpoint ${cp.ref} (signed ${cp.at}) vouches for writer_seq ${cp.seq}: entries ${last + 1}${cp.seq > last + 1 ? `–${cp.seq}` : ''} were deleted`,
      })
    }
  }
  for (const { ref, kid, claims, row: joined } of vouched) {
    if (claims.writerSeq > (lastSeq.get(claims.writerId) ?? 0)) continue // reported once per writer as truncated
    const [row] = joined
      ? (joined.entry_id === null ? [] : [{ id: joined.entry_id, hash: joined.entry_hash! }])
      : await database.query<{ id: string; hash: string }>(
        'SELECT id::text AS id, hash FROM audit_entries WHERE writer_id = $1 AND writer_seq = $2', [claims.writerId, claims.writerSeq])
    if (!row) {
      problems.push({ kind: 'checkpoint_mismatch', checkpoint: ref, kid, writerId: claims.writerId, writerSeq: claims.writerSeq, detail: `checkpoint ${ref} vouches for writer_seq ${claims.writerSeq}, which is gone` })
    } else if (row.hash !== claims.hash) {
      problems.push({
        kind: 'checkpoint_mismatch', checkpoint: ref, kid, writerId: claims.writerId, writerSeq: claims.writerSeq, entryId: Number(row.id),
        detail: `checkpoint ${ref} signed hash ${claims.hash.slice(0, 12)}… at writer_seq ${claims.writerSeq}; the chain now has ${row.hash.slice(0, 12)}… (rows before it were changed and the chain recomputed)`,
      })
    }
  }

  const heads = entryWriters.map(({ writer_id: writerId, last, hash }) => {
    const cp = latest.get(writerId)
    return { writerId, writerSeq: Number(last), hash, checkpointSeq: cp?.seq ?? null, checkpointAt: cp?.at ?? null }
  })
  return { ok: problems.length === 0, entries, writers: new Set([...lastSeq.keys(), ...latest.keys()]).size, checkpoints: { total, valid }, heads, problems }
}

/** The report as `npm run audit:verify` prints it. */
export function formatAuditReport(r: AuditTrailReport): string {
  const lines = [`audit trail: ${r.entries} intact entries from ${r.writers} writer(s); ${r.checkpoints.total} checkpoint(s), ${r.checkpoints.valid} with a valid signature`]
  for (const h of r.heads) {
    const cp = h.checkpointSeq === null ? 'no checkpoint' : `checkpointed at seq ${h.checkpointSeq} (${h.checkpointAt})`
    lines.push(`  ${h.writerId}  seq ${h.writerSeq}  ${h.hash}  ${cp}`)
  }
  if (r.ok) {
    lines.push('OK: every chain is intact and every checkpoint verifies')
  } else {
    lines.push(`BROKEN: ${r.problems.length} problem(s)`)
    for (const p of r.problems) {
      const where = [p.writerId !== undefined && `writer ${p.writerId}`, p.writerSeq !== undefined && `writer_seq ${p.writerSeq}`,
        p.entryId !== undefined && `entry id ${p.entryId}`, p.checkpoint !== undefined && `checkpoint ${p.checkpoint}`, p.kid !== undefined && `kid ${p.kid}`].filter(Boolean).join(', ')
      lines.push(`  [${p.kind}] ${where}: ${p.detail}`)
    }
  }
  return lines.join('\n')
}
