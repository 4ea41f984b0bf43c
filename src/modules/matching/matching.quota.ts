import type { Database } from '../../infra/db.js'
import type { Clock } from '../../infra/clock.js'
import { endOfShanghaiDay, shanghaiDate } from '../calendar/working-days.js'
import type { Principal } from '../principals/principals.models.js'
import { matchingError } from './matching.errors.js'

const FLUSH_MS = 1000

interface Usage { day: string; committed: number; pending: number }

/**
 * The profile's daily quota of matched subjects (DESIGN.md "Scopes and projection"). Each process
 * counts locally and adds its count to principal_usage every second, reading back the total of all
 * processes; so the quota holds across processes to within about one second of traffic, without a
 * database write on the match path.
 */
export function createQuotaGuard(database: Database, clock: Clock) {
  const usage = new Map<string, Usage>()
  let flushing: Promise<void> | undefined

  function current(principalId: string, day: string): Usage {
    let u = usage.get(principalId)
    if (!u || u.day !== day) { u = { day, committed: 0, pending: 0 }; usage.set(principalId, u) }
    return u
  }

  async function flush() {
    for (const [principalId, u] of usage) {
      if (u.pending === 0) continue
      const add = u.pending
      u.pending = 0
      try {
        const [row] = await database.query<{ used: string }>(
          `INSERT INTO principal_usage (principal_id, day, used) VALUES ($1, $2::date, $3)
           ON CONFLICT (principal_id, day) DO UPDATE SET used = principal_usage.used + EXCLUDED.used RETURNING used`,
          [principalId, u.day, add])
        u.committed = Number(row?.used ?? u.committed + add)
      } catch {
        u.pending += add // keep it for the next flush
      }
    }
  }

  const timer = setInterval(() => { flushing ??= flush().finally(() => { flushing = undefined }) }, FLUSH_MS)
  timer.unref()

  return {
    /** Counts `n` subjects against the agency's quota for today, or refuses with 429 and Retry-After. */
    async consume(agency: Principal, n: number): Promise<void> {
      const quota = agency.profile.dailyQuota
      if (quota === undefined) return
      const now = new Date(clock.nowMs())
      const day = shanghaiDate(now)
      const u = current(agency.id, day)
      if (u.committed === 0 && u.pending === 0) {
        // First use in this process today: start from what the other processes have used.
        const [row] = await database.query<{ used: string }>('SELECT used FROM principal_usage WHERE principal_id = $1 AND day = $2::date', [agency.id, day])
        u.committed = Math.max(u.committed, Number(row?.used ?? 0))
      }
      if (u.committed + u.pending + n > quota) {
        const retryAfter = Math.max(1, Math.ceil((endOfShanghaiDay(day).getTime() - now.getTime()) / 1000))
        throw matchingError('quota_exceeded', 429, `daily quota of ${quota} subjects used up (${u.committed + u.pending} so far today); it resets at midnight China time`, { headers: { 'retry-after': String(retryAfter) } })
      }
      u.pending += n
    },
    flush: () => flush(),
    async close() {
      clearInterval(timer)
      await flushing
      await flush()
    },
  }
}

export type QuotaGuard = ReturnType<typeof createQuotaGuard>
