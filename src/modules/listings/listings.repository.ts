import { and, asc, eq, gt, inArray, isNotNull, lt, sql } from 'drizzle-orm'
import { resultRows, type Db, type Tx } from '../../infra/db.js'
import { listingEvents, listings, type ListingEventRow, type ListingRow } from './listings.table.js'

/** NOTIFY channel announcing new change-log events (payload: the highest new seq). */
export const LISTING_EVENTS_CHANNEL = 'listing_events'
/** Serializes change-log appends so that sequence order is commit order (DESIGN.md "One truth"). */
export const CHANGE_LOG_LOCK = 7_210_002

export type EventKind = ListingEventRow['kind']
export interface NewEvent { listingId: string; kind: EventKind; version: number; courtCode: string; listKind: string; listing: Record<string, unknown>; actor: string; requestId?: string | null }
export type ListingInsert = typeof listings.$inferInsert
export interface ExistingKey { id: string; courtCode: string; caseNumber: string; subjectId: string; status: ListingRow['status']; contentHash: string; version: number; graceUntil: string | null }

export function createListingsRepository(db: Db) {
  const byIds = db.select().from(listings).where(sql`${listings.id} = ANY(${sql.placeholder('ids')}::uuid[])`).prepare('listings_by_ids')
  return {
    inTransaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
      return db.transaction(fn)
    },

    /** One writer per court at a time, so "does this listing exist?" cannot race an insert of the same key. */
    async lockCourts(tx: Tx, courtCodes: string[]) {
      for (const code of [...new Set(courtCodes)].sort()) {
        await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${'listings:' + code}))`)
      }
    },

    async findExisting(tx: Tx, keys: { courtCode: string; caseNumber: string; subjectId: string }[]): Promise<ExistingKey[]> {
      if (keys.length === 0) return []
      // Only the three key fields go to the server (callers may pass whole listings).
      const keyJson = JSON.stringify(keys.map((k) => ({ courtCode: k.courtCode, caseNumber: k.caseNumber, subjectId: k.subjectId })))
      const rows = resultRows<{ id: string; court_code: string; case_number: string; subject_id: string; status: ListingRow['status']; content_hash: string; version: number; grace_until: string | null }>(await tx.execute(sql`
        SELECT l.id, l.court_code, l.case_number, l.subject_id, l.status, l.content_hash, l.version, l.grace_until::text
        FROM jsonb_to_recordset(${keyJson}::jsonb) AS k("courtCode" text, "caseNumber" text, "subjectId" text)
        JOIN listings l ON l.court_code = k."courtCode" AND l.case_number = k."caseNumber" AND l.subject_id = k."subjectId"
        FOR UPDATE OF l`))
      return rows.map((r) => ({ id: r.id, courtCode: r.court_code, caseNumber: r.case_number, subjectId: r.subject_id, status: r.status, contentHash: r.content_hash, version: r.version, graceUntil: r.grace_until }))
    },

    /** Inserts many listings in one statement (one JSON parameter, so 10 000 rows need no parameter list). */
    async insertMany(tx: Tx, rows: ListingInsert[]) {
      if (rows.length === 0) return
      await tx.execute(sql`
        INSERT INTO listings (id, list_kind, court_code, court_name, case_number, case_number_raw, subject_kind, subject_id, subject_name,
          record, match_keys, grounds, published_on, grace_until, period_ends_on, status, full_performance_on, removal_due_on,
          content_hash, version, created_by)
        SELECT id, "listKind", "courtCode", "courtName", "caseNumber", "caseNumberRaw", "subjectKind", "subjectId", "subjectName",
          record, "matchKeys", ARRAY(SELECT jsonb_array_elements_text(grounds)), "publishedOn", "graceUntil", "periodEndsOn", status,
          "fullPerformanceOn", "removalDueOn", "contentHash", version, "createdBy"
        FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(id uuid, "listKind" text, "courtCode" text, "courtName" text,
          "caseNumber" text, "caseNumberRaw" text, "subjectKind" text, "subjectId" text, "subjectName" text, record jsonb,
          "matchKeys" jsonb, grounds jsonb, "publishedOn" date, "graceUntil" date, "periodEndsOn" date, status text,
          "fullPerformanceOn" date, "removalDueOn" date, "contentHash" text, version int, "createdBy" text)`)
    },

    /** Replaces the content of many listings (same key, new content), one statement. */
    async updateMany(tx: Tx, rows: ListingInsert[]) {
      if (rows.length === 0) return
      await tx.execute(sql`
        UPDATE listings l SET court_name = x."courtName", case_number_raw = x."caseNumberRaw", subject_name = x."subjectName",
          record = x.record, match_keys = x."matchKeys", grounds = ARRAY(SELECT jsonb_array_elements_text(x.grounds)),
          published_on = x."publishedOn", grace_until = x."graceUntil", period_ends_on = x."periodEndsOn", status = x.status,
          full_performance_on = x."fullPerformanceOn", removal_due_on = x."removalDueOn", content_hash = x."contentHash",
          version = x.version, updated_at = now()
        FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(id uuid, "courtName" text, "caseNumberRaw" text, "subjectName" text,
          record jsonb, "matchKeys" jsonb, grounds jsonb, "publishedOn" date, "graceUntil" date, "periodEndsOn" date, status text,
          "fullPerformanceOn" date, "removalDueOn" date, "contentHash" text, version int)
        WHERE l.id = x.id`)
    },

    /**
     * Appends events to the change log in this transaction. The advisory lock is held until commit,
     * so no later transaction can take a lower seq and commit after us: readers never skip.
     */
    async appendEvents(tx: Tx, events: NewEvent[]): Promise<number | undefined> {
      if (events.length === 0) return undefined
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${CHANGE_LOG_LOCK})`)
      const rows = resultRows<{ seq: string }>(await tx.execute(sql`
        INSERT INTO listing_events (listing_id, kind, version, court_code, list_kind, listing, actor, request_id)
        SELECT "listingId", kind, version, "courtCode", "listKind", listing, actor, "requestId"
        FROM jsonb_to_recordset(${JSON.stringify(events)}::jsonb) AS x("listingId" uuid, kind text, version int, "courtCode" text,
          "listKind" text, listing jsonb, actor text, "requestId" text)
        RETURNING seq`))
      const last = Math.max(...rows.map((r) => Number(r.seq)))
      await tx.execute(sql`SELECT pg_notify(${LISTING_EVENTS_CHANNEL}, ${String(last)})`)
      return last
    },

    async findById(id: string, exec: Db | Tx = db): Promise<ListingRow | undefined> {
      const rows = await exec.select().from(listings).where(eq(listings.id, id))
      return rows[0]
    },

    /** Current rows of these listings (the match path's hit details, the index sync's changed listings). */
    /** On the match path: one prepared statement whatever the number of ids (no per-call SQL building or planning). */
    async findByIds(ids: string[]): Promise<ListingRow[]> {
      if (ids.length === 0) return []
      return byIds.execute({ ids })
    },

    async lockById(tx: Tx, id: string): Promise<ListingRow | undefined> {
      const rows = await tx.select().from(listings).where(eq(listings.id, id)).for('update')
      return rows[0]
    },

    async markRemoved(tx: Tx, id: string, removal: { reason: string; note: string | null; by: string; version: number }) {
      await tx.update(listings).set({
        status: 'removed', removalReason: removal.reason, removalNote: removal.note, removedBy: removal.by,
        removedAt: new Date(), version: removal.version, updatedAt: new Date(),
      }).where(eq(listings.id, id))
    },

    async markPublished(tx: Tx, id: string, version: number) {
      await tx.update(listings).set({ status: 'published', version, updatedAt: new Date() }).where(eq(listings.id, id))
    },

    /** Listings whose period has ended (period_ends_on is exclusive) or whose grace period is over. */
    async lockDue(tx: Tx, today: string, limit: number): Promise<{ expiring: ListingRow[]; publishing: ListingRow[] }> {
      const expiring = await tx.select().from(listings)
        .where(and(eq(listings.status, 'published'), isNotNull(listings.periodEndsOn), sql`${listings.periodEndsOn} <= ${today}::date`))
        .orderBy(asc(listings.periodEndsOn)).limit(limit).for('update', { skipLocked: true })
      const publishing = await tx.select().from(listings)
        .where(and(eq(listings.status, 'pending'), sql`${listings.graceUntil} <= ${today}::date`))
        .orderBy(asc(listings.graceUntil)).limit(limit).for('update', { skipLocked: true })
      return { expiring, publishing }
    },

    /** Try to become the one process running the scheduler for this transaction. */
    async tryLock(tx: Tx, key: number): Promise<boolean> {
      const [row] = resultRows<{ locked: boolean }>(await tx.execute(sql`SELECT pg_try_advisory_xact_lock(${key}) AS locked`))
      return row?.locked === true
    },

    /** Published listings with full performance recorded and the removal deadline passed (未及时屏蔽). */
    async overdueRemovals(today: string, courtCodes: string[] | null): Promise<ListingRow[]> {
      const conditions = [eq(listings.status, 'published'), isNotNull(listings.removalDueOn), lt(listings.removalDueOn, today)]
      if (courtCodes) conditions.push(inArray(listings.courtCode, courtCodes))
      return db.select().from(listings).where(and(...conditions)).orderBy(asc(listings.removalDueOn), asc(listings.id)).limit(1000)
    },

    async changesAfter(after: number, limit: number, listKinds: string[] | null, kinds?: ListingEventRow['kind'][]): Promise<ListingEventRow[]> {
      const conditions = [gt(listingEvents.seq, after)]
      if (listKinds) conditions.push(inArray(listingEvents.listKind, listKinds))
      if (kinds) conditions.push(inArray(listingEvents.kind, kinds))
      return db.select().from(listingEvents).where(and(...conditions)).orderBy(asc(listingEvents.seq)).limit(limit)
    },
  }
}

export type ListingsRepository = ReturnType<typeof createListingsRepository>
