-- The audit trail (全程留痕): one row per match, listing read, review decision or refused call.
-- Rows are written only by the group-commit writer (src/modules/audit/audit.writer.ts) and never
-- updated. Each writer (one per gateway process) keeps its own hash chain:
--   hash = sha256hex(prev_hash || '\n' || canonical JSON of the row's fields), prev_hash of seq 1 = 64 zeros,
-- so `npm run audit:verify` finds any edited, deleted or reordered row.
CREATE TABLE audit_entries (
  id            bigserial PRIMARY KEY,
  writer_id     text NOT NULL,
  writer_seq    bigint NOT NULL CHECK (writer_seq >= 1),
  at            timestamptz NOT NULL,
  principal_id  text NOT NULL,              -- no foreign key: a refused call may name an unknown issuer
  action        text NOT NULL,              -- 'match', 'listing.read', 'review.decision', 'auth.refused' ...
  operation_id  text NOT NULL,
  request_id    text NOT NULL,
  subject_hash  text,                       -- keyed hash (IDENTIFIER_HASH_SECRET) of the subject, never the identifier
  scenario      text,
  receipt_id    uuid UNIQUE,                -- the unique constraint doubles as the receipt look-up index
  result        jsonb NOT NULL,
  prev_hash     text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash          text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  UNIQUE (writer_id, writer_seq)
);
-- An agency's own entries, and the admin listing filtered by principal, both in id order.
CREATE INDEX audit_entries_principal ON audit_entries (principal_id, id);
