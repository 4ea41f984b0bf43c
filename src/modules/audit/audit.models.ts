/**
 * The audit chain, pure: canonical JSON, the hashed form of an entry and input checks. The writer
 * (audit.writer.ts) and the verifier (audit.verify.ts) both hash through `entryHash`, so what one
 * writes the other recomputes byte for byte.
 */
import { createHash, randomUUID } from 'node:crypto'

/** prev_hash of a writer's first entry (writer_seq 1). */
export const GENESIS_HASH = '0'.repeat(64)

/** What a caller records; the writer adds writer_id, writer_seq, at, prev_hash and hash. */
export interface AuditEntryInput {
  principalId: string
  /** What happened: 'match', 'listing.read', 'review.decision', 'auth.refused' ... */
  action: string
  /** The route's operation id (`match.single`). */
  operationId: string
  requestId: string
  /** The keyed hash of the subject (`app.identifierHash`), never the identifier itself. */
  subjectHash?: string | null
  scenario?: string | null
  /** A match receipt (uuid); unique across the table. */
  receiptId?: string | null
  /** The outcome as the caller saw it (decision, matched listing ids ...): plain JSON. */
  result: Record<string, unknown>
}

/** Every hashed field of a row, `at` as an ISO string (milliseconds) and `result` already canonical. */
export interface ChainedFields {
  writerId: string
  writerSeq: number
  at: string
  principalId: string
  action: string
  operationId: string
  requestId: string
  subjectHash: string | null
  scenario: string | null
  receiptId: string | null
  resultJson: string
}

const CANONICAL = Symbol('canonical JSON text')
interface CanonicalText { readonly [CANONICAL]: string; toJSON(): unknown }

/**
 * JSON text the caller vouches is already canonical: made by JSON.stringify from objects whose
 * keys it inserted in sorted order at every depth, holding only strings, booleans, finite numbers
 * and null. {@link canonicalJson} copies it instead of walking it, which for a 10 000-subject batch
 * saves most of the entry's encoding time; the verifier re-canonicalizes the stored row, so a
 * fragment that was not canonical shows up as a broken link, never as a silent difference.
 */
export function canonicalText(json: string): CanonicalText {
  return { [CANONICAL]: json, toJSON: () => JSON.parse(json) as unknown }
}

/**
 * JSON with object keys sorted (UTF-16 code-unit order) at every depth and no whitespace, with
 * JSON.stringify's rules otherwise (toJSON honoured, undefined members dropped). A jsonb column
 * reorders keys and reformats numbers; parsing its text and canonicalising again gives this string
 * back, which is what lets the verifier recompute a hash from the stored row.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'string': case 'boolean': return JSON.stringify(value)
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number')
      return JSON.stringify(value)
    case 'object': {
      if (CANONICAL in value) return (value as CanonicalText)[CANONICAL]
      const withJson = value as { toJSON?: () => unknown }
      if (typeof withJson.toJSON === 'function') return canonicalJson(withJson.toJSON())
      if (Array.isArray(value)) {
        return `[${value.map((v) => (v === undefined || typeof v === 'function' || typeof v === 'symbol' ? 'null' : canonicalJson(v))).join(',')}]`
      }
      const obj = value as Record<string, unknown>
      const parts: string[] = []
      const keys = Object.keys(obj)
      // Objects built with their keys in order (the match items) skip the sort.
      for (let i = 1; i < keys.length; i++) if (keys[i - 1]! > keys[i]!) { keys.sort(); break }
      for (const key of keys) {
        const v = obj[key]
        if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue
        parts.push(`${JSON.stringify(key)}:${canonicalJson(v)}`)
      }
      return `{${parts.join(',')}}`
    }
    default:
      throw new TypeError(`canonicalJson: cannot encode a ${typeof value}`)
  }
}

const s = (v: string | null) => (v === null ? 'null' : JSON.stringify(v))

/**
 * The canonical JSON of a row's hashed fields: column names as keys, in sorted order. writer_id
 * and writer_seq sort last, so the writer encodes everything else once per entry when it is
 * appended ({@link prepareEntry}) and adds only this tail when the batch is sent.
 */
export function canonicalEntry(f: ChainedFields): string {
  return `{"action":${s(f.action)},"at":${s(f.at)},"operation_id":${s(f.operationId)},"principal_id":${s(f.principalId)}`
    + `,"receipt_id":${s(f.receiptId)},"request_id":${s(f.requestId)},"result":${f.resultJson},"scenario":${s(f.scenario)}`
    + `,"subject_hash":${s(f.subjectHash)}${canonicalEntryTail(JSON.stringify(f.writerId), f.writerSeq)}`
}

/** The end of {@link canonicalEntry}, from the JSON-encoded writer id. */
export function canonicalEntryTail(writerIdJson: string, writerSeq: number): string {
  return `,"writer_id":${writerIdJson},"writer_seq":${writerSeq}}`
}

/** hash = sha256hex(prev_hash + '\n' + canonical JSON of the entry). */
export function entryHash(prevHash: string, f: ChainedFields): string {
  return chainHash(prevHash, canonicalEntry(f))
}

export function chainHash(prevHash: string, canonical: string): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonical).digest('hex')
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
/**
 * A JSON escape PostgreSQL cannot store (NUL in text or jsonb) or would not give back unchanged (a
 * lone surrogate): JSON.stringify writes both as \uXXXX, and an even run of backslashes before it
 * means the backslash itself is not escaped.
 */
const UNSTORABLE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i

export class InvalidAuditEntryError extends Error {
  override name = 'InvalidAuditEntryError'
}

/** An entry checked and encoded once, when appended; the writer adds the chain fields. */
export interface PreparedEntry {
  /**
   * {@link canonicalEntry} without its tail. With the tail it is also the row sent to
   * jsonb_to_recordset (the keys are the column names), so what is stored is what was hashed.
   */
  head: string
}

/**
 * Checks and encodes one entry before it joins a batch, so that a bad entry is refused to its own
 * caller instead of failing the multi-row INSERT for every request sharing the batch, and so that
 * the flush (one at a time, on the critical path) only hashes and concatenates.
 */
export function prepareEntry(input: AuditEntryInput, at: string): PreparedEntry {
  const text = (name: string, v: unknown, nullable: boolean): string => {
    if ((v === null || v === undefined) && nullable) return 'null'
    if (typeof v !== 'string' || v.length === 0 || v.length > 1000) throw new InvalidAuditEntryError(`${name} must be a string of 1-1000 characters`)
    const json = JSON.stringify(v)
    if (UNSTORABLE.test(json)) throw new InvalidAuditEntryError(`${name} contains NUL or a lone surrogate`)
    return json
  }
  const receiptId = text('receiptId', typeof input.receiptId === 'string' ? input.receiptId.toLowerCase() : input.receiptId, true)
  if (receiptId !== 'null' && !UUID.test(receiptId.slice(1, -1))) throw new InvalidAuditEntryError('receiptId must be a uuid')
  if (typeof input.result !== 'object' || input.result === null || Array.isArray(input.result)) throw new InvalidAuditEntryError('result must be a JSON object')
  let result: string
  try { result = canonicalJson(input.result) } catch (err) { throw new InvalidAuditEntryError(`result is not JSON: ${(err as Error).message}`) }
  if (UNSTORABLE.test(result)) throw new InvalidAuditEntryError('result contains NUL or a lone surrogate')
  const q = {
    action: text('action', input.action, false), at: JSON.stringify(at), operationId: text('operationId', input.operationId, false),
    principalId: text('principalId', input.principalId, false), receiptId, requestId: text('requestId', input.requestId, false),
    scenario: text('scenario', input.scenario, true), subjectHash: text('subjectHash', input.subjectHash, true),
  }
  return {
    head: `{"action":${q.action},"at":${q.at},"operation_id":${q.operationId},"principal_id":${q.principalId}`
      + `,"receipt_id":${q.receiptId},"request_id":${q.requestId},"result":${result},"scenario":${q.scenario},"subject_hash":${q.subjectHash}`,
  }
}

/**
 * A match request writes one audit entry however many subjects it carries (a batch of 10 000 is
 * one row, not 10 000), and each subject still gets a receipt of its own: the entry's receipt id is
 * a random uuid whose low {@link RECEIPT_INDEX_BITS} bits are zero, and subject i's receipt is that
 * uuid with i in those bits. A receipt thus names its entry and its item without a second table.
 */
export const RECEIPT_INDEX_BITS = 14
const INDEX_MASK = (1 << RECEIPT_INDEX_BITS) - 1

/** A fresh entry receipt id (item 0 of its entry); 108 random bits remain. */
export function newReceiptBase(): string {
  return receiptIdAt(randomUUID(), 0)
}

/** The receipt of item `index` of the entry whose receipt id is `base`. */
export function receiptIdAt(base: string, index: number): string {
  return receiptIdsOf(base)(index)
}

/** Item i's receipt for every i of one entry, with the shared part of the id computed once. */
export function receiptIdsOf(base: string): (index: number) => string {
  const prefix = base.slice(0, -4).toLowerCase()
  const high = Number.parseInt(base.slice(-4), 16) & ~INDEX_MASK & 0xffff
  return (index) => {
    if (!Number.isInteger(index) || index < 0 || index > INDEX_MASK) throw new RangeError(`receipt index ${index} out of range`)
    return prefix + (high | index).toString(16).padStart(4, '0')
  }
}

/** The entry (its receipt id) and item a receipt names. */
export function splitReceiptId(receiptId: string): { base: string; index: number } {
  const id = receiptId.toLowerCase()
  const index = Number.parseInt(id.slice(-4), 16) & INDEX_MASK
  return { base: receiptIdAt(id, 0), index }
}
