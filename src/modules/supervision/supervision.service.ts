import type { Clock } from '../../infra/clock.js'
import { createErrorFactory } from '../../infra/errors.js'
import { shanghaiDate, startOfShanghaiDay } from '../calendar/working-days.js'
import type { ProcessBeat } from '../processes/processes.repository.js'
import type { SupervisionRepository } from './supervision.repository.js'
import type { ApplicationsRepository } from '../applications/applications.repository.js'

/** The overdue applications listed by name (the oldest due first); the counts cover all of them. */
const OVERDUE_ITEMS_SHOWN = 50

export const supervisionError = createErrorFactory('supervision')

/** The longest range one call reports on. */
export const MAX_RANGE_DAYS = 366
const DAY_MS = 86_400_000
const MINUTE_MS = 60_000
/** A process that missed this many heartbeats is reported stale (it may have died or lost the database). */
const STALE_AFTER_BEATS = 3

export interface AgencyDay {
  day: string
  requests: number
  matches: number
  hits: number
  decisions: { allow: number; review: number; deny: number }
  feedback: { received: number; restricted: number; allowedAfterReview: number; notApplicable: number }
  /** Hits of this day without feedback, once the day's feedback deadline has passed. */
  overdue: number
  /** Measures the agency reported applying (feedback), by code. */
  measuresApplied: Record<string, number>
}
export interface AgencyReport { agency: string; totals: Omit<AgencyDay, 'day'>; days: AgencyDay[] }

function emptyDay(day: string): AgencyDay {
  return { day, requests: 0, matches: 0, hits: 0, decisions: { allow: 0, review: 0, deny: 0 }, feedback: { received: 0, restricted: 0, allowedAfterReview: 0, notApplicable: 0 }, overdue: 0, measuresApplied: {} }
}

function add(into: Omit<AgencyDay, 'day'>, d: AgencyDay) {
  into.requests += d.requests; into.matches += d.matches; into.hits += d.hits; into.overdue += d.overdue
  for (const k of ['allow', 'review', 'deny'] as const) into.decisions[k] += d.decisions[k]
  for (const k of ['received', 'restricted', 'allowedAfterReview', 'notApplicable'] as const) into.feedback[k] += d.feedback[k]
  for (const [code, n] of Object.entries(d.measuresApplied)) into.measuresApplied[code] = (into.measuresApplied[code] ?? 0) + n
}

/** Supervision (自动监督): per agency and China day, matches, hits, decisions, feedback, overdue hits, measures applied. */
export function createSupervisionService(deps: {
  repository: SupervisionRepository; clock: Clock; feedbackDeadlineDays: number
  applications: Pick<ApplicationsRepository, 'overdueCount' | 'overdueItems'>
  /** gateway_processes (each process's heartbeat) and its interval, for the processes report. */
  processes: { list(): Promise<ProcessBeat[]> }; heartbeatSeconds: number
}) {
  return {
    /**
     * Every gateway process as of its last heartbeat (match index lag behind the change log,
     * events applied) and the change log's throughput over the last hour and day, by the app clock.
     */
    async processes() {
      const now = deps.clock.nowMs()
      // The 60 whole minutes up to and including the current one.
      const minutesFrom = new Date(Math.floor(now / MINUTE_MS) * MINUTE_MS - 59 * MINUTE_MS)
      const [headSeq, rows, log] = await Promise.all([
        deps.repository.headSeq(),
        deps.processes.list(),
        deps.repository.changeLog({ minutesFrom, hourAgo: new Date(now - 60 * MINUTE_MS), dayAgo: new Date(now - DAY_MS) }),
      ])
      const staleAfterMs = STALE_AFTER_BEATS * deps.heartbeatSeconds * 1000
      return {
        asOf: new Date(now).toISOString(),
        headSeq,
        processes: rows.map((p) => ({
          id: p.id, host: p.host, pid: p.pid, startedAt: p.startedAt.toISOString(), lastSeenAt: p.lastSeenAt.toISOString(),
          stale: now - p.lastSeenAt.getTime() >= staleAfterMs,
          indexReady: p.indexReady, indexSize: p.indexSize, indexSeq: p.indexSeq,
          // Read at different moments: a row can be ahead of the head read here, never behind zero.
          indexLag: Math.max(0, headSeq - p.indexSeq),
          eventsApplied: p.eventsApplied, eventsPerSecond: p.eventsPerSecond,
        })),
        changeLog: {
          perMinute: log.minutes.map((m) => ({ minute: new Date(m.minute * MINUTE_MS).toISOString(), events: m.events })),
          lastHour: log.lastHour,
          last24Hours: log.lastDay,
        },
      }
    },

    /** Open appeals and repairs per deciding court (the higher court for a reconsideration), and how many are past their deadline. */
    async applications() {
      const today = shanghaiDate(new Date(deps.clock.nowMs()))
      const [rows, overdueItems] = await Promise.all([deps.applications.overdueCount(today), deps.applications.overdueItems(today, OVERDUE_ITEMS_SHOWN)])
      return { asOf: today, courts: rows.sort((a, b) => (a.courtCode + a.kind < b.courtCode + b.kind ? -1 : 1)), overdueItems }
    },

    async agencies(query: { from?: string; to?: string; agency?: string }) {
      const now = new Date(deps.clock.nowMs())
      const to = query.to ?? shanghaiDate(now)
      const from = query.from ?? shanghaiDate(new Date(startOfShanghaiDay(to).getTime() - 29 * DAY_MS))
      if (from > to) throw supervisionError('bad_range', 400, `from (${from}) is after to (${to})`, { field: 'querystring.from' })
      const days = Math.round((startOfShanghaiDay(to).getTime() - startOfShanghaiDay(from).getTime()) / DAY_MS) + 1
      if (days > MAX_RANGE_DAYS) throw supervisionError('bad_range', 400, `at most ${MAX_RANGE_DAYS} days per call, asked for ${days}`, { field: 'querystring.from' })
      // Feedback on a hit is due by the end of the deadline's last day after the match day (China time).
      const dueDay = shanghaiDate(new Date(startOfShanghaiDay(shanghaiDate(now)).getTime() - (deps.feedbackDeadlineDays + 1) * DAY_MS))
      const range = {
        fromDay: from, toDay: to, from: startOfShanghaiDay(from), to: new Date(startOfShanghaiDay(to).getTime() + DAY_MS), dueDay, principalId: query.agency,
      }
      const [rows, measures] = await Promise.all([deps.repository.agencyDays(range), deps.repository.measureDays(range)])
      const byAgency = new Map<string, Map<string, AgencyDay>>()
      const dayOf = (agency: string, day: string) => {
        let m = byAgency.get(agency)
        if (!m) byAgency.set(agency, m = new Map())
        let d = m.get(day)
        if (!d) m.set(day, d = emptyDay(day))
        return d
      }
      for (const r of rows) {
        const d = dayOf(r.principal_id, r.day)
        Object.assign(d, {
          requests: r.requests, matches: r.subjects, hits: r.hits, overdue: r.overdue,
          decisions: { allow: r.allow, review: r.review, deny: r.deny },
          feedback: { received: r.feedback, restricted: r.restricted, allowedAfterReview: r.allowed_after_review, notApplicable: r.not_applicable },
        })
      }
      for (const m of measures) dayOf(m.principal_id, m.day).measuresApplied[m.code] = m.n
      const agencies: AgencyReport[] = [...byAgency].sort(([a], [b]) => (a < b ? -1 : 1)).map(([agency, m]) => {
        const list = [...m.values()].sort((a, b) => (a.day < b.day ? -1 : 1))
        const { day: _day, ...totals } = emptyDay('')
        for (const d of list) add(totals, d)
        return { agency, totals, days: list }
      })
      return { from, to, feedbackDeadlineDays: deps.feedbackDeadlineDays, asOf: now.toISOString(), agencies }
    },
  }
}

export type SupervisionService = ReturnType<typeof createSupervisionService>
