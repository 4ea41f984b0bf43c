/**
 * Correction and credit-repair applications, pure: grounds, tracking codes, deadlines, and the
 * listing input a correction is applied through. Sources: domain.md §1.7 (revocation, correction,
 * deletion within 3 working days), §1.8 (the correction application and reconsideration, and the
 * counting of periods), §5 (credit repair).
 */
import { createHash, randomBytes } from 'node:crypto'
import { createErrorFactory } from '../../infra/errors.js'
import { DEADLINES, type IsoDate, type WorkingDayCalendar } from '../calendar/working-days.js'

export const applicationsError = createErrorFactory('applications')

export type ApplicationKind = 'appeal' | 'repair'

/** SPC-List Art. 11 (domain.md §1.8): the three grounds of a correction application. */
export const APPEAL_GROUNDS = {
  not_to_be_listed: 'SPC-List Art. 11(1): should not have been listed',
  inaccurate: 'SPC-List Art. 11(2): the published information is inaccurate',
  should_be_deleted: 'SPC-List Art. 11(3): the entry should already have been deleted',
} as const

/** Credit repair (domain.md §5; SPC-List Art. 10(1)–(3)): the debtor's evidence. */
export const REPAIR_GROUNDS = {
  full_performance: 'SPC-List Art. 10(1): the obligation has been performed',
  settlement_performed: 'SPC-List Art. 10(2): a settlement agreement has been fully performed',
  creditor_consent: "SPC-List Art. 10(3): the creditor's written application",
} as const

/**
 * Fields a court may correct on acceptance (SPC-List Art. 9: inaccurate entries are corrected).
 * Identifiers, the case number and the court are the listing's identity: a wrong one is a removal
 * (and a new listing), not a correction.
 */
export const CORRECTABLE_FIELDS = ['subjectName', 'obligation', 'performance', 'fullPerformanceOn', 'amountOutstanding', 'grounds', 'basis', 'filedOn'] as const
export type Correction = Partial<Record<(typeof CORRECTABLE_FIELDS)[number], unknown>>

/** Pending applications: the listing carries appealPending while one is open. */
export const PENDING_STATUSES = ['under_review', 'reconsideration'] as const

// Crockford base32: no I, L, O, U, so a code read aloud or retyped survives.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/**
 * An unguessable tracking code: 120 random bits as 24 base32 characters in groups of four
 * (e.g. `7KQ2-…`). Only its hash is stored, so the table does not give codes away.
 */
export function newTrackingCode(): string {
  const bytes = randomBytes(15)
  let bits = 0
  let value = 0
  let out = ''
  for (const b of bytes) {
    value = (value << 8) | b
    bits += 8
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  return out.match(/.{4}/g)!.join('-')
}

/** The stored form of a tracking code; undefined for text that cannot be one (no look-up then). */
export function trackingHash(code: string): string | undefined {
  const normalized = code.toUpperCase().replaceAll('-', '')
  if (!/^[0-9A-HJKMNP-TV-Z]{24}$/.test(normalized)) return undefined
  return createHash('sha256').update(normalized).digest('hex')
}

/** domain.md §1.8: the court decides within 15 days of receipt (CPL counting: start day not counted, a last day on a rest day moves to the next working day). */
export function reviewDueOn(calendar: WorkingDayCalendar, receivedOn: IsoDate): IsoDate {
  return calendar.deadline(DEADLINES.correctionApplicationReview, receivedOn)
}

/** §1.7/§1.8: a well-founded application is corrected within 3 working days of the decision. */
export function correctionDueOn(calendar: WorkingDayCalendar, decidedOn: IsoDate): IsoDate {
  return calendar.deadline(DEADLINES.correction, decidedOn)
}

/** §1.8: reconsideration may be asked within 10 days of service of the rejection (served on the decision day here). */
export function reconsiderationWindowEndsOn(calendar: WorkingDayCalendar, rejectedOn: IsoDate): IsoDate {
  return calendar.deadline(DEADLINES.reconsiderationFiling, rejectedOn)
}

/** §1.8: the higher court decides within 15 days of receipt. */
export function reconsiderationDueOn(calendar: WorkingDayCalendar, filedOn: IsoDate): IsoDate {
  return calendar.deadline(DEADLINES.reconsiderationDecision, filedOn)
}

/**
 * The listing input a stored record stands for (listings.models.ts normalizeListing's `record`),
 * with a court's correction applied: pushing it through the normal listing path updates the listing,
 * its change-log event and every reader (index, feed, partners).
 */
export function correctedInput(record: Record<string, unknown>, correction: Correction): Record<string, unknown> {
  // Only what a court pushes: the record also holds derived fields (a person's sex and birth date).
  const person = (p: unknown) => pick(p as Record<string, unknown>, ['name', 'idNumber', 'role'])
  const stored = record.subject as Record<string, unknown>
  const subject = pick(stored, ['kind', 'name', 'idNumber', 'creditCode', 'orgCode'])
  if (stored.legalRepresentative) subject.legalRepresentative = person(stored.legalRepresentative)
  if (typeof correction.subjectName === 'string') subject.name = correction.subjectName
  const input: Record<string, unknown> = {
    listKind: record.listKind, caseNumber: record.caseNumber, courtName: record.courtName, subject,
    restrictedPersons: Array.isArray(record.restrictedPersons) ? record.restrictedPersons.map(person) : undefined, basis: record.basis, obligation: record.obligation,
    performance: record.performance, fullPerformanceOn: record.fullPerformanceOn, amountOutstanding: record.amountOutstanding,
    grounds: record.grounds, filedOn: record.filedOn, publishedOn: record.publishedOn, graceUntil: record.graceUntil,
    convictedOfRefusal: record.convictedOfRefusal,
  }
  // A dishonest listing's period follows from its grounds and extension; a restriction order states its end.
  if (record.listKind === 'dishonest') input.extensionYears = record.extensionYears
  else input.periodEndsOn = record.periodEndsOn
  for (const f of CORRECTABLE_FIELDS) if (f !== 'subjectName' && f in correction) input[f] = correction[f]
  for (const [k, v] of Object.entries(input)) if (v === null || v === undefined || (Array.isArray(v) && v.length === 0 && k !== 'grounds') || (k === 'extensionYears' && v === 0) || (k === 'convictedOfRefusal' && v === false)) delete input[k]
  if (record.listKind !== 'dishonest') delete input.grounds
  return input
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of keys) if (o[k] !== undefined && o[k] !== null) out[k] = o[k]
  return out
}
