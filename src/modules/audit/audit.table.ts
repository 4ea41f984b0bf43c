import { bigint, bigserial, index, jsonb, pgTable, text, timestamp, unique, uuid } from 'drizzle-orm/pg-core'

// Mirrors migrations/0003_audit.sql (the SQL is the source of truth for the database).
export const auditEntries = pgTable('audit_entries', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  writerId: text('writer_id').notNull(),
  writerSeq: bigint('writer_seq', { mode: 'number' }).notNull(),
  at: timestamp('at', { withTimezone: true }).notNull(),
  principalId: text('principal_id').notNull(),
  action: text('action').notNull(),
  operationId: text('operation_id').notNull(),
  requestId: text('request_id').notNull(),
  subjectHash: text('subject_hash'),
  scenario: text('scenario'),
  receiptId: uuid('receipt_id').unique(),
  result: jsonb('result').$type<Record<string, unknown>>().notNull(),
  prevHash: text('prev_hash').notNull(),
  hash: text('hash').notNull(),
}, (t) => [
  unique('audit_entries_writer_id_writer_seq_key').on(t.writerId, t.writerSeq),
  index('audit_entries_principal').on(t.principalId, t.id),
])

export type AuditEntryRow = typeof auditEntries.$inferSelect
