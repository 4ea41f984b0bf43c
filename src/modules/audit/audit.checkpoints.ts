/**
 * Signed checkpoints of the audit chains. A hash chain shows an edited, deleted or reordered row,
 * but not its own last rows cut off, nor a chain recomputed whole after an edit (whoever can write
 * the table can recompute sha256). So every `intervalSeconds`, and once more when the process
 * closes, the checkpointer signs this writer's committed head — {writerId, writerSeq, hash, at} —
 * as a compact JWS with the gateway key and stores it in audit_checkpoints (only when the head
 * moved). The verifier (audit.verify.ts) checks each against the gateway's JWKS: a DBA can delete
 * or rewrite rows, but cannot sign. Each checkpoint is also logged, so shipped logs keep copies a
 * DBA cannot reach (`npm run audit:verify -- --checkpoints FILE` checks them too).
 */
import { createPublicKey, verify, type JsonWebKey } from 'node:crypto'
import type { Clock } from '../../infra/clock.js'
import type { Database } from '../../infra/db.js'
import type { GatewayKeys } from '../../infra/gateway-keys.js'
import type { AuditWriter } from './audit.writer.js'

/** The JWS `typ`: a checkpoint, not a response signature or a certificate made with the same key. */
export const CHECKPOINT_TYP = 'gw-audit-checkpoint+jws'

export interface CheckpointClaims {
  writerId: string
  writerSeq: number
  hash: string
  /** When the checkpoint was taken (ISO, milliseconds). */
  at: string
}

export interface Checkpoint extends CheckpointClaims {
  kid: string
  jws: string
}

/** Signs a head as a compact JWS (`<header>.<payload>.<signature>`) with the gateway's active key. */
export async function signCheckpoint(keys: GatewayKeys, claims: CheckpointClaims): Promise<Checkpoint> {
  const payload = Buffer.from(JSON.stringify({ writerId: claims.writerId, writerSeq: claims.writerSeq, hash: claims.hash, at: claims.at }))
  // A detached JWS signs the same input as the compact one; put the payload back in the middle.
  const detached = await keys.signDetached(payload, { typ: CHECKPOINT_TYP })
  const [header, , signature] = detached.split('.')
  return { ...claims, kid: keys.kid, jws: `${header}.${payload.toString('base64url')}.${signature}` }
}

export type CheckpointFault = 'malformed' | 'unknown_key' | 'bad_signature'

export type CheckpointCheck =
  | { ok: true; kid: string; claims: CheckpointClaims }
  | { ok: false; kid?: string; fault: CheckpointFault; detail: string }

const HEX64 = /^[0-9a-f]{64}$/

/**
 * Verifies a checkpoint JWS against a JWKS: the key named by `kid` (any key of the set, so
 * checkpoints signed before a rotation still verify while the retired key is published or kept
 * in an archive), its algorithm, the signature, the `typ`, then the claims' shape.
 */
export function verifyCheckpoint(jws: string, jwks: { keys: Record<string, unknown>[] }): CheckpointCheck {
  const parts = jws.split('.')
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p)) || !parts[1]) return { ok: false, fault: 'malformed', detail: 'not a compact JWS' }
  let header: { alg?: unknown; kid?: unknown; typ?: unknown; crit?: unknown }
  try { header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as typeof header } catch { return { ok: false, fault: 'malformed', detail: 'the JWS header is not JSON' } }
  if (typeof header.kid !== 'string') return { ok: false, fault: 'malformed', detail: 'the JWS header names no kid' }
  const kid = header.kid
  if (header.typ !== CHECKPOINT_TYP || header.crit !== undefined) return { ok: false, kid, fault: 'malformed', detail: `the JWS typ is not ${CHECKPOINT_TYP}` }
  const jwk = jwks.keys.find((k) => k.kid === kid)
  if (!jwk) return { ok: false, kid, fault: 'unknown_key', detail: `no key ${kid} in the JWKS (a retired key must stay published or be passed with --jwks)` }
  const alg = jwk.kty === 'EC' && jwk.crv === 'P-256' ? 'ES256' : jwk.kty === 'OKP' && jwk.crv === 'Ed25519' ? 'EdDSA' : undefined
  // The algorithm comes from the key, never from the header alone.
  if (!alg || header.alg !== alg) return { ok: false, kid, fault: 'bad_signature', detail: `alg ${String(header.alg)} is not the key's` }
  let valid = false
  try {
    const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
    const input = Buffer.from(`${parts[0]}.${parts[1]}`)
    const signature = Buffer.from(parts[2]!, 'base64url')
    valid = alg === 'ES256' ? verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature) : verify(null, input, key, signature)
  } catch { valid = false }
  if (!valid) return { ok: false, kid, fault: 'bad_signature', detail: `the signature does not verify with key ${kid}` }
  let claims: Partial<CheckpointClaims>
  try { claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Partial<CheckpointClaims> } catch { return { ok: false, kid, fault: 'malformed', detail: 'the payload is not JSON' } }
  if (typeof claims.writerId !== 'string' || !Number.isSafeInteger(claims.writerSeq) || claims.writerSeq! < 1
    || typeof claims.hash !== 'string' || !HEX64.test(claims.hash) || typeof claims.at !== 'string' || Number.isNaN(Date.parse(claims.at))) {
    return { ok: false, kid, fault: 'malformed', detail: 'the payload is not {writerId, writerSeq, hash, at}' }
  }
  return { ok: true, kid, claims: { writerId: claims.writerId, writerSeq: claims.writerSeq!, hash: claims.hash, at: claims.at } }
}

const INSERT_SQL = `INSERT INTO audit_checkpoints (writer_id, writer_seq, hash, at, kid, jws) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (writer_id, writer_seq) DO NOTHING`

export interface AuditCheckpointer {
  /** Signs and stores the writer's head now if it moved since the last checkpoint; returns it, or undefined. */
  checkpoint(): Promise<Checkpoint | undefined>
  start(): void
  /** Stops the timer and takes a last checkpoint (call after the writer is closed, so it covers everything). */
  stop(): Promise<void>
}

export function createAuditCheckpointer(deps: {
  database: Database
  writer: Pick<AuditWriter, 'writerId' | 'head'>
  keys: GatewayKeys
  intervalSeconds: number
  clock: Clock
  log: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void }
}): AuditCheckpointer {
  const { database, writer, keys, intervalSeconds, clock, log } = deps
  let lastSeq: number | undefined
  let timer: NodeJS.Timeout | undefined
  let running: Promise<Checkpoint | undefined> | undefined
  let stopped = false

  async function checkpointOnce(): Promise<Checkpoint | undefined> {
    const head = writer.head
    if (!head || head.seq === lastSeq) return undefined
    const cp = await signCheckpoint(keys, { writerId: writer.writerId, writerSeq: head.seq, hash: head.hash, at: new Date(clock.nowMs()).toISOString() })
    await database.query(INSERT_SQL, [cp.writerId, cp.writerSeq, cp.hash, cp.at, cp.kid, cp.jws])
    lastSeq = head.seq
    // A copy outside the database: shipped logs survive a DBA deleting rows here.
    log.info({ auditCheckpoint: { writerId: cp.writerId, writerSeq: cp.writerSeq, jws: cp.jws } }, 'audit checkpoint')
    return cp
  }

  /** Checkpoints never overlap (a call during one waits for it, then runs). */
  function checkpoint(): Promise<Checkpoint | undefined> {
    const next = (running ?? Promise.resolve(undefined)).catch(() => undefined).then(checkpointOnce)
    const mine: Promise<Checkpoint | undefined> = next.finally(() => { if (running === mine) running = undefined })
    running = mine
    return mine
  }

  const tick = async () => {
    if (stopped) return
    try {
      await checkpoint()
    } catch (err) {
      log.warn({ err, writerId: writer.writerId }, 'audit checkpoint failed; retrying next tick')
    }
    if (!stopped) { timer = setTimeout(() => void tick(), intervalSeconds * 1000); timer.unref() }
  }

  return {
    checkpoint,
    start() {
      if (stopped || timer) return
      timer = setTimeout(() => void tick(), intervalSeconds * 1000)
      timer.unref()
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      try {
        await checkpoint()
      } catch (err) {
        log.warn({ err, writerId: writer.writerId }, 'the closing audit checkpoint failed')
      }
    },
  }
}
