import { createErrorFactory } from '../../infra/errors.js'

/**
 * `calendar.year_not_covered` (500: a data file is missing, an operator must add calendars/cn-YYYY.json),
 * `calendar.invalid_data` (500: a data file fails its schema or a consistency rule),
 * `calendar.invalid_date` and `calendar.invalid_argument` (400: a caller passed a bad date or count).
 */
export const calendarError = createErrorFactory('calendar')
