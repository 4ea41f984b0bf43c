import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { AppError } from '../src/infra/errors.js'
import { projectPath } from '../src/infra/paths.js'
import { CALENDARS_DIR, loadCalendarYears, loadWorkingDayCalendar, parseCalendarYear } from '../src/modules/calendar/calendar.loader.js'
import {
  APPEAL_REVIEW_DAYS, DEADLINES, RECONSIDERATION_DECISION_DAYS, RECONSIDERATION_FILING_DAYS, REMOVAL_WORKING_DAYS,
  createWorkingDayCalendar, endOfShanghaiDay, shanghaiDate, type CalendarYear,
} from '../src/modules/calendar/working-days.js'

const years = loadCalendarYears()
const cal = createWorkingDayCalendar(years)
const year = (y: number) => {
  const found = years.find((c) => c.year === y)
  if (!found) throw new Error(`no ${y}`)
  return structuredClone(found)
}

/** The error code a call throws (fails the test when it does not throw an AppError). */
function codeOf(t: Test, fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    t.type(err, AppError)
    return (err as AppError).code
  }
  t.fail('expected an error')
  return undefined
}

t.test('both data files load, validate and name their source', async (t) => {
  t.equal(CALENDARS_DIR, projectPath('calendars'))
  t.same(years.map((y) => y.year), [2026, 2027])
  t.same(cal.years.map((y) => [y.year, y.status]), [[2026, 'official'], [2027, 'provisional']])
  for (const file of ['cn-2026.json', 'cn-2027.json']) {
    const data: unknown = JSON.parse(readFileSync(projectPath('calendars', file), 'utf8'))
    t.doesNotThrow(() => parseCalendarYear(data, file), `${file} matches schemas/CalendarYear.json`)
  }
  const y2026 = year(2026)
  t.equal(y2026.source.title, '国务院办公厅关于2026年部分节假日安排的通知')
  t.equal(y2026.source.published, '2025-11-04')
  t.equal(y2026.holidays.length, 33, '2026: 33 days off (3+9+3+5+3+3+7)')
  t.same(y2026.workingWeekends.map((w) => w.date), ['2026-01-04', '2026-02-14', '2026-02-28', '2026-05-09', '2026-09-20', '2026-10-10'])
  const y2027 = year(2027)
  t.same(y2027.workingWeekends, [], '2027: no 调休 until the notice is out')
  t.match(y2027.note, /provisional/i)
  t.ok(years.every((y) => y.note.length > 0))
  t.ok(loadWorkingDayCalendar().isWorkingDay('2026-11-23'), 'loadWorkingDayCalendar reads calendars/')
})

t.test('each year carries the 13 statutory days of 全国年节及纪念日放假办法 Art. 2 (2024 text)', async (t) => {
  for (const y of years) {
    const statutory = y.holidays.filter((h) => h.kind === 'statutory')
    const byName = (name: string) => statutory.filter((h) => h.name === name).map((h) => h.date)
    t.equal(statutory.length, 13, `${y.year}: 13 statutory days`)
    t.same(byName('元旦'), [`${y.year}-01-01`], `${y.year}: 元旦 1 January`)
    t.same(byName('劳动节'), [`${y.year}-05-01`, `${y.year}-05-02`], `${y.year}: 劳动节 1–2 May`)
    t.same(byName('国庆节'), [`${y.year}-10-01`, `${y.year}-10-02`, `${y.year}-10-03`], `${y.year}: 国庆节 1–3 October`)
    const spring = byName('春节')
    t.equal(spring.length, 4, `${y.year}: 春节 4 days (除夕 and 初一–初三)`)
    t.equal(cal.workingDaysBetween(spring[0]!, spring[3]!), 0)
    for (const one of ['清明节', '端午节', '中秋节']) t.equal(byName(one).length, 1, `${y.year}: ${one} 1 day`)
  }
  // Lunar and solar-term dates (converted with lunar-javascript, checked with astronomy-engine).
  const statutoryOf = (y: number, name: string) => year(y).holidays.filter((h) => h.kind === 'statutory' && h.name === name).map((h) => h.date)
  t.same(statutoryOf(2026, '春节'), ['2026-02-16', '2026-02-17', '2026-02-18', '2026-02-19'])
  t.same(statutoryOf(2027, '春节'), ['2027-02-05', '2027-02-06', '2027-02-07', '2027-02-08'])
  t.same([statutoryOf(2027, '清明节'), statutoryOf(2027, '端午节'), statutoryOf(2027, '中秋节')], [['2027-04-05'], ['2027-06-09'], ['2027-09-15']])
})

t.test('weekends are rest days, weekdays working days', async (t) => {
  t.equal(cal.isWorkingDay('2026-11-21'), false, 'Saturday')
  t.equal(cal.isWorkingDay('2026-11-22'), false, 'Sunday')
  t.equal(cal.isWorkingDay('2026-11-23'), true, 'Monday')
  t.equal(cal.isWorkingDay('2026-11-20'), true, 'Friday')
  t.same(cal.describe('2026-11-21'), { date: '2026-11-21', working: false, weekend: true, status: 'official' })
})

t.test('a holiday, including an arranged weekday off, is a rest day', async (t) => {
  t.equal(cal.isWorkingDay('2026-10-01'), false, 'National Day, Thursday')
  t.equal(cal.isWorkingDay('2026-10-07'), false, 'arranged day off, Wednesday')
  t.equal(cal.isWorkingDay('2026-01-02'), false, 'New Year break, Friday')
  t.equal(cal.isWorkingDay('2026-04-06'), false, 'Qingming falls on Sunday 5 April: Monday off')
  t.equal(cal.isWorkingDay('2026-10-08'), true, 'back to work after National Day')
  t.same(cal.describe('2026-02-17'), { date: '2026-02-17', working: false, weekend: false, holiday: '春节', status: 'official' })
  t.equal(cal.isWorkingDay('2027-02-05'), false, '2027 除夕 (provisional file)')
  t.equal(cal.isWorkingDay('2027-06-09'), false, '2027 端午, Wednesday')
})

t.test('a 调休 Saturday or Sunday is a working day', async (t) => {
  t.equal(cal.isWorkingDay('2026-02-14'), true, 'Saturday before the Spring Festival')
  t.equal(cal.isWorkingDay('2026-02-28'), true, 'Saturday after it')
  t.equal(cal.isWorkingDay('2026-09-20'), true, 'Sunday before National Day')
  t.equal(cal.isWorkingDay('2026-01-04'), true, 'Sunday after New Year')
  t.equal(cal.isWorkingDay('2026-02-21'), false, 'a Saturday inside the break stays off')
  t.same(cal.describe('2026-10-10'), { date: '2026-10-10', working: true, weekend: true, workingWeekend: '调休上班（国庆节）', status: 'official' })
})

t.test(`${REMOVAL_WORKING_DAYS} working days (SPC-List Art. 10): the start day is not counted`, async (t) => {
  t.equal(REMOVAL_WORKING_DAYS, 3)
  t.equal(cal.addWorkingDays('2026-11-19', 3), '2026-11-24', 'Thursday → Fri, Mon, Tue')
  t.equal(cal.addWorkingDays('2026-11-21', 3), '2026-11-25', 'from a Saturday: Mon, Tue, Wed')
  t.equal(cal.addWorkingDays('2026-11-23', 0), '2026-11-23')
  t.equal(cal.deadline(DEADLINES.deletion, '2026-11-19'), '2026-11-24')
})

t.test('3 working days across the 2026 Spring Festival break (15–23 Feb, 14 and 28 Feb worked)', async (t) => {
  t.equal(cal.addWorkingDays('2026-02-13', 3), '2026-02-25', 'Fri 13 → Sat 14 (调休), Tue 24, Wed 25')
  t.equal(cal.addWorkingDays('2026-02-12', 3), '2026-02-24', 'Thu 12 → Fri 13, Sat 14, Tue 24')
  t.equal(cal.addWorkingDays('2026-02-17', 3), '2026-02-26', 'recorded during the break → 24, 25, 26')
  t.equal(cal.addWorkingDays('2026-02-25', 3), '2026-02-28', 'Wed 25 → Thu 26, Fri 27, Sat 28 (调休)')
  t.equal(cal.workingDaysBetween('2026-02-13', '2026-02-25'), 3)
})

t.test('3 working days across the 2026 National Day break (1–7 Oct, 20 Sep and 10 Oct worked)', async (t) => {
  t.equal(cal.addWorkingDays('2026-09-30', 3), '2026-10-10', 'Wed 30 → Thu 8, Fri 9, Sat 10 (调休)')
  t.equal(cal.addWorkingDays('2026-09-18', 3), '2026-09-22', 'Fri 18 → Sun 20 (调休), Mon 21, Tue 22')
  t.equal(cal.addWorkingDays('2026-09-29', 3), '2026-10-09', 'Tue 29 → Wed 30, Thu 8, Fri 9')
  t.equal(cal.workingDaysBetween('2026-09-30', '2026-10-10'), 3)
})

t.test('workingDaysBetween counts (a, b], is the inverse of addWorkingDays, and is signed', async (t) => {
  t.equal(cal.workingDaysBetween('2026-11-23', '2026-11-23'), 0)
  t.equal(cal.workingDaysBetween('2026-10-10', '2026-09-30'), -3)
  t.equal(cal.workingDaysBetween('2025-12-31', '2026-12-31'), 248, '248 working days in 2026')
  for (const start of ['2026-01-01', '2026-02-10', '2026-04-30', '2026-09-19', '2026-12-24']) {
    for (const n of [1, 3, 10, 15]) t.equal(cal.workingDaysBetween(start, cal.addWorkingDays(start, n)), n, `${start} + ${n}`)
  }
})

t.test('periods in days follow the Civil Procedure Law rule (domain.md §1.8)', async (t) => {
  t.equal(cal.addCalendarDaysCpl('2026-11-02', APPEAL_REVIEW_DAYS), '2026-11-17', 'start not counted: Mon 2 Nov + 15 = Tue 17 Nov')
  t.equal(cal.addCalendarDaysCpl('2026-09-22', 10), '2026-10-08', 'last day 2 Oct, a holiday → first working day after the break')
  t.equal(cal.addCalendarDaysCpl('2026-11-06', 15), '2026-11-23', 'last day Saturday 21 Nov → Monday')
  t.equal(cal.addCalendarDaysCpl('2026-09-30', 10), '2026-10-10', 'last day a 调休 working Saturday: it stands')
  t.equal(cal.deadline(DEADLINES.reconsiderationFiling, '2026-02-10'), '2026-02-24', `${RECONSIDERATION_FILING_DAYS} days to file (Art. 12): 20 Feb is in the Spring Festival break`)
  t.equal(cal.deadline(DEADLINES.reconsiderationDecision, '2026-09-12'), '2026-09-28', `${RECONSIDERATION_DECISION_DAYS} days to decide: Sun 27 Sep (中秋) → Mon 28`)
  t.equal(cal.firstWorkingDayOnOrAfter('2026-10-03'), '2026-10-08')
  t.equal(cal.firstWorkingDayOnOrAfter('2026-10-08'), '2026-10-08')
})

t.test('a year no data file covers is an error, never a Mon–Fri guess', async (t) => {
  t.equal(codeOf(t, () => cal.isWorkingDay('2025-12-31')), 'calendar.year_not_covered')
  t.equal(codeOf(t, () => cal.addWorkingDays('2027-12-29', 5)), 'calendar.year_not_covered', 'a count running into 2028')
  t.equal(codeOf(t, () => cal.addCalendarDaysCpl('2027-12-20', 30)), 'calendar.year_not_covered')
  t.equal(codeOf(t, () => cal.workingDaysBetween('2026-06-01', '2028-01-05')), 'calendar.year_not_covered')
  const only2026 = createWorkingDayCalendar([year(2026)])
  t.equal(codeOf(t, () => only2026.addWorkingDays('2026-12-30', 3)), 'calendar.year_not_covered', 'needs 2027 as soon as it steps into it')
  t.equal(only2026.addWorkingDays('2026-12-24', 3), '2026-12-29', 'but not before')
  t.throws(() => cal.isWorkingDay('2028-03-01'), { code: 'calendar.year_not_covered', status: 500, message: /2028.*cn-2028\.json/s })
  t.equal(codeOf(t, () => createWorkingDayCalendar([]).isWorkingDay('2026-11-23')), 'calendar.year_not_covered')
})

t.test('provisional data is reported as such', async (t) => {
  t.equal(cal.statusOf('2026-06-01'), 'official')
  t.equal(cal.statusOf('2027-03-01'), 'provisional')
  t.equal(cal.statusOf('2026-12-28'), 'provisional', 'the 2027 notice may still change late December 2026')
  const official2027 = { ...year(2027), status: 'official' as const }
  t.equal(createWorkingDayCalendar([year(2026), official2027]).statusOf('2026-12-28'), 'official')
})

t.test('bad dates and counts are refused', async (t) => {
  for (const bad of ['2026-2-1', '2026-02-30', '20261123', '', 'tomorrow']) {
    t.equal(codeOf(t, () => cal.isWorkingDay(bad)), 'calendar.invalid_date', JSON.stringify(bad))
  }
  t.equal(codeOf(t, () => cal.addWorkingDays('2026-11-23', -1)), 'calendar.invalid_argument')
  t.equal(codeOf(t, () => cal.addWorkingDays('2026-11-23', 1.5)), 'calendar.invalid_argument')
  t.equal(codeOf(t, () => cal.addCalendarDaysCpl('2026-11-23', 0)), 'calendar.invalid_argument')
})

t.test('Asia/Shanghai dates from instants, whatever the host time zone', async (t) => {
  const tz = process.env.TZ
  t.teardown(() => {
    if (tz === undefined) delete process.env.TZ
    else process.env.TZ = tz
  })
  for (const zone of ['UTC', 'America/Los_Angeles', 'Asia/Shanghai']) {
    process.env.TZ = zone
    t.equal(shanghaiDate(new Date('2026-11-20T16:00:00Z')), '2026-11-21', `${zone}: 00:00 in Shanghai`)
    t.equal(shanghaiDate(new Date('2026-11-20T15:59:59.999Z')), '2026-11-20', `${zone}: 23:59:59.999 in Shanghai`)
    t.equal(endOfShanghaiDay('2026-11-24').toISOString(), '2026-11-24T16:00:00.000Z', `${zone}: a deadline day ends at 24:00 +08:00`)
    t.equal(cal.isWorkingDay('2026-11-22'), false, `${zone}: weekday arithmetic ignores the host zone`)
  }
  t.equal(codeOf(t, () => shanghaiDate(new Date('nope'))), 'calendar.invalid_date')
})

t.test('the schema rejects malformed data files', async (t) => {
  const good = (): Record<string, unknown> => structuredClone(year(2026)) as unknown as Record<string, unknown>
  const cases: [string, (y: Record<string, unknown>) => void][] = [
    ['missing source', (y) => { delete y.source }],
    ['unknown status', (y) => { y.status = 'draft' }],
    ['year as a string', (y) => { y.year = '2026' }],
    ['empty note', (y) => { y.note = '' }],
    ['impossible date', (y) => { (y.holidays as { date: string }[])[0]!.date = '2026-02-30' }],
    ['date in another format', (y) => { (y.holidays as { date: string }[])[0]!.date = '2026/01/01' }],
    ['holiday without kind', (y) => { delete (y.holidays as { kind?: string }[])[0]!.kind }],
    ['working weekend not named 调休上班', (y) => { (y.workingWeekends as { name: string }[])[0]!.name = '上班' }],
    ['extra field', (y) => { y.extra = true }],
    ['source url neither a URL nor "unknown"', (y) => { (y.source as { url: string }).url = 'gov.cn somewhere' }],
    ['source published neither a date nor "unknown"', (y) => { (y.source as { published: string }).published = 'November 2025' }],
  ]
  for (const [what, spoil] of cases) {
    const y = good()
    spoil(y)
    t.equal(codeOf(t, () => parseCalendarYear(y, 'cn-2026.json')), 'calendar.invalid_data', what)
  }
  const unknownSource = good()
  unknownSource.source = { title: 'x', documentNumber: 'unknown', published: 'unknown', url: 'unknown' }
  t.doesNotThrow(() => parseCalendarYear(unknownSource, 'x'), '"unknown" is accepted for source fields')
  t.throws(() => parseCalendarYear({ ...good(), status: 'draft' }, 'cn-2026.json'), { message: /^cn-2026\.json: \/status/ }, 'the error names the file and the field')
})

t.test('the loader refuses a bad file in the folder', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'calendars-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const write = (name: string, content: string) => writeFileSync(join(dir, name), content)

  write('cn-2026.json', JSON.stringify(year(2026)))
  write('README.md', 'not a calendar')
  t.same(loadCalendarYears(dir).map((y) => y.year), [2026], 'only cn-YYYY.json files are read')

  write('cn-2027.json', JSON.stringify({ ...year(2027), holidays: [{ date: '2027-01-01', name: '元旦' }] }))
  t.equal(codeOf(t, () => loadCalendarYears(dir)), 'calendar.invalid_data', 'malformed file')
  write('cn-2027.json', '{ "year": 2027, ')
  t.equal(codeOf(t, () => loadCalendarYears(dir)), 'calendar.invalid_data', 'not JSON')
  write('cn-2027.json', JSON.stringify(year(2026)))
  t.equal(codeOf(t, () => loadCalendarYears(dir)), 'calendar.invalid_data', 'year differs from the file name')
  write('cn-2027.json', JSON.stringify(year(2027)))
  t.same(loadWorkingDayCalendar(dir).years.map((y) => y.year), [2026, 2027])
})

t.test('the calendar refuses inconsistent data the schema cannot see', async (t) => {
  const invalid = (what: string, data: CalendarYear[]) =>
    t.equal(codeOf(t, () => createWorkingDayCalendar(data)), 'calendar.invalid_data', what)
  invalid('two files for one year', [year(2026), year(2026)])
  const weekday = year(2026)
  weekday.workingWeekends.push({ date: '2026-11-23', name: '调休上班（测试）' })
  invalid('a working "weekend" on a Monday', [weekday])
  const both = year(2026)
  both.workingWeekends.push({ date: '2026-02-21', name: '调休上班（春节）' })
  invalid('a day both off and worked', [both])
  const twice = year(2026)
  twice.holidays.push({ date: '2026-10-01', name: '国庆节', kind: 'statutory' })
  invalid('a day listed twice', [twice])
  const outside = year(2026)
  outside.holidays.push({ date: '2027-01-01', name: '元旦', kind: 'statutory' })
  invalid('a date in another year', [outside])
  const december = year(2027)
  december.workingWeekends.push({ date: '2026-12-27', name: '调休上班（元旦）' })
  const withDecember = createWorkingDayCalendar([year(2026), december])
  t.equal(withDecember.isWorkingDay('2026-12-27'), true, 'a notice may make a working day in December of the year before')
})

t.test('the deadline constants and their citations', async (t) => {
  t.same(
    Object.fromEntries(Object.entries(DEADLINES).map(([k, r]) => [k, `${r.amount} ${r.unit}`])),
    {
      revocation: '3 working_days',
      deletion: '3 working_days',
      correction: '3 working_days',
      correctionApplicationReview: '15 days',
      reconsiderationFiling: '10 days',
      reconsiderationDecision: '15 days',
      listingApplicationDecision: '15 days',
    },
  )
  for (const rule of Object.values(DEADLINES)) t.match(rule.citation, /^SPC-List Arts?\. \d/)
})
