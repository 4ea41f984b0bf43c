-- Correction applications (纠正申请, SPC-List Arts. 11–12) and credit-repair applications (信用修复),
-- filed by the public and decided by the listing's court (a reconsideration by its higher court).
CREATE TABLE applications (
  id                     uuid PRIMARY KEY,
  kind                   text NOT NULL CHECK (kind IN ('appeal', 'repair')),
  tracking_hash          text NOT NULL UNIQUE,        -- sha256 of the tracking code; the code itself is never stored
  listing_id             uuid NOT NULL REFERENCES listings (id),
  listing_version        integer NOT NULL,            -- the version the applicant saw
  court_code             text NOT NULL,               -- the listing's court: it reviews
  higher_court_code      text,                        -- set when a reconsideration is filed
  ground                 text NOT NULL,
  applicant              jsonb NOT NULL,              -- name, masked identifier, keyed hash of it, contact
  statement              text NOT NULL,
  requested_changes      jsonb,                       -- what the applicant says is wrong (appeals)
  status                 text NOT NULL CHECK (status IN ('under_review', 'corrected', 'removed', 'rejected', 'reconsideration', 'upheld', 'approved')),
  received_on            date NOT NULL,               -- China date of receipt: deadlines count from it
  review_due_on          date NOT NULL,
  decision               jsonb,                       -- the first-instance decision
  correction_due_on      date,                        -- accepted: the correction is due by (working days)
  reconsideration_window_ends_on date,               -- rejected appeal: reconsideration may be filed until
  reconsideration        jsonb,                       -- statement, filed on, the higher court's decision
  reconsideration_due_on date,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now()
);
-- The review queues, oldest deadline first.
CREATE INDEX applications_review_queue ON applications (court_code, review_due_on) WHERE status = 'under_review';
CREATE INDEX applications_reconsideration_queue ON applications (higher_court_code, reconsideration_due_on) WHERE status = 'reconsideration';
-- appealPending on match results: pending applications of a listing.
CREATE INDEX applications_pending_listing ON applications (listing_id) WHERE status IN ('under_review', 'reconsideration');

-- Every status change, shown to whoever holds the tracking code.
CREATE TABLE application_events (
  seq            bigserial PRIMARY KEY,
  application_id uuid NOT NULL REFERENCES applications (id),
  at             timestamptz NOT NULL,
  status         text NOT NULL,
  actor          text NOT NULL,                       -- 'applicant' or the deciding court principal
  note           text,
  request_id     text
);
CREATE INDEX application_events_application ON application_events (application_id, seq);

-- Attachments: metadata, SHA-256 and the bytes (bounded by the route's limits).
CREATE TABLE application_attachments (
  id             uuid PRIMARY KEY,
  application_id uuid NOT NULL REFERENCES applications (id),
  file_name      text NOT NULL,
  media_type     text NOT NULL,
  size           integer NOT NULL,
  sha256         text NOT NULL,
  bytes          bytea NOT NULL
);
CREATE INDEX application_attachments_application ON application_attachments (application_id);

-- Repair certificates: a compact JWS signed with the gateway key (the JWKS verifies it offline).
CREATE TABLE certificates (
  id             uuid PRIMARY KEY,
  application_id uuid NOT NULL UNIQUE REFERENCES applications (id),
  listing_id     uuid NOT NULL,
  jws            text NOT NULL,
  issued_at      timestamptz NOT NULL
);
