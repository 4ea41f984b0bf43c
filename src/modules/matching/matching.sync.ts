import { sql } from 'drizzle-orm'
import { resultRows, type Database } from '../../infra/db.js'
import type { MatchKey } from '../listings/listings.models.js'
import { createListingsRepository, LISTING_EVENTS_CHANNEL } from '../listings/listings.repository.js'
import type { MatchIndex } from './matching.index.js'

const PAGE = 10_000
/** Polling fallback when a NOTIFY is lost; a removal must stop matching everywhere within 1 s. */
const POLL_MS = 500

interface Row { id: string; list_kind: 'dishonest' | 'restricted'; version: number; status: string; match_keys: MatchKey[] }

/**
 * Keeps a MatchIndex equal to the published listings: built at boot by paging through PostgreSQL
 * in id order, then kept current from the change log (NOTIFY wake-ups, polling as fallback). Events
 * only say which listings changed; their current row is read and applied, so re-applying is harmless
 * and a lost connection resumes from the last applied sequence.
 */
export function createIndexSync(database: Database, index: MatchIndex, log: { warn(obj: unknown, msg?: string): void; info(obj: unknown, msg?: string): void }) {
  const { db } = database
  const listingsRepo = createListingsRepository(db)
  let appliedSeq = 0
  /** Change-log events applied since start (the build's page scan is not counted): the heartbeat's throughput. */
  let eventsApplied = 0
  let ready = false
  let timer: NodeJS.Timeout | undefined
  let unlisten: (() => Promise<void>) | undefined
  let catching: Promise<void> | undefined
  let again = false
  let stopped = false

  function apply(rows: Row[]) {
    for (const r of rows) {
      if (r.status === 'published') index.upsert({ id: r.id, listKind: r.list_kind, version: r.version, keys: r.match_keys })
      else index.remove(r.id, r.version)
    }
  }

  async function build() {
    const started = Date.now()
    // Events after this horizon are applied after the scan: nothing that changes during it is lost.
    const [h] = resultRows<{ seq: string | null }>(await db.execute(sql`SELECT max(seq) AS seq FROM listing_events`))
    appliedSeq = Number(h?.seq ?? 0)
    let last = '00000000-0000-0000-0000-000000000000'
    for (;;) {
      const rows = resultRows<Row>(await db.execute(sql`
        SELECT id, list_kind, version, status, match_keys FROM listings
        WHERE status = 'published' AND id > ${last}::uuid ORDER BY id LIMIT ${PAGE}`))
      apply(rows)
      if (rows.length < PAGE) break
      last = rows[rows.length - 1]!.id
    }
    await catchUp()
    ready = true
    log.info({ listings: index.size, seq: appliedSeq, ms: Date.now() - started }, 'match index built')
  }

  async function catchUpOnce() {
    for (;;) {
      const events = resultRows<{ seq: string; listing_id: string }>(await db.execute(sql`
        SELECT seq, listing_id FROM listing_events WHERE seq > ${appliedSeq} ORDER BY seq LIMIT ${PAGE}`))
      if (events.length === 0) return
      const ids = [...new Set(events.map((e) => e.listing_id))]
      apply((await listingsRepo.findByIds(ids)).map((r) => ({ id: r.id, list_kind: r.listKind, version: r.version, status: r.status, match_keys: r.matchKeys as MatchKey[] })))
      appliedSeq = Number(events[events.length - 1]!.seq)
      eventsApplied += events.length
    }
  }

  /** Applies every event after the last applied one; concurrent calls share one run (and ask for another). */
  function catchUp(): Promise<void> {
    if (catching) { again = true; return catching }
    catching = (async () => {
      try {
        do { again = false; await catchUpOnce() } while (again)
      } finally {
        catching = undefined
      }
    })()
    return catching
  }

  const poll = () => {
    if (stopped) return
    catchUp().catch((err: unknown) => log.warn({ err }, 'match index catch-up failed; retrying')).finally(() => {
      if (!stopped) { timer = setTimeout(poll, POLL_MS); timer.unref() }
    })
  }

  return {
    get ready() { return ready },
    /** The last change-log sequence applied to the index. */
    get appliedSeq() { return appliedSeq },
    get eventsApplied() { return eventsApplied },
    catchUp,
    async start() {
      // Wake-ups before the build finishes are covered by the build's own catch-up.
      const wake = () => { if (ready) void catchUp().catch(() => {}) }
      unlisten = await database.listen(LISTING_EVENTS_CHANNEL, wake, wake)
      // A database that is down (or not migrated) at boot must not stop the process: /readyz says
      // "building" and the build is retried.
      const attempt = () => build().then(() => {
        if (!stopped) { timer = setTimeout(poll, POLL_MS); timer.unref() }
      }, (err: unknown) => {
        log.warn({ err }, 'match index build failed; retrying')
        if (!stopped) { timer = setTimeout(() => void attempt(), 1000); timer.unref() }
      })
      await attempt()
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      await unlisten?.()
      await catching?.catch(() => {})
    },
  }
}

export type IndexSync = ReturnType<typeof createIndexSync>
