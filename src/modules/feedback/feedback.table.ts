import { bigint, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'

// Mirrors migrations/0005_rules_feedback.sql (the SQL is the source of truth for the database).
export const matchFeedback = pgTable('match_feedback', {
  receiptId: uuid('receipt_id').primaryKey(),
  principalId: text('principal_id').notNull(),
  entryId: bigint('entry_id', { mode: 'number' }).notNull(),
  matchedAt: timestamp('matched_at', { withTimezone: true }).notNull(),
  action: text('action', { enum: ['restricted', 'allowed_after_review', 'not_applicable'] }).notNull(),
  measures: text('measures').array().notNull(),
  note: text('note'),
  requestId: text('request_id').notNull(),
  at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
})

export type MatchFeedbackRow = typeof matchFeedback.$inferSelect
