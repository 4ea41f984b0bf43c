import { integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core'

// Mirrors migrations/0005_rules_feedback.sql (the SQL is the source of truth for the database).
export const ruleSets = pgTable('rule_sets', {
  version: integer('version').primaryKey(),
  document: jsonb('document').$type<Record<string, unknown>>().notNull(),
  contentHash: text('content_hash').notNull(),
  publishedBy: text('published_by').notNull(),
  publishedAt: timestamp('published_at', { withTimezone: true }).notNull().defaultNow(),
  requestId: text('request_id'),
})

export type RuleSetRow = typeof ruleSets.$inferSelect
