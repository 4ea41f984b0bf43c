-- Gateway processes for the supervision dashboard: each process upserts its own row every
-- PROCESS_HEARTBEAT_SECONDS (match index state, change-log events applied) and deletes it on close.
-- A process that died leaves its row; any heartbeat deletes rows not seen for 10 minutes.
CREATE TABLE gateway_processes (
  id                uuid PRIMARY KEY,                -- random per process start, not the pid
  host              text NOT NULL,
  pid               integer NOT NULL,
  started_at        timestamptz NOT NULL,
  last_seen_at      timestamptz NOT NULL,
  index_seq         bigint NOT NULL,                 -- the last change-log seq the match index applied
  index_ready       boolean NOT NULL,
  index_size        integer NOT NULL,                -- listings in the match index
  events_applied    bigint NOT NULL,                 -- change-log events applied since start
  events_per_second double precision NOT NULL        -- applied since the previous heartbeat / interval
);

-- Change-log throughput (events per minute, last hour, last 24 hours) reads a time range of the
-- log; without this it would scan the whole log on every dashboard refresh.
CREATE INDEX listing_events_at ON listing_events (at);
