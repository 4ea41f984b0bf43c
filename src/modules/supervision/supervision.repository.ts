import type { Database } from '../../infra/db.js'

export interface AgencyDayRow {
  principal_id: string
  day: string
  requests: number
  subjects: number
  hits: number
  allow: number
  review: number
  deny: number
  feedback: number
  restricted: number
  allowed_after_review: number
  not_applicable: number
  overdue: number
}
export interface MeasureDayRow { principal_id: string; day: string; code: string; n: number }

// Match figures per agency and China day from match_daily (kept by a trigger on audit_entries, see
// migrations/0005), beside the feedback on those matches. A day's hits are overdue once its
// feedback deadline has passed ($5: the last such day) for as many as have no feedback: feedback is
// at most one row per hit receipt.
const agencyDays = (oneAgency: boolean) => `
WITH f AS (
  SELECT principal_id, (matched_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
         count(*)::int AS feedback,
         count(*) FILTER (WHERE action = 'restricted')::int AS restricted,
         count(*) FILTER (WHERE action = 'allowed_after_review')::int AS allowed_after_review,
         count(*) FILTER (WHERE action = 'not_applicable')::int AS not_applicable
  FROM match_feedback
  WHERE matched_at >= $3 AND matched_at < $4 ${oneAgency ? 'AND principal_id = $6' : ''}
  GROUP BY 1, 2
)
SELECT m.principal_id, m.day::text AS day, m.requests::int, m.subjects::int, m.hits::int, m.allow::int, m.review::int, m.deny::int,
       coalesce(f.feedback, 0) AS feedback, coalesce(f.restricted, 0) AS restricted,
       coalesce(f.allowed_after_review, 0) AS allowed_after_review, coalesce(f.not_applicable, 0) AS not_applicable,
       CASE WHEN m.day <= $5::date THEN greatest(m.hits - coalesce(f.feedback, 0), 0) ELSE 0 END::int AS overdue
FROM match_daily m LEFT JOIN f USING (principal_id, day)
WHERE m.day >= $1::date AND m.day <= $2::date ${oneAgency ? 'AND m.principal_id = $6' : ''}
ORDER BY m.principal_id, m.day`

const measureDays = (oneAgency: boolean) => `
SELECT principal_id, (matched_at AT TIME ZONE 'Asia/Shanghai')::date::text AS day, code, count(*)::int AS n
FROM match_feedback, unnest(measures) AS code
WHERE matched_at >= $1 AND matched_at < $2 ${oneAgency ? 'AND principal_id = $3' : ''}
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`

// Change-log throughput by listing_events.at (index listing_events_at, migrations/0009). No upper
// bound: an event stamped by a database clock slightly ahead of this process's is still counted.
const changeLogMinutes = `
SELECT floor(extract(epoch FROM at) / 60)::int AS minute, count(*)::int AS events
FROM listing_events WHERE at >= $1 GROUP BY 1 ORDER BY 1`
const changeLogTotals = `
SELECT count(*) FILTER (WHERE at > $1)::int AS last_hour, count(*)::int AS last_day
FROM listing_events WHERE at > $2`

/**
 * Supervision (自动监督) reads, in SQL: match_daily (the audit trail's match entries summed per
 * agency and day as they are written) by its primary key, match_feedback by (principal_id, matched_at).
 */
export function createSupervisionRepository(database: Database) {
  return {
    /** China days `fromDay`..`toDay`, i.e. the instants `from` (inclusive) to `to` (exclusive); `dueDay`: the last day whose feedback deadline has passed. */
    async agencyDays(range: { fromDay: string; toDay: string; from: Date; to: Date; dueDay: string; principalId?: string }): Promise<AgencyDayRow[]> {
      const one = range.principalId !== undefined
      const params: unknown[] = [range.fromDay, range.toDay, range.from.toISOString(), range.to.toISOString(), range.dueDay]
      if (one) params.push(range.principalId)
      return database.query<AgencyDayRow>(agencyDays(one), params, { prepare: true })
    },

    async measureDays(range: { from: Date; to: Date; principalId?: string }): Promise<MeasureDayRow[]> {
      const one = range.principalId !== undefined
      const params: unknown[] = [range.from.toISOString(), range.to.toISOString()]
      if (one) params.push(range.principalId)
      return database.query<MeasureDayRow>(measureDays(one), params, { prepare: true })
    },

    /** The change log's last sequence (0 when empty): what every match index should have applied. */
    async headSeq(): Promise<number> {
      const [row] = await database.query<{ seq: string }>('SELECT coalesce(max(seq), 0)::text AS seq FROM listing_events')
      return Number(row?.seq ?? 0)
    },

    /** Events per minute (minute as Unix minutes) since `minutesFrom`, and counts since `hourAgo` and `dayAgo`. */
    async changeLog(range: { minutesFrom: Date; hourAgo: Date; dayAgo: Date }): Promise<{ minutes: { minute: number; events: number }[]; lastHour: number; lastDay: number }> {
      const [minutes, totals] = await Promise.all([
        database.query<{ minute: number; events: number }>(changeLogMinutes, [range.minutesFrom.toISOString()], { prepare: true }),
        database.query<{ last_hour: number; last_day: number }>(changeLogTotals, [range.hourAgo.toISOString(), range.dayAgo.toISOString()], { prepare: true }),
      ])
      return { minutes, lastHour: totals[0]?.last_hour ?? 0, lastDay: totals[0]?.last_day ?? 0 }
    },
  }
}

export type SupervisionRepository = ReturnType<typeof createSupervisionRepository>
