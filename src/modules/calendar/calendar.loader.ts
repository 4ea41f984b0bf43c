import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ValidateFunction } from 'ajv'
import { projectPath } from '../../infra/paths.js'
import { createAjv } from '../../infra/schemas.js'
import { calendarError } from './calendar.errors.js'
import { createWorkingDayCalendar, type CalendarYear, type WorkingDayCalendar } from './working-days.js'

/** calendars/ at the project root: one cn-YYYY.json per year (schemas/CalendarYear.json). */
export const CALENDARS_DIR = projectPath('calendars')
const FILE_NAME = /^cn-(\d{4})\.json$/

let validator: ValidateFunction | undefined

function validate(): ValidateFunction {
  // No coercion, no defaults: a data file is checked exactly as written.
  validator ??= createAjv({ coerceTypes: false, useDefaults: false, allErrors: true }).getSchema('CalendarYear')
  if (!validator) throw new Error('schema CalendarYear not found in schemas/')
  return validator
}

/** Checks one parsed data file against schemas/CalendarYear.json; `origin` names it in the error. */
export function parseCalendarYear(data: unknown, origin: string): CalendarYear {
  const check = validate()
  if (!check(data)) {
    const errors = (check.errors ?? []).map((e) => ({ field: e.instancePath || '/', message: e.message, params: e.params }))
    const first = errors[0]
    throw calendarError('invalid_data', 500, `${origin}: ${first ? `${first.field} ${first.message ?? 'invalid'}` : 'invalid'}`, { errors })
  }
  return data as CalendarYear
}

/** Reads and validates every calendars/cn-YYYY.json (the file name's year must be the file's `year`). */
export function loadCalendarYears(dir: string = CALENDARS_DIR): CalendarYear[] {
  return readdirSync(dir).filter((f) => FILE_NAME.test(f)).sort().map((f) => {
    let data: unknown
    try {
      data = JSON.parse(readFileSync(join(dir, f), 'utf8'))
    } catch (err) {
      throw calendarError('invalid_data', 500, `${f}: not valid JSON (${(err as Error).message})`)
    }
    const year = parseCalendarYear(data, f)
    if (String(year.year) !== FILE_NAME.exec(f)?.[1]) {
      throw calendarError('invalid_data', 500, `${f}: holds year ${year.year}, not the year in its name`)
    }
    return year
  })
}

/** The calendar built from calendars/ (or `dir`). Read once at startup; the result is pure. */
export function loadWorkingDayCalendar(dir: string = CALENDARS_DIR): WorkingDayCalendar {
  return createWorkingDayCalendar(loadCalendarYears(dir))
}
