-- Graded-punishment rule sets (issue 5): every published version is kept; the highest is in force.
-- A publication inserts the next version and NOTIFYs 'rules_published' in the same transaction, so
-- every gateway process switches to it (and polling catches a lost NOTIFY).
CREATE TABLE rule_sets (
  version       integer PRIMARY KEY CHECK (version >= 1),
  document      jsonb NOT NULL,               -- validated against schemas/RuleSet.json before insert
  content_hash  text NOT NULL,                -- sha256 of the canonical document: an unchanged PUT is idempotent
  published_by  text NOT NULL,
  published_at  timestamptz NOT NULL DEFAULT now(),
  request_id    text
);

-- Feedback (惩戒反馈): what an agency did with one match receipt. One row per receipt, written
-- once; a retry with the same action is idempotent, a different action is refused.
CREATE TABLE match_feedback (
  receipt_id    uuid PRIMARY KEY,
  principal_id  text NOT NULL,                -- the agency that matched (and alone may report)
  entry_id      bigint NOT NULL,              -- the audit entry holding the receipt's item
  matched_at    timestamptz NOT NULL,         -- that entry's time: feedback is due a deadline after it
  action        text NOT NULL CHECK (action IN ('restricted', 'allowed_after_review', 'not_applicable')),
  measures      text[] NOT NULL DEFAULT '{}', -- measure codes the agency applied
  note          text,
  request_id    text NOT NULL,
  at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX match_feedback_principal_matched ON match_feedback (principal_id, matched_at);
-- The all-agencies report reads a range of match days across agencies.
CREATE INDEX match_feedback_matched ON match_feedback (matched_at);

-- Supervision (自动监督) reads match figures per agency and China day. Summing the audit rows
-- themselves reads every entry of the range (seconds at 10 million rows), so each INSERT into
-- audit_entries also adds its match entries' summary counts to match_daily, in the same statement
-- and transaction: the rollup can never disagree with the trail it sums.
CREATE TABLE match_daily (
  principal_id  text NOT NULL,
  day           date NOT NULL,                -- Asia/Shanghai calendar day of the entry
  requests      bigint NOT NULL,
  subjects      bigint NOT NULL,              -- result.summary.subjects (refused items not counted)
  hits          bigint NOT NULL,
  allow         bigint NOT NULL,
  review        bigint NOT NULL,
  deny          bigint NOT NULL,
  PRIMARY KEY (principal_id, day)
);

-- A count of an entry's result.summary, or 0 when absent or not a plain count: the rollup must
-- never be the reason an audit entry is refused.
CREATE FUNCTION audit_summary_count(summary jsonb, field text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(summary->field) = 'number' AND (summary->>field) ~ '^[0-9]{1,15}$' THEN (summary->>field)::bigint ELSE 0 END
$$;

CREATE FUNCTION audit_entries_match_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO match_daily AS d (principal_id, day, requests, subjects, hits, allow, review, deny)
  SELECT principal_id, (at AT TIME ZONE 'Asia/Shanghai')::date, count(*),
         sum(audit_summary_count(result->'summary', 'subjects')), sum(audit_summary_count(result->'summary', 'matched')),
         sum(audit_summary_count(result->'summary', 'allow')), sum(audit_summary_count(result->'summary', 'review')),
         sum(audit_summary_count(result->'summary', 'deny'))
  FROM new_entries WHERE action = 'match'
  GROUP BY 1, 2
  ORDER BY 1, 2  -- one lock order for every writer: concurrent flushes cannot deadlock
  ON CONFLICT (principal_id, day) DO UPDATE SET
    requests = d.requests + EXCLUDED.requests, subjects = d.subjects + EXCLUDED.subjects,
    hits = d.hits + EXCLUDED.hits, allow = d.allow + EXCLUDED.allow,
    review = d.review + EXCLUDED.review, deny = d.deny + EXCLUDED.deny;
  RETURN NULL;
END $$;

CREATE TRIGGER audit_entries_match_rollup AFTER INSERT ON audit_entries
  REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_match_rollup();
