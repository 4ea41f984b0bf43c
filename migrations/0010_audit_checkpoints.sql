-- Signed checkpoints of the audit chains (src/modules/audit/audit.checkpoints.ts). Every
-- AUDIT_CHECKPOINT_SECONDS, and when it closes, each gateway process whose audit writer committed
-- something since its last checkpoint records its chain head here as a compact JWS signed with the
-- gateway key. A hash chain alone cannot show its own last rows deleted, nor a chain recomputed
-- whole after an edit; `npm run audit:verify` checks every checkpoint's signature against the
-- gateway's JWKS and that the chain still holds that hash at that writer_seq.
--
-- The columns repeat the signed payload for querying; the verifier trusts only the JWS and reports
-- a row whose columns disagree with it. `kid` names the signing key, so a checkpoint stays
-- verifiable after a key rotation as long as the retired public key is kept (JWKS or archive).
CREATE TABLE audit_checkpoints (
  id          bigserial PRIMARY KEY,
  writer_id   text NOT NULL,
  writer_seq  bigint NOT NULL CHECK (writer_seq >= 1),
  hash        text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  at          timestamptz NOT NULL,
  kid         text NOT NULL,
  jws         text NOT NULL,
  -- A restarted writer with the same id may find its head already checkpointed.
  UNIQUE (writer_id, writer_seq)
);
