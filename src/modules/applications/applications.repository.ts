import { and, asc, eq, inArray, or, sql } from 'drizzle-orm'
import type { Db, Tx } from '../../infra/db.js'
import { principals } from '../principals/principals.table.js'
import { PENDING_STATUSES } from './applications.models.js'
import {
  applicationAttachments, applicationEvents, applications, certificates,
  type ApplicationEventRow, type ApplicationRow, type CertificateRow,
} from './applications.table.js'

export type NewApplication = typeof applications.$inferInsert
export type NewAttachment = typeof applicationAttachments.$inferInsert

/** The applications tables: an application, its event history, attachments and certificate. */
export function createApplicationsRepository(db: Db) {
  return {
    inTransaction: <T>(fn: (tx: Tx) => Promise<T>) => db.transaction(fn),

    async insert(tx: Tx, row: NewApplication, attachments: NewAttachment[], event: { at: Date; actor: string; note: string | null; requestId: string | null }) {
      await tx.insert(applications).values(row)
      if (attachments.length > 0) await tx.insert(applicationAttachments).values(attachments)
      await tx.insert(applicationEvents).values({ applicationId: row.id, at: event.at, status: row.status!, actor: event.actor, note: event.note, requestId: event.requestId })
    },

    async byId(id: string): Promise<ApplicationRow | undefined> {
      return (await db.select().from(applications).where(eq(applications.id, id)))[0]
    },

    /** Serializes filings on one listing (a transaction-scoped advisory lock). */
    async lockListing(tx: Tx, listingId: string) {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`applications:${listingId}`}))`)
    },

    async hasPending(tx: Tx, listingId: string, kind: 'appeal' | 'repair'): Promise<boolean> {
      const rows = await tx.select({ id: applications.id }).from(applications)
        .where(and(eq(applications.listingId, listingId), eq(applications.kind, kind), inArray(applications.status, [...PENDING_STATUSES]))).limit(1)
      return rows.length > 0
    },

    async byTrackingHash(hash: string, kind: 'appeal' | 'repair'): Promise<ApplicationRow | undefined> {
      return (await db.select().from(applications).where(and(eq(applications.trackingHash, hash), eq(applications.kind, kind))))[0]
    },

    async lockById(tx: Tx, id: string): Promise<ApplicationRow | undefined> {
      return (await tx.select().from(applications).where(eq(applications.id, id)).for('update'))[0]
    },

    async lockByTrackingHash(tx: Tx, hash: string, kind: 'appeal' | 'repair'): Promise<ApplicationRow | undefined> {
      return (await tx.select().from(applications).where(and(eq(applications.trackingHash, hash), eq(applications.kind, kind))).for('update'))[0]
    },

    async update(tx: Tx, id: string, patch: Partial<NewApplication>, event: { at: Date; actor: string; note: string | null; requestId: string | null }) {
      const [row] = await tx.update(applications).set({ ...patch, updatedAt: event.at }).where(eq(applications.id, id)).returning()
      await tx.insert(applicationEvents).values({ applicationId: id, at: event.at, status: row!.status, actor: event.actor, note: event.note, requestId: event.requestId })
      return row!
    },

    async events(id: string): Promise<ApplicationEventRow[]> {
      return db.select().from(applicationEvents).where(eq(applicationEvents.applicationId, id)).orderBy(asc(applicationEvents.seq))
    },

    async attachmentsOf(id: string) {
      return db.select({ id: applicationAttachments.id, fileName: applicationAttachments.fileName, mediaType: applicationAttachments.mediaType, size: applicationAttachments.size, sha256: applicationAttachments.sha256 })
        .from(applicationAttachments).where(eq(applicationAttachments.applicationId, id)).orderBy(asc(applicationAttachments.fileName))
    },

    /**
     * A court's queue, oldest deadline first: first-instance reviews of its listings (`courtCodes`)
     * and reconsiderations it hears as the higher court.
     */
    async queue(kind: 'appeal' | 'repair', courtCodes: string[], ownCourtCode: string | null, limit: number): Promise<ApplicationRow[]> {
      const review = and(eq(applications.status, 'under_review'), inArray(applications.courtCode, courtCodes.length > 0 ? courtCodes : ['\u0000']))
      const reconsider = ownCourtCode ? and(eq(applications.status, 'reconsideration'), eq(applications.higherCourtCode, ownCourtCode)) : undefined
      return db.select().from(applications)
        .where(and(eq(applications.kind, kind), reconsider ? or(review, reconsider) : review))
        .orderBy(sql`coalesce(${applications.reconsiderationDueOn}, ${applications.reviewDueOn})`, asc(applications.createdAt))
        .limit(limit)
    },

    /** Listings (of these ids) with a pending application: they carry appealPending. */
    async pendingListingIds(listingIds: string[]): Promise<Set<string>> {
      if (listingIds.length === 0) return new Set()
      const rows = await db.selectDistinct({ id: applications.listingId }).from(applications)
        .where(and(inArray(applications.listingId, listingIds), inArray(applications.status, [...PENDING_STATUSES])))
      return new Set(rows.map((r) => r.id))
    },

    /** Open items past their deadline, per court (supervision). */
    async overdueCount(today: string): Promise<{ courtCode: string; kind: string; overdue: number; open: number }[]> {
      const rows = await db.select({
        courtCode: sql<string>`coalesce(${applications.higherCourtCode}, ${applications.courtCode})`.as('court'),
        kind: applications.kind,
        open: sql<number>`count(*)::int`,
        overdue: sql<number>`(count(*) FILTER (WHERE coalesce(${applications.reconsiderationDueOn}, ${applications.reviewDueOn}) < ${today}::date))::int`,
      }).from(applications).where(inArray(applications.status, [...PENDING_STATUSES])).groupBy(sql`1`, applications.kind)
      return rows
    },

    /** The oldest-due open items past their deadline (supervision): no applicant details, only what a court must act on. */
    async overdueItems(today: string, limit: number): Promise<{ id: string; kind: string; courtCode: string; status: string; receivedOn: string; dueOn: string; listingId: string }[]> {
      const dueOn = sql<string>`coalesce(${applications.reconsiderationDueOn}, ${applications.reviewDueOn})`
      return db.select({
        id: applications.id, kind: applications.kind, courtCode: sql<string>`coalesce(${applications.higherCourtCode}, ${applications.courtCode})`,
        status: applications.status, receivedOn: applications.receivedOn, dueOn: sql<string>`${dueOn}::text`, listingId: applications.listingId,
      }).from(applications)
        .where(and(inArray(applications.status, [...PENDING_STATUSES]), sql`${dueOn} < ${today}::date`))
        .orderBy(dueOn, applications.receivedOn).limit(limit)
    },

    /** The court that hears reconsiderations of `courtCode`'s decisions: a court principal naming it a subordinate. */
    async higherCourtOf(courtCode: string): Promise<string | undefined> {
      const [row] = await db.select({ courtCode: principals.courtCode }).from(principals)
        .where(and(eq(principals.kind, 'court'), sql`${principals.profile}->'subordinateCourtCodes' ? ${courtCode}`)).orderBy(asc(principals.id)).limit(1)
      return row?.courtCode ?? undefined
    },

    async insertCertificate(tx: Tx, row: CertificateRow) {
      await tx.insert(certificates).values(row)
    },

    async certificate(id: string): Promise<CertificateRow | undefined> {
      return (await db.select().from(certificates).where(eq(certificates.id, id)))[0]
    },

    async certificateOf(applicationId: string): Promise<CertificateRow | undefined> {
      return (await db.select().from(certificates).where(eq(certificates.applicationId, applicationId)))[0]
    },
  }
}

export type ApplicationsRepository = ReturnType<typeof createApplicationsRepository>
