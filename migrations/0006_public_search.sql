-- Public search (issue 6 item 1): active listings by exact subject name, newest first, in the order
-- the search pages through them. Partial: only published listings are ever searched publicly.
-- (A plain CREATE INDEX: migrations run in a transaction, where CONCURRENTLY is not allowed; on a
-- large existing table build it CONCURRENTLY by hand first — IF NOT EXISTS then skips it here.)
CREATE INDEX IF NOT EXISTS listings_public_name ON listings (subject_name, published_on DESC, id) WHERE status = 'published';
