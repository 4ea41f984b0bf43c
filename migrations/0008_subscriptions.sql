-- Webhook subscriptions (issue 7): the change log is the outbox. Each subscription keeps its own
-- cursor (acked_seq); a delivery worker leases a due subscription (short transaction, SKIP LOCKED),
-- POSTs its next events in order, and moves the cursor only on a 2xx. A lease, not an open
-- transaction, guards the HTTP call: two processes never deliver one subscription at once.
CREATE TABLE subscriptions (
  id              uuid PRIMARY KEY,
  principal_id    text NOT NULL,
  url             text NOT NULL,
  event_kinds     text[] NOT NULL,
  list_kinds      text[] NOT NULL,
  status          text NOT NULL CHECK (status IN ('active', 'paused')),
  acked_seq       bigint NOT NULL,                 -- the last event delivered (or skipped by the filters)
  attempts        integer NOT NULL DEFAULT 0,      -- failed attempts at the current event
  failing_since   timestamptz,
  next_attempt_at timestamptz NOT NULL,
  lease_until     timestamptz,
  leased_by       text,
  last_error      text,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL
);
CREATE INDEX subscriptions_principal ON subscriptions (principal_id);
CREATE INDEX subscriptions_due ON subscriptions (next_attempt_at) WHERE status = 'active';

CREATE TABLE delivery_attempts (
  id              bigserial PRIMARY KEY,
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  seq             bigint NOT NULL,
  at              timestamptz NOT NULL,
  http_status     integer,                         -- null: no answer (timeout, refused, DNS)
  ok              boolean NOT NULL,
  error           text,
  ms              integer NOT NULL
);
CREATE INDEX delivery_attempts_subscription ON delivery_attempts (subscription_id, id);
