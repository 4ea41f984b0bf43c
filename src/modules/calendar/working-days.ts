/**
 * The working-day calendar: Chinese public holidays and adjusted working days (调休) from the
 * State Council's annual notice, one data file per year (calendars/cn-YYYY.json, read by
 * calendar.loader.ts). Deadlines in the lists' rules are counted on it (domain.md §1.7, §1.8,
 * §1.10: "compute these from the State Council holiday calendar, including make-up working days
 * (调休), not from a plain Mon–Fri calendar").
 *
 * Pure: no I/O, no clock. Every date is an Asia/Shanghai calendar date written 'YYYY-MM-DD'
 * (`IsoDate`); turn an instant into one with `shanghaiDate()`, and a deadline date into the
 * instant it runs out with `endOfShanghaiDay()`. A date in a year that no data file covers is an
 * error (`calendar.year_not_covered`): the calendar never falls back to Mon–Fri.
 */
import { calendarError } from './calendar.errors.js'

/** An Asia/Shanghai calendar date, 'YYYY-MM-DD'. */
export type IsoDate = string

export type CalendarStatus = 'official' | 'provisional'

export interface CalendarSource {
  title: string
  /** e.g. 国办发明电〔2025〕7号, or "unknown". */
  documentNumber: string
  /** 'YYYY-MM-DD' or "unknown". */
  published: string
  /** The official text, or "unknown". */
  url: string
}

export interface CalendarHoliday {
  date: IsoDate
  /** The festival, e.g. 春节. */
  name: string
  /** statutory: a day 全国年节及纪念日放假办法 Art. 2 gives; arranged: a day off the notice adds. */
  kind: 'statutory' | 'arranged'
}

export interface CalendarWorkingWeekend {
  date: IsoDate
  /** '调休上班（festival）'. */
  name: string
}

/** One data file, schemas/CalendarYear.json. */
export interface CalendarYear {
  year: number
  source: CalendarSource
  status: CalendarStatus
  note: string
  /** Every day off the notice gives, weekend days inside a break included. */
  holidays: CalendarHoliday[]
  /** Saturdays and Sundays made working days (调休上班). */
  workingWeekends: CalendarWorkingWeekend[]
}

export interface DayInfo {
  date: IsoDate
  working: boolean
  weekend: boolean
  /** Festival name when the day is a holiday. */
  holiday?: string
  /** Set when a weekend day is a working day by 调休. */
  workingWeekend?: string
  /** Whether the answer rests on an official notice (see `statusOf`). */
  status: CalendarStatus
}

export interface WorkingDayCalendar {
  /** The years covered, ascending. */
  readonly years: readonly Pick<CalendarYear, 'year' | 'status' | 'source'>[]
  isWorkingDay(date: IsoDate): boolean
  describe(date: IsoDate): DayInfo
  /**
   * 'provisional' when the date's year file is provisional, or when the date is in December and the
   * next year's file is missing or provisional (the next notice may still start its New Year break
   * or a 调休上班 in late December). Throws for an uncovered year.
   */
  statusOf(date: IsoDate): CalendarStatus
  /**
   * The end of a period of `n` working days starting on `start`: the start day is not counted, so
   * "within 3 working days" of day D ends on the 3rd working day after D (at the end of that day).
   * `n` = 0 gives `start`.
   */
  addWorkingDays(start: IsoDate, n: number): IsoDate
  /**
   * The last day of a period of `n` days (n ≥ 1) under the Civil Procedure Law's rule (domain.md
   * §1.8; CPL Art. 85 in the 2021/2023 texts): the start day is not counted, and when the last day
   * is a rest day (a weekend not made a working day by 调休, or a holiday) the period ends on the
   * first working day after it.
   */
  addCalendarDaysCpl(start: IsoDate, n: number): IsoDate
  /**
   * Working days d with a < d ≤ b (negative, the same count reversed, when b < a). So
   * workingDaysBetween(a, addWorkingDays(a, n)) === n.
   */
  workingDaysBetween(a: IsoDate, b: IsoDate): number
  /** `date` if it is a working day, else the first working day after it. */
  firstWorkingDayOnOrAfter(date: IsoDate): IsoDate
  /** The last day of a deadline rule's period starting on `start` (its unit picks the counting). */
  deadline(rule: DeadlineRule, start: IsoDate): IsoDate
}

// ---------------------------------------------------------------------------------------------
// Deadlines the domain lists (domain.md §1.2, §1.4, §1.7, §1.8, §11). SPC-List = 最高人民法院关于公布
// 失信被执行人名单信息的若干规定 (法释〔2013〕17号 as amended by 法释〔2017〕7号), 2017 numbering.

/**
 * Revocation of a wrong listing (SPC-List Art. 9), deletion when a ground of Art. 10 applies
 * (performance, performed settlement, creditor's application, …, and a fixed-term listing after its
 * period expires): within 3 working days.
 */
export const REMOVAL_WORKING_DAYS = 3
/** Correction of inaccurate published information (SPC-List Art. 9), and of a well-founded correction application (Art. 11): within 3 working days. */
export const CORRECTION_WORKING_DAYS = 3
/** The court reviews a written correction application (SPC-List Art. 11): 15 days from receipt. */
export const APPEAL_REVIEW_DAYS = 15
/** Reconsideration (复议) to the next-higher court after a rejection (SPC-List Art. 12): within 10 days of service. */
export const RECONSIDERATION_FILING_DAYS = 10
/** The higher court decides the reconsideration (SPC-List Art. 12): within 15 days of receipt. */
export const RECONSIDERATION_DECISION_DAYS = 15
/** The court rules on a creditor's application to list (SPC-List Art. 5): within 15 days. */
export const LISTING_APPLICATION_DECISION_DAYS = 15
/** Listing period for grounds G2–G6 (SPC-List Art. 2); G1 has none. Years, not counted on this calendar. */
export const LISTING_PERIOD_YEARS = 2
/** Extension of a G2–G6 listing (SPC-List Art. 2): by 1 to 3 years. */
export const LISTING_EXTENSION_MIN_YEARS = 1
export const LISTING_EXTENSION_MAX_YEARS = 3
/** Grace period before publication (SPC-Goodwill, 法发〔2019〕35号, Art. 15): 1 to 3 months. */
export const GRACE_PERIOD_MIN_MONTHS = 1
export const GRACE_PERIOD_MAX_MONTHS = 3

export type DeadlineUnit = 'working_days' | 'days'

export interface DeadlineRule {
  readonly amount: number
  /** working_days: counted with addWorkingDays; days: with addCalendarDaysCpl. */
  readonly unit: DeadlineUnit
  readonly citation: string
}

/** The day-counted deadlines, for code that computes them by name. */
export const DEADLINES = {
  revocation: { amount: REMOVAL_WORKING_DAYS, unit: 'working_days', citation: 'SPC-List Art. 9' },
  deletion: { amount: REMOVAL_WORKING_DAYS, unit: 'working_days', citation: 'SPC-List Art. 10' },
  correction: { amount: CORRECTION_WORKING_DAYS, unit: 'working_days', citation: 'SPC-List Arts. 9, 11' },
  correctionApplicationReview: { amount: APPEAL_REVIEW_DAYS, unit: 'days', citation: 'SPC-List Art. 11' },
  reconsiderationFiling: { amount: RECONSIDERATION_FILING_DAYS, unit: 'days', citation: 'SPC-List Art. 12' },
  reconsiderationDecision: { amount: RECONSIDERATION_DECISION_DAYS, unit: 'days', citation: 'SPC-List Art. 12' },
  listingApplicationDecision: { amount: LISTING_APPLICATION_DECISION_DAYS, unit: 'days', citation: 'SPC-List Art. 5' },
} as const satisfies Record<string, DeadlineRule>

// ---------------------------------------------------------------------------------------------
// Dates. Internally a date is its day number (days since 1970-01-01); weekday and arithmetic are
// done in UTC on that number, so the host's time zone never matters.

const DAY_MS = 86_400_000
/** China Standard Time: UTC+8, no daylight saving since 1991. */
const SHANGHAI_OFFSET_MS = 8 * 3_600_000
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/

/** Whether `s` is a real calendar date written 'YYYY-MM-DD'. */
export function isIsoDate(s: unknown): s is IsoDate {
  return typeof s === 'string' && dayNumberOrNull(s) !== null
}

function dayNumberOrNull(s: string): number | null {
  const m = ISO_DATE.exec(s)
  if (!m) return null
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const ms = Date.UTC(y, mo - 1, d)
  const back = new Date(ms)
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return null
  return ms / DAY_MS
}

function dayNumber(date: IsoDate, field = 'date'): number {
  const n = typeof date === 'string' ? dayNumberOrNull(date) : null
  if (n === null) throw calendarError('invalid_date', 400, `${field}: expected a calendar date 'YYYY-MM-DD', got ${JSON.stringify(date)}`, { field })
  return n
}

const toIso = (n: number): IsoDate => new Date(n * DAY_MS).toISOString().slice(0, 10)
const yearOf = (n: number) => new Date(n * DAY_MS).getUTCFullYear()
const monthOf = (n: number) => new Date(n * DAY_MS).getUTCMonth() + 1
/** 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday). */
const weekdayOf = (n: number) => (((n + 4) % 7) + 7) % 7
const isWeekend = (n: number) => weekdayOf(n) === 0 || weekdayOf(n) === 6

/** The Asia/Shanghai calendar date of an instant. */
export function shanghaiDate(instant: Date): IsoDate {
  const ms = instant.getTime()
  if (Number.isNaN(ms)) throw calendarError('invalid_date', 400, 'shanghaiDate: invalid Date')
  return new Date(ms + SHANGHAI_OFFSET_MS).toISOString().slice(0, 10)
}

/** The instant a date begins in Asia/Shanghai (00:00 +08:00). */
export function startOfShanghaiDay(date: IsoDate): Date {
  return new Date(dayNumber(date) * DAY_MS - SHANGHAI_OFFSET_MS)
}

/** The instant a date ends in Asia/Shanghai (the next day's 00:00 +08:00): a deadline on `date` has passed at or after it. */
export function endOfShanghaiDay(date: IsoDate): Date {
  return new Date((dayNumber(date) + 1) * DAY_MS - SHANGHAI_OFFSET_MS)
}

function nonNegativeInteger(n: number, field: string, min = 0): number {
  if (!Number.isSafeInteger(n) || n < min) {
    throw calendarError('invalid_argument', 400, `${field}: expected an integer ≥ ${min}, got ${String(n)}`, { field })
  }
  return n
}

// ---------------------------------------------------------------------------------------------

function invalidData(message: string) {
  return calendarError('invalid_data', 500, `calendar data: ${message}`)
}

/**
 * Builds the calendar from the year files. Checks what the schema cannot: one file per year, an
 * entry in its file's year (or in December of the year before, where a notice may start its New
 * Year break), working weekends on a Saturday or Sunday, no date listed twice or as both a holiday
 * and a working day.
 */
export function createWorkingDayCalendar(years: readonly CalendarYear[]): WorkingDayCalendar {
  const byYear = new Map<number, CalendarYear>()
  const holidays = new Map<number, string>()
  const workingWeekends = new Map<number, string>()

  for (const y of years) {
    if (byYear.has(y.year)) throw invalidData(`two files for ${y.year}`)
    byYear.set(y.year, y)
  }
  for (const y of byYear.values()) {
    const place = (date: string, what: string): number => {
      const n = dayNumberOrNull(date)
      if (n === null) throw invalidData(`${y.year}: ${what} ${JSON.stringify(date)} is not a calendar date`)
      const inYear = yearOf(n) === y.year || (yearOf(n) === y.year - 1 && monthOf(n) === 12)
      if (!inYear) throw invalidData(`${y.year}: ${what} ${date} is outside the file's year`)
      if (holidays.has(n) || workingWeekends.has(n)) throw invalidData(`${y.year}: ${date} is listed twice`)
      return n
    }
    for (const h of y.holidays) holidays.set(place(h.date, 'holiday'), h.name)
    for (const w of y.workingWeekends) {
      const n = place(w.date, 'working weekend')
      if (!isWeekend(n)) throw invalidData(`${y.year}: working weekend ${w.date} is not a Saturday or Sunday`)
      workingWeekends.set(n, w.name)
    }
  }

  const covered = (n: number) => {
    const year = yearOf(n)
    if (!byYear.has(year)) {
      const have = [...byYear.keys()].sort((a, b) => a - b).join(', ') || 'none'
      throw calendarError('year_not_covered', 500,
        `no working-day calendar for ${year} (asked about ${toIso(n)}; years covered: ${have}); add calendars/cn-${year}.json from the State Council notice`)
    }
    return year
  }

  const working = (n: number): boolean => {
    covered(n)
    if (holidays.has(n)) return false
    if (workingWeekends.has(n)) return true
    return !isWeekend(n)
  }

  const status = (n: number): CalendarStatus => {
    const year = covered(n)
    if (byYear.get(year)?.status === 'provisional') return 'provisional'
    if (monthOf(n) === 12 && byYear.get(year + 1)?.status !== 'official') return 'provisional'
    return 'official'
  }

  const countBetween = (from: number, to: number): number => {
    let count = 0
    for (let d = from + 1; d <= to; d++) if (working(d)) count++
    return count
  }

  const calendar: WorkingDayCalendar = {
    years: [...byYear.values()].sort((a, b) => a.year - b.year).map(({ year, status, source }) => ({ year, status, source })),

    isWorkingDay: (date) => working(dayNumber(date)),

    describe(date) {
      const n = dayNumber(date)
      const info: DayInfo = { date: toIso(n), working: working(n), weekend: isWeekend(n), status: status(n) }
      const holiday = holidays.get(n)
      const ww = workingWeekends.get(n)
      if (holiday !== undefined) info.holiday = holiday
      if (ww !== undefined) info.workingWeekend = ww
      return info
    },

    statusOf: (date) => status(dayNumber(date)),

    addWorkingDays(start, n) {
      let d = dayNumber(start, 'start')
      let left = nonNegativeInteger(n, 'n')
      while (left > 0) {
        d++
        if (working(d)) left--
      }
      return toIso(d)
    },

    addCalendarDaysCpl(start, n) {
      let d = dayNumber(start, 'start') + nonNegativeInteger(n, 'n', 1)
      while (!working(d)) d++
      return toIso(d)
    },

    workingDaysBetween(a, b) {
      const from = dayNumber(a, 'a')
      const to = dayNumber(b, 'b')
      return from <= to ? countBetween(from, to) : -countBetween(to, from)
    },

    firstWorkingDayOnOrAfter(date) {
      let d = dayNumber(date)
      while (!working(d)) d++
      return toIso(d)
    },

    deadline(rule, start) {
      return rule.unit === 'working_days' ? calendar.addWorkingDays(start, rule.amount) : calendar.addCalendarDaysCpl(start, rule.amount)
    },
  }
  return calendar
}
