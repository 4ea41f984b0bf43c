import { and, asc, eq, gt } from 'drizzle-orm'
import type { Db } from '../../infra/db.js'
import { auditEntries, type AuditEntryRow } from './audit.table.js'

export type AuditRepository = ReturnType<typeof createAuditRepository>

/** Reads of the audit trail (rows are only ever written by audit.writer.ts). */
export function createAuditRepository(db: Db) {
  return {
    /** The entry of a receipt; with `principalId`, only if that principal made it. */
    async findReceipt(receiptId: string, principalId?: string): Promise<AuditEntryRow | undefined> {
      const byReceipt = eq(auditEntries.receiptId, receiptId)
      const rows = await db.select().from(auditEntries)
        .where(principalId === undefined ? byReceipt : and(byReceipt, eq(auditEntries.principalId, principalId)))
      return rows[0]
    },

    /** Entries after an id, in id order (the order they were committed per writer). */
    async list(opts: { after: number; limit: number; principalId?: string }): Promise<AuditEntryRow[]> {
      const after = gt(auditEntries.id, opts.after)
      return db.select().from(auditEntries)
        .where(opts.principalId === undefined ? after : and(after, eq(auditEntries.principalId, opts.principalId)))
        .orderBy(asc(auditEntries.id)).limit(opts.limit)
    },
  }
}
