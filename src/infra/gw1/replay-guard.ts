import type { Database } from '../db.js'
import { AppError } from '../errors.js'

interface Pending { iss: string; jti: string; expiresAt: Date; resolve: (fresh: boolean) => void; reject: (err: unknown) => void }

const MAX_BATCH = 2000
const PURGE_INTERVAL_MS = 60_000
/**
 * How long the first claim of a batch waits for others to join it. Under load each INSERT then
 * carries several jtis instead of one or two, which saves a round trip's worth of client and
 * database CPU per request for about a millisecond of latency.
 */
export const REPLAY_GUARD_LINGER_MS = 1

/**
 * Remembers every accepted (iss, jti) in PostgreSQL until the token could no longer be accepted,
 * so a replay is refused by every gateway process sharing the database. Inserts are group
 * committed: concurrent requests share one multi-row INSERT ... ON CONFLICT DO NOTHING, and each
 * waits only for its own batch.
 */
export class ReplayGuard {
  private queue: Pending[] = []
  private flushing = false
  private readonly purgeTimer: NodeJS.Timeout

  constructor(private readonly database: Database) {
    this.purgeTimer = setInterval(() => { void this.purgeExpired().catch(() => {}) }, PURGE_INTERVAL_MS)
    this.purgeTimer.unref()
  }

  /** Resolves true the first time (iss, jti) is seen, false for a replay. */
  claim(iss: string, jti: string, expiresAt: Date): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ iss, jti, expiresAt, resolve, reject })
      if (!this.flushing) { this.flushing = true; setTimeout(() => void this.flush(), REPLAY_GUARD_LINGER_MS) }
    })
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH)
      // The same jti twice in one batch: only the first may win.
      const seen = new Set<string>()
      const unique: Pending[] = []
      for (const p of batch) {
        const k = `${p.iss}\u0000${p.jti}`
        if (seen.has(k)) p.resolve(false)
        else { seen.add(k); unique.push(p) }
      }
      try {
        const rows = await this.database.query<{ iss: string; jti: string }>(
          `INSERT INTO used_jtis (iss, jti, expires_at)
           SELECT iss, jti, expires_at FROM jsonb_to_recordset($1::jsonb) AS x(iss text, jti text, expires_at timestamptz)
           ON CONFLICT DO NOTHING RETURNING iss, jti`,
          // One JSON parameter: the same on postgres.js and PGlite, and one round trip per batch.
          [JSON.stringify(unique.map((p) => ({ iss: p.iss, jti: p.jti, expires_at: p.expiresAt.toISOString() })))],
          { prepare: true },
        )
        const inserted = new Set(rows.map((r) => `${r.iss}\u0000${r.jti}`))
        for (const p of unique) p.resolve(inserted.has(`${p.iss}\u0000${p.jti}`))
      } catch (err) {
        const unavailable = new AppError('service.unavailable', 503, 'the database is unavailable; retry shortly', { headers: { 'retry-after': '1' } })
        for (const p of unique) p.reject(Object.assign(unavailable, { cause: err }))
      }
    }
    this.flushing = false
  }

  /** The margin covers a gateway clock running behind the database's: a jti must outlive its token. */
  async purgeExpired(): Promise<number> {
    const rows = await this.database.query("DELETE FROM used_jtis WHERE expires_at < now() - interval '5 minutes' RETURNING 1")
    return rows.length
  }

  close(): void {
    clearInterval(this.purgeTimer)
  }
}
