import { createHash, createHmac, randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import type { Clock } from '../../infra/clock.js'
import { createErrorFactory } from '../../infra/errors.js'
import { listingView, projectListing } from '../listings/listings.view.js'
import type { Principal } from '../principals/principals.models.js'
import type { SnapshotRepository } from './snapshot.repository.js'

export const snapshotError = createErrorFactory('snapshot')

/** A cursor older than this is refused: the partner starts a new snapshot. */
export const CURSOR_MAX_AGE_SECONDS = 24 * 3600
const FIRST_ID = '00000000-0000-0000-0000-000000000000'

interface Cursor { p: string; seq: number; after: string; t: number }

/**
 * `GET /v1/snapshot`: every active listing an agency may see, projected, as NDJSON pages in id
 * order. The first page fixes the change-log sequence (`X-Snapshot-Seq`); a partner loads every page
 * and then follows `/v1/changes?after=<seq>`. Pages read later may already hold newer versions;
 * replaying the feed from the sequence (by version) converges to the same set, so no change is
 * lost. Each page ends with a manifest line (rows, sequence, SHA-256 of the lines before it, next
 * cursor), and the response as a whole carries the gateway's X-GW-Signature.
 */
export function createSnapshotService(deps: { repo: SnapshotRepository; clock: Clock; cursorKey?: Buffer }) {
  // Cursors are MACed, not encrypted: a partner can read but not forge or swap one. Processes sharing
  // the identifier-hash secret derive the same key (app.ts), so a cursor works on any of them.
  const key = deps.cursorKey ?? randomBytes(32)
  const mac = (body: string) => createHmac('sha256', key).update(body).digest('base64url')

  function encode(c: Cursor): string {
    const body = Buffer.from(JSON.stringify(c)).toString('base64url')
    return `${body}.${mac(body)}`
  }

  function decode(text: string, agency: Principal): Cursor {
    const [body, tag] = text.split('.')
    let c: Cursor | undefined
    if (body && tag && mac(body) === tag) {
      try { c = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Cursor } catch { c = undefined }
    }
    // Another agency's cursor is as unknown as a made-up one.
    if (!c || c.p !== agency.id) throw snapshotError('bad_cursor', 400, 'the cursor is not one this gateway gave you', { field: 'querystring.cursor' })
    if (Math.floor(deps.clock.nowMs() / 1000) - c.t > CURSOR_MAX_AGE_SECONDS) throw snapshotError('cursor_expired', 410, 'the cursor is more than 24 hours old; start a new snapshot')
    return c
  }

  return {
    async page(agency: Principal, opts: { cursor?: string; limit: number; gzip: boolean }) {
      const lists = agency.profile.lists ?? []
      const from = opts.cursor ? decode(opts.cursor, agency) : undefined
      const { seq: current, rows } = lists.length === 0 ? { seq: 0, rows: [] } : await deps.repo.page({ afterId: from?.after ?? FIRST_ID, limit: opts.limit, listKinds: lists })
      const seq = from?.seq ?? current
      const lines = rows.map((r) => `${JSON.stringify(projectListing(listingView(r), agency.profile, 'agency'))}\n`).join('')
      const done = rows.length < opts.limit
      const next = done ? null : encode({ p: agency.id, seq, after: rows[rows.length - 1]!.id, t: from?.t ?? Math.floor(deps.clock.nowMs() / 1000) })
      const manifest = { manifest: { rows: rows.length, seq, sha256: createHash('sha256').update(lines).digest('hex'), next, done } }
      const text = `${lines}${JSON.stringify(manifest)}\n`
      return { seq, done, body: opts.gzip ? gzipSync(text) : Buffer.from(text) }
    },
  }
}

export type SnapshotService = ReturnType<typeof createSnapshotService>
