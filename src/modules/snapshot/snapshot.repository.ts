import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm'
import { resultRows, type Db } from '../../infra/db.js'
import { listings, type ListingRow } from '../listings/listings.table.js'

/** Reads for snapshots: a page of active listings and the change-log sequence it is consistent with. */
export function createSnapshotRepository(db: Db) {
  return {
    /**
     * One page of published listings after `afterId` (id order) and, in the same repeatable-read
     * transaction, the last change-log sequence: appends to the log are serialized until commit
     * (listings.repository appendEvents), so the page reflects every event up to it and none after.
     */
    async page(opts: { afterId: string; limit: number; listKinds: string[] }): Promise<{ seq: number; rows: ListingRow[] }> {
      return db.transaction(async (tx) => {
        const [h] = resultRows<{ seq: string | null }>(await tx.execute(sql`SELECT max(seq) AS seq FROM listing_events`))
        const rows = await tx.select().from(listings)
          .where(and(eq(listings.status, 'published'), gt(listings.id, opts.afterId), inArray(listings.listKind, opts.listKinds as ('dishonest' | 'restricted')[])))
          .orderBy(asc(listings.id)).limit(opts.limit)
        return { seq: Number(h?.seq ?? 0), rows }
      }, { isolationLevel: 'repeatable read' })
    },
  }
}

export type SnapshotRepository = ReturnType<typeof createSnapshotRepository>
