import type { Database } from '../../infra/db.js'

export interface SubscriptionRow {
  id: string
  principal_id: string
  url: string
  event_kinds: string[]
  list_kinds: string[]
  status: 'active' | 'paused'
  acked_seq: string
  attempts: number
  failing_since: Date | null
  next_attempt_at: Date
  last_error: string | null
  created_at: Date
  updated_at: Date
}
export interface EventRow { seq: string; kind: string; listing_id: string; version: number; list_kind: string; listing: Record<string, unknown>; at: Date }
export interface AttemptRow { id: string; seq: string; at: Date; http_status: number | null; ok: boolean; error: string | null; ms: number }

// Raw queries may return timestamps as text (driver and prepare mode differ): one shape for callers.
const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)))
const subscription = (r: SubscriptionRow): SubscriptionRow => ({
  ...r, failing_since: r.failing_since === null ? null : date(r.failing_since), next_attempt_at: date(r.next_attempt_at), created_at: date(r.created_at), updated_at: date(r.updated_at),
})

const COLUMNS = 'id, principal_id, url, event_kinds, list_kinds, status, acked_seq::text AS acked_seq, attempts, failing_since, next_attempt_at, last_error, created_at, updated_at'

/** subscriptions and delivery_attempts, in SQL (the lease needs UPDATE … FROM (… FOR UPDATE SKIP LOCKED)). */
export function createDeliveryRepository(database: Database) {
  return {
    async insert(s: { id: string; principalId: string; url: string; eventKinds: string[]; listKinds: string[]; ackedSeq: number; now: Date }): Promise<SubscriptionRow> {
      const [row] = await database.query<SubscriptionRow>(
        `INSERT INTO subscriptions (id, principal_id, url, event_kinds, list_kinds, status, acked_seq, next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4::text[], $5::text[], 'active', $6, $7, $7, $7) RETURNING ${COLUMNS}`,
        [s.id, s.principalId, s.url, s.eventKinds, s.listKinds, s.ackedSeq, s.now.toISOString()])
      return subscription(row!)
    },

    async byId(id: string): Promise<SubscriptionRow | undefined> {
      return (await database.query<SubscriptionRow>(`SELECT ${COLUMNS} FROM subscriptions WHERE id = $1`, [id])).map(subscription)[0]
    },

    async list(principalId: string | undefined): Promise<SubscriptionRow[]> {
      const rows = principalId === undefined
        ? await database.query<SubscriptionRow>(`SELECT ${COLUMNS} FROM subscriptions ORDER BY created_at, id`)
        : await database.query<SubscriptionRow>(`SELECT ${COLUMNS} FROM subscriptions WHERE principal_id = $1 ORDER BY created_at, id`, [principalId])
      return rows.map(subscription)
    },

    /** Pause, or resume from the last acknowledged event (attempts reset, due at once). */
    async setStatus(id: string, status: 'active' | 'paused', now: Date): Promise<SubscriptionRow | undefined> {
      return (await database.query<SubscriptionRow>(
        `UPDATE subscriptions SET status = $2, attempts = CASE WHEN $2 = 'active' THEN 0 ELSE attempts END,
           failing_since = CASE WHEN $2 = 'active' THEN NULL ELSE failing_since END, next_attempt_at = $3, updated_at = $3
         WHERE id = $1 RETURNING ${COLUMNS}`, [id, status, now.toISOString()])).map(subscription)[0]
    },

    async remove(id: string): Promise<boolean> {
      return (await database.query('DELETE FROM subscriptions WHERE id = $1 RETURNING 1', [id])).length > 0
    },

    /** Leases one due active subscription (not one of `except`) to `worker` until `leaseUntil`; other processes skip it. */
    async leaseDue(worker: string, now: Date, leaseUntil: Date, except: string[]): Promise<SubscriptionRow | undefined> {
      return (await database.query<SubscriptionRow>(
        `UPDATE subscriptions s SET lease_until = $3, leased_by = $1
         FROM (SELECT id FROM subscriptions WHERE status = 'active' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2) AND NOT (id = ANY($4::uuid[]))
               ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) due
         WHERE s.id = due.id RETURNING ${COLUMNS.split(', ').map((c) => `s.${c}`).join(', ')}`,
        [worker, now.toISOString(), leaseUntil.toISOString(), except], { prepare: true })).map(subscription)[0]
    },

    /** The next events after the subscription's cursor, in order (of the bigint column, not its text alias), up to `limit`. */
    async eventsAfter(seq: string, limit: number): Promise<EventRow[]> {
      const rows = await database.query<EventRow>('SELECT e.seq::text AS seq, kind, listing_id, version, list_kind, listing, at FROM listing_events e WHERE e.seq > $1 ORDER BY e.seq LIMIT $2', [seq, limit], { prepare: true })
      return rows.map((r) => ({ ...r, at: date(r.at) }))
    },

    /**
     * Before each POST: extends this worker's lease to `leaseUntil` and records the cursor reached so
     * far (what the receiver acknowledged), so that a process taking over later repeats at most the
     * POST in flight. False when the lease is no longer this worker's (another process took the
     * subscription over once the lease ran out on its clock, or it was deleted): the pass must stop.
     */
    async renewLease(id: string, worker: string, leaseUntil: Date, ackedSeq: string): Promise<boolean> {
      return (await database.query('UPDATE subscriptions SET lease_until = $3, acked_seq = GREATEST(acked_seq, $4::bigint) WHERE id = $1 AND leased_by = $2 RETURNING 1',
        [id, worker, leaseUntil.toISOString(), ackedSeq], { prepare: true })).length > 0
    },

    /**
     * Moves the cursor and records the outcome, releasing the lease, only while this worker still holds
     * it (false otherwise: nothing written, so a pass that lost its lease never overwrites the other
     * process's state). The cursor never moves backwards.
     */
    async settle(id: string, worker: string, patch: { ackedSeq: string; attempts: number; failingSince: Date | null; nextAttemptAt: Date; lastError: string | null; pause: boolean; now: Date }): Promise<boolean> {
      return (await database.query(
        `UPDATE subscriptions SET acked_seq = GREATEST(acked_seq, $3::bigint), attempts = $4, failing_since = $5, next_attempt_at = $6, last_error = $7,
           status = CASE WHEN $8 THEN 'paused' ELSE status END, lease_until = NULL, leased_by = NULL, updated_at = $9
         WHERE id = $1 AND leased_by = $2 RETURNING 1`,
        [id, worker, patch.ackedSeq, patch.attempts, patch.failingSince?.toISOString() ?? null, patch.nextAttemptAt.toISOString(), patch.lastError, patch.pause, patch.now.toISOString()])).length > 0
    },

    async recordAttempt(a: { subscriptionId: string; seq: string; at: Date; httpStatus: number | null; ok: boolean; error: string | null; ms: number }): Promise<void> {
      await database.query('INSERT INTO delivery_attempts (subscription_id, seq, at, http_status, ok, error, ms) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [a.subscriptionId, a.seq, a.at.toISOString(), a.httpStatus, a.ok, a.error, a.ms], { prepare: true })
    },

    async attempts(id: string, limit: number): Promise<AttemptRow[]> {
      const rows = await database.query<AttemptRow>('SELECT id::text AS id, seq::text AS seq, at, http_status, ok, error, ms FROM delivery_attempts a WHERE subscription_id = $1 ORDER BY a.id DESC LIMIT $2', [id, limit])
      return rows.map((r) => ({ ...r, at: date(r.at) }))
    },

    async headSeq(): Promise<number> {
      const [row] = await database.query<{ seq: string | null }>('SELECT max(seq)::text AS seq FROM listing_events')
      return Number(row?.seq ?? 0)
    },
  }
}

export type DeliveryRepository = ReturnType<typeof createDeliveryRepository>
