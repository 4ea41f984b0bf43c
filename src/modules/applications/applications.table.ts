import { bigserial, date, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'
import { customType } from 'drizzle-orm/pg-core'

// Mirrors migrations/0007_applications.sql (the SQL is the source of truth for the database).
const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (v) => Buffer.from(v),
})

export const applications = pgTable('applications', {
  id: uuid('id').primaryKey(),
  kind: text('kind', { enum: ['appeal', 'repair'] }).notNull(),
  trackingHash: text('tracking_hash').notNull(),
  listingId: uuid('listing_id').notNull(),
  listingVersion: integer('listing_version').notNull(),
  courtCode: text('court_code').notNull(),
  higherCourtCode: text('higher_court_code'),
  ground: text('ground').notNull(),
  applicant: jsonb('applicant').$type<{ name: string; identifierMasked: string; identifierHash: string; contact: string }>().notNull(),
  statement: text('statement').notNull(),
  requestedChanges: jsonb('requested_changes').$type<Record<string, unknown> | null>(),
  status: text('status', { enum: ['under_review', 'corrected', 'removed', 'rejected', 'reconsideration', 'upheld', 'approved'] }).notNull(),
  receivedOn: date('received_on').notNull(),
  reviewDueOn: date('review_due_on').notNull(),
  decision: jsonb('decision').$type<Record<string, unknown> | null>(),
  correctionDueOn: date('correction_due_on'),
  reconsiderationWindowEndsOn: date('reconsideration_window_ends_on'),
  reconsideration: jsonb('reconsideration').$type<Record<string, unknown> | null>(),
  reconsiderationDueOn: date('reconsideration_due_on'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
})

export const applicationEvents = pgTable('application_events', {
  seq: bigserial('seq', { mode: 'number' }).primaryKey(),
  applicationId: uuid('application_id').notNull(),
  at: timestamp('at', { withTimezone: true }).notNull(),
  status: text('status').notNull(),
  actor: text('actor').notNull(),
  note: text('note'),
  requestId: text('request_id'),
})

export const applicationAttachments = pgTable('application_attachments', {
  id: uuid('id').primaryKey(),
  applicationId: uuid('application_id').notNull(),
  fileName: text('file_name').notNull(),
  mediaType: text('media_type').notNull(),
  size: integer('size').notNull(),
  sha256: text('sha256').notNull(),
  bytes: bytea('bytes').notNull(),
})

export const certificates = pgTable('certificates', {
  id: uuid('id').primaryKey(),
  applicationId: uuid('application_id').notNull(),
  listingId: uuid('listing_id').notNull(),
  jws: text('jws').notNull(),
  issuedAt: timestamp('issued_at', { withTimezone: true }).notNull(),
})

export type ApplicationRow = typeof applications.$inferSelect
export type ApplicationEventRow = typeof applicationEvents.$inferSelect
export type CertificateRow = typeof certificates.$inferSelect
