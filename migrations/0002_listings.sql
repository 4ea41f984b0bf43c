-- Listings (the dishonest-debtor list and the consumption-restriction list) and the one ordered
-- change log every reader (match index, change feed, webhooks) follows. domain.md §1, §2.
CREATE TABLE listings (
  id                    uuid PRIMARY KEY,
  list_kind             text NOT NULL CHECK (list_kind IN ('dishonest', 'restricted')),
  court_code            text NOT NULL,
  court_name            text NOT NULL,
  case_number           text NOT NULL,            -- normalized: full-width brackets
  case_number_raw       text NOT NULL,
  subject_kind          text NOT NULL CHECK (subject_kind IN ('person', 'entity')),
  subject_id            text NOT NULL,            -- normalized resident id or credit code (or org:XXXXXXXXX)
  subject_name          text NOT NULL,
  -- The whole normalized record as pushed (subject, officers, basis, obligations, performance ...).
  record                jsonb NOT NULL,
  -- Every normalized identifier that matches this listing, with the role it matches in.
  match_keys            jsonb NOT NULL,
  grounds               text[] NOT NULL DEFAULT '{}',
  published_on          date NOT NULL,
  grace_until           date,                     -- SPC-Goodwill Art. 15: nothing published before
  period_ends_on        date,                     -- exclusive; null = open-ended (G1, SPC-List Art. 2)
  status                text NOT NULL CHECK (status IN ('pending', 'published', 'removed')),
  removal_reason        text,
  removal_note          text,
  removed_at            timestamptz,
  removed_by            text,
  full_performance_on   date,                     -- when the court recorded full performance
  removal_due_on        date,                     -- SPC-List Art. 10: 3 working days after that
  content_hash          text NOT NULL,
  version               integer NOT NULL DEFAULT 1,
  created_by            text NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  UNIQUE (court_code, case_number, subject_id),
  CHECK ((status = 'removed') = (removal_reason IS NOT NULL))
);
CREATE INDEX listings_active_period ON listings (period_ends_on) WHERE status = 'published';
CREATE INDEX listings_pending_grace ON listings (grace_until) WHERE status = 'pending';
CREATE INDEX listings_removal_due ON listings (court_code, removal_due_on) WHERE status = 'published' AND removal_due_on IS NOT NULL;
CREATE INDEX listings_subject ON listings (subject_id);

-- The change log. Appends are serialized by a transaction-scoped advisory lock taken just before
-- the insert, so sequence order is commit order and a reader polling "seq > cursor" never skips.
CREATE TABLE listing_events (
  seq          bigserial PRIMARY KEY,
  listing_id   uuid NOT NULL REFERENCES listings (id),
  kind         text NOT NULL CHECK (kind IN ('published', 'updated', 'removed', 'expired')),
  version      integer NOT NULL,
  court_code   text NOT NULL,
  list_kind    text NOT NULL,
  listing      jsonb NOT NULL,                    -- the listing as of this event
  actor        text NOT NULL,
  request_id   text,
  at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX listing_events_listing ON listing_events (listing_id, seq);
