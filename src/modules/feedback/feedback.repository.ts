import { eq } from 'drizzle-orm'
import type { Db } from '../../infra/db.js'
import { matchFeedback, type MatchFeedbackRow } from './feedback.table.js'

export type NewFeedback = Omit<MatchFeedbackRow, 'at'>

/** The match_feedback table: one row per receipt, never updated. */
export function createFeedbackRepository(db: Db) {
  return {
    /** Inserts unless the receipt already has feedback; returns the row on record either way. */
    async insertOnce(row: NewFeedback): Promise<{ row: MatchFeedbackRow; created: boolean }> {
      const [created] = await db.insert(matchFeedback).values(row).onConflictDoNothing({ target: matchFeedback.receiptId }).returning()
      if (created) return { row: created, created: true }
      const [existing] = await db.select().from(matchFeedback).where(eq(matchFeedback.receiptId, row.receiptId))
      return { row: existing!, created: false }
    },
  }
}

export type FeedbackRepository = ReturnType<typeof createFeedbackRepository>
