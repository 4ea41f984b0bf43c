import { bigserial, date, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'

// Mirrors migrations/0002_listings.sql (the SQL is the source of truth for the database).
export const listings = pgTable('listings', {
  id: uuid('id').primaryKey(),
  listKind: text('list_kind', { enum: ['dishonest', 'restricted'] }).notNull(),
  courtCode: text('court_code').notNull(),
  courtName: text('court_name').notNull(),
  caseNumber: text('case_number').notNull(),
  caseNumberRaw: text('case_number_raw').notNull(),
  subjectKind: text('subject_kind', { enum: ['person', 'entity'] }).notNull(),
  subjectId: text('subject_id').notNull(),
  subjectName: text('subject_name').notNull(),
  record: jsonb('record').$type<Record<string, unknown>>().notNull(),
  matchKeys: jsonb('match_keys').$type<unknown[]>().notNull(),
  grounds: text('grounds').array().notNull(),
  publishedOn: date('published_on').notNull(),
  graceUntil: date('grace_until'),
  periodEndsOn: date('period_ends_on'),
  status: text('status', { enum: ['pending', 'published', 'removed'] }).notNull(),
  removalReason: text('removal_reason'),
  removalNote: text('removal_note'),
  removedAt: timestamp('removed_at', { withTimezone: true }),
  removedBy: text('removed_by'),
  fullPerformanceOn: date('full_performance_on'),
  removalDueOn: date('removal_due_on'),
  contentHash: text('content_hash').notNull(),
  version: integer('version').notNull(),
  createdBy: text('created_by').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
})

export const listingEvents = pgTable('listing_events', {
  seq: bigserial('seq', { mode: 'number' }).primaryKey(),
  listingId: uuid('listing_id').notNull(),
  kind: text('kind', { enum: ['published', 'updated', 'removed', 'expired'] }).notNull(),
  version: integer('version').notNull(),
  courtCode: text('court_code').notNull(),
  listKind: text('list_kind').notNull(),
  listing: jsonb('listing').$type<Record<string, unknown>>().notNull(),
  actor: text('actor').notNull(),
  requestId: text('request_id'),
  at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
})

export type ListingRow = typeof listings.$inferSelect
export type ListingEventRow = typeof listingEvents.$inferSelect
