import { createHash } from 'node:crypto'
import {
  GRACE_PERIOD_MAX_MONTHS, LISTING_PERIOD_YEARS, REMOVAL_WORKING_DAYS, type IsoDate, type WorkingDayCalendar,
} from '../calendar/working-days.js'
import { matchKeysForCreditCode, matchKeyForOrgCode, parseCaseNumber, parseCreditCode, parseOrgCode, parseResidentId } from '../identity/identity.models.js'

export type ListKind = 'dishonest' | 'restricted'
export type ListingStatus = 'pending' | 'published' | 'removed'

/** SPC-List Art. 1 (2017 text): the six grounds for listing. */
export const GROUNDS = {
  G1: '有履行能力而拒不履行生效法律文书确定义务',
  G2: '以伪造证据、暴力、威胁等方法妨碍、抗拒执行',
  G3: '以虚假诉讼、虚假仲裁或者以隐匿、转移财产等方法规避执行',
  G4: '违反财产报告制度',
  G5: '违反限制消费令',
  G6: '无正当理由拒不履行执行和解协议',
} as const
export type Ground = keyof typeof GROUNDS

/**
 * Why a listing stops being public and matchable (domain.md §1.7, §5). `expired` is set by the
 * system only; the others by the court.
 */
export const REMOVAL_REASONS = {
  revoked: 'SPC-List Art. 9: wrongly listed, revoked',
  performed: 'SPC-List Art. 10(1): obligation performed or enforcement complete',
  settlement_performed: 'SPC-List Art. 10(2): settlement agreement reached and fully performed',
  creditor_application: "SPC-List Art. 10(3): creditor's written application approved",
  no_assets_after_termination: 'SPC-List Art. 10(4): no assets found after termination of this round of enforcement',
  enforcement_suspended: 'SPC-List Art. 10(5): enforcement suspended (trial supervision or bankruptcy)',
  not_enforced: 'SPC-List Art. 10(6): ruled not to be enforced',
  enforcement_terminated: 'SPC-List Art. 10(7): enforcement terminated',
  early_deletion: 'SPC-List Art. 2 para 2: early deletion for active performance or correction',
  corrected: 'SPC-List Art. 11: correction application accepted',
  credit_repair: 'credit repair (信用修复) approved',
  restriction_lifted: 'SPC-Consume Art. 9: consumption restriction lifted',
  expired: 'the listing period ended (removed by the system)',
} as const
export type RemovalReason = keyof typeof REMOVAL_REASONS
export const COURT_REMOVAL_REASONS = (Object.keys(REMOVAL_REASONS) as RemovalReason[]).filter((r) => r !== 'expired')

/** SPC-List Art. 4: a minor is never listed (and domain.md §4.2 rejects such records). */
export const ADULT_AGE_YEARS = 18

export type MatchRole = 'debtor' | 'legalRepresentative' | 'restrictedPerson'
/**
 * One identifier a listing matches by. The type is part of the key: the same 18 characters can be
 * a valid resident id and a valid credit code, and must not match across the two.
 */
export interface MatchKey { type: 'idNumber' | 'creditCode' | 'orgCode'; key: string; role: MatchRole; name: string }

export interface ListingOfficerInput { name: string; idNumber?: string; role?: 'legalRepresentative' | 'principal' | 'directlyResponsible' | 'actualController' }
export interface ListingInput {
  listKind: ListKind
  caseNumber: string
  courtName: string
  subject: { kind: 'person' | 'entity'; name: string; idNumber?: string; creditCode?: string; orgCode?: string; legalRepresentative?: ListingOfficerInput }
  restrictedPersons?: ListingOfficerInput[]
  basis?: { issuer: string; documentNumber: string }
  obligation?: string
  performance: 'none' | 'partial' | 'full'
  fullPerformanceOn?: IsoDate
  amountOutstanding?: number
  grounds?: Ground[]
  filedOn?: IsoDate
  publishedOn: IsoDate
  graceUntil?: IsoDate
  extensionYears?: number
  periodEndsOn?: IsoDate
  convictedOfRefusal?: boolean
}

/** A listing after validation and normalization, ready to store. */
export interface NormalizedListing {
  listKind: ListKind
  courtCode: string
  courtName: string
  caseNumber: string
  caseNumberRaw: string
  subjectKind: 'person' | 'entity'
  subjectId: string
  subjectName: string
  grounds: Ground[]
  publishedOn: IsoDate
  graceUntil: IsoDate | null
  periodEndsOn: IsoDate | null
  fullPerformanceOn: IsoDate | null
  removalDueOn: IsoDate | null
  matchKeys: MatchKey[]
  /** Everything pushed, normalized (identifiers in canonical form). */
  record: Record<string, unknown>
  contentHash: string
}

export interface FieldError { field: string; code: string; message: string }

export type NormalizeResult = { ok: true; listing: NormalizedListing; warnings: FieldError[] } | { ok: false; errors: FieldError[] }

export interface NormalizeContext {
  /** Today in China (Asia/Shanghai), for grace, period and minor checks. */
  today: IsoDate
  calendar: WorkingDayCalendar
  /** Court code to use for a legacy (pre-2016) case number, which does not carry one. */
  defaultCourtCode: string
}

export function addYears(date: IsoDate, years: number): IsoDate {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number]
  // 29 February plus whole years lands on 1 March in a common year (the period runs a full term).
  const result = new Date(Date.UTC(y + years, m - 1, d))
  return result.toISOString().slice(0, 10)
}

export function addMonths(date: IsoDate, months: number): IsoDate {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number]
  return new Date(Date.UTC(y, m - 1 + months, d)).toISOString().slice(0, 10)
}

function age(birthDate: IsoDate, on: IsoDate): number {
  const [by, bm, bd] = birthDate.split('-').map(Number) as [number, number, number]
  const [y, m, d] = on.split('-').map(Number) as [number, number, number]
  return y - by - (m < bm || (m === bm && d < bd) ? 1 : 0)
}

/**
 * Validates one pushed listing and normalizes it: identifiers to canonical form, the case number
 * to full-width brackets, the listing period from its grounds, the match keys of everyone it binds.
 * Pure: the same input and context give the same result.
 */
export function normalizeListing(input: ListingInput, ctx: NormalizeContext): NormalizeResult {
  const errors: FieldError[] = []
  const warnings: FieldError[] = []
  const err = (field: string, code: string, message: string) => { errors.push({ field, code, message }) }

  const caseNumber = parseCaseNumber(input.caseNumber)
  let courtCode = ctx.defaultCourtCode
  let normalizedCase = input.caseNumber.trim()
  if (!caseNumber.ok) err('caseNumber', caseNumber.code, caseNumber.message)
  else {
    normalizedCase = caseNumber.value
    if (!caseNumber.legacy) courtCode = caseNumber.courtCode
    else warnings.push({ field: 'caseNumber', code: 'identity.case_number_legacy', message: 'pre-2016 case number: the court is taken to be the pushing court' })
  }

  const matchKeys: MatchKey[] = []
  let subjectId = ''
  let birthDate: string | undefined
  const subject: Record<string, unknown> = { kind: input.subject.kind, name: input.subject.name.trim() }
  if (input.subject.kind === 'person') {
    if (input.subject.creditCode || input.subject.orgCode || input.subject.legalRepresentative) {
      err('subject', 'listings.subject_kind', 'a person has an idNumber, not a creditCode, orgCode or legalRepresentative')
    }
    if (!input.subject.idNumber) err('subject.idNumber', 'listings.required', 'a person needs an idNumber')
    else {
      const id = parseResidentId(input.subject.idNumber, { today: ctx.today })
      if (!id.ok) err('subject.idNumber', id.code, id.message)
      else {
        subjectId = id.value
        birthDate = id.birthDate
        subject.idNumber = id.value
        subject.sex = id.sex
        subject.birthDate = id.birthDate
        matchKeys.push({ type: 'idNumber', key: id.value, role: 'debtor', name: subject.name as string })
      }
    }
  } else {
    if (input.subject.idNumber) err('subject.idNumber', 'listings.subject_kind', 'an entity has a creditCode (or orgCode), not an idNumber')
    if (input.subject.creditCode) {
      const code = parseCreditCode(input.subject.creditCode)
      if (!code.ok) err('subject.creditCode', code.code, code.message)
      else {
        subjectId = code.value
        subject.creditCode = code.value
        subject.orgCode = code.orgCode
        for (const w of code.warnings) warnings.push({ field: 'subject.creditCode', code: w, message: 'the embedded organisation code check character is wrong (kept: a warning, domain.md §6.2)' })
        const [creditKey, orgKey] = matchKeysForCreditCode(code.value)
        matchKeys.push({ type: 'creditCode', key: creditKey, role: 'debtor', name: subject.name as string })
        matchKeys.push({ type: 'orgCode', key: orgKey, role: 'debtor', name: subject.name as string })
      }
    } else if (input.subject.orgCode) {
      const org = parseOrgCode(input.subject.orgCode)
      if (!org.ok) err('subject.orgCode', org.code, org.message)
      else {
        subjectId = matchKeyForOrgCode(org.value)
        subject.orgCode = org.value
        matchKeys.push({ type: 'orgCode', key: subjectId, role: 'debtor', name: subject.name as string })
      }
    } else {
      err('subject.creditCode', 'listings.required', 'an entity needs a creditCode (or a legacy orgCode)')
    }
    if (!input.subject.legalRepresentative) err('subject.legalRepresentative', 'listings.required', "an entity's legal representative is recorded (SPC-List Art. 6)")
  }

  // An entity's officers: matchable as restricted persons, never as listed debtors (SPC-Goodwill Art. 16).
  const officer = (o: ListingOfficerInput, field: string, role: MatchRole) => {
    const out: Record<string, unknown> = { name: o.name.trim(), role: o.role ?? (role === 'legalRepresentative' ? 'legalRepresentative' : undefined) }
    if (o.idNumber) {
      const id = parseResidentId(o.idNumber, { today: ctx.today })
      if (!id.ok) err(`${field}.idNumber`, id.code, id.message)
      else {
        out.idNumber = id.value
        if (id.value === subjectId) err(`${field}.idNumber`, 'listings.officer_is_subject', 'an officer cannot be the subject itself')
        else matchKeys.push({ type: 'idNumber', key: id.value, role, name: out.name as string })
      }
    }
    return out
  }
  if (input.subject.kind === 'entity' && input.subject.legalRepresentative) {
    subject.legalRepresentative = officer(input.subject.legalRepresentative, 'subject.legalRepresentative', 'legalRepresentative')
  }
  const restrictedPersons = (input.restrictedPersons ?? []).map((p, i) => officer(p, `restrictedPersons.${i}`, 'restrictedPerson'))
  if (restrictedPersons.length > 0 && input.subject.kind !== 'entity') {
    err('restrictedPersons', 'listings.subject_kind', "restricted persons are an entity's officers (SPC-Consume Art. 3 para 2)")
  }
  const seenKeys = new Set<string>()
  for (const [i, k] of matchKeys.entries()) {
    if (seenKeys.has(`${k.type}:${k.key}`)) err(i === 0 ? 'subject' : 'restrictedPersons', 'listings.duplicate_person', `the same identifier appears twice in one listing`)
    seenKeys.add(`${k.type}:${k.key}`)
  }

  // Grounds and period: SPC-List Arts. 1–2.
  const grounds = [...(input.grounds ?? [])].sort()
  if (input.listKind === 'dishonest' && grounds.length === 0) err('grounds', 'listings.grounds_required', 'a dishonest listing states at least one ground of SPC-List Art. 1 (G1–G6)')
  if (input.listKind === 'restricted' && grounds.length > 0) err('grounds', 'listings.grounds_not_applicable', 'grounds belong to the dishonest list; a restriction order states none')
  if (input.listKind === 'dishonest' && input.periodEndsOn) err('periodEndsOn', 'listings.period_computed', 'a dishonest listing period follows from its grounds (SPC-List Art. 2); send extensionYears instead')
  if (input.listKind === 'restricted' && input.extensionYears) err('extensionYears', 'listings.grounds_not_applicable', 'extensions apply to dishonest listings (SPC-List Art. 2)')
  const openEnded = grounds.includes('G1')
  if (openEnded && input.extensionYears) err('extensionYears', 'listings.extension_not_applicable', 'a G1 listing has no fixed period to extend (SPC-List Art. 2)')

  if (input.filedOn && input.filedOn > input.publishedOn) err('filedOn', 'listings.dates', 'filedOn is after publishedOn')
  if (input.publishedOn > ctx.today) err('publishedOn', 'listings.dates', 'publishedOn is in the future')
  let graceUntil: IsoDate | null = null
  if (input.graceUntil) {
    // SPC-Goodwill Art. 15: the court may allow 1–3 months before publishing.
    if (input.graceUntil <= input.publishedOn) err('graceUntil', 'listings.grace_period', 'graceUntil must be after publishedOn')
    else if (input.graceUntil > addMonths(input.publishedOn, GRACE_PERIOD_MAX_MONTHS)) err('graceUntil', 'listings.grace_period', `a grace period is at most ${GRACE_PERIOD_MAX_MONTHS} months (SPC-Goodwill Art. 15)`)
    else graceUntil = input.graceUntil
  }
  const start = graceUntil ?? input.publishedOn
  let periodEndsOn: IsoDate | null = null
  if (input.listKind === 'dishonest' && !openEnded && grounds.length > 0) {
    // SPC-List Art. 2: 2 years for G2–G6, extendable by 1–3 years.
    periodEndsOn = addYears(start, LISTING_PERIOD_YEARS + (input.extensionYears ?? 0))
  } else if (input.listKind === 'restricted' && input.periodEndsOn) {
    if (input.periodEndsOn <= start) err('periodEndsOn', 'listings.period_before_publication', 'periodEndsOn must be after publication (and after any grace period)')
    else periodEndsOn = input.periodEndsOn
  }
  if (periodEndsOn && periodEndsOn <= ctx.today && errors.length === 0) {
    err(input.listKind === 'dishonest' ? 'publishedOn' : 'periodEndsOn', 'listings.period_ended', `the listing period ended on ${periodEndsOn}; nothing to publish`)
  }
  // SPC-List Art. 4: a minor is never listed.
  if (birthDate && age(birthDate, input.publishedOn) < ADULT_AGE_YEARS) err('subject.idNumber', 'listings.minor', 'the debtor was under 18 on the publication date (SPC-List Art. 4)')

  // Full performance recorded: the court must remove within 3 working days (SPC-List Art. 10).
  let fullPerformanceOn: IsoDate | null = null
  let removalDueOn: IsoDate | null = null
  if (input.performance === 'full') {
    fullPerformanceOn = input.fullPerformanceOn ?? ctx.today
    if (fullPerformanceOn > ctx.today) err('fullPerformanceOn', 'listings.dates', 'fullPerformanceOn is in the future')
    else {
      try { removalDueOn = ctx.calendar.addWorkingDays(fullPerformanceOn, REMOVAL_WORKING_DAYS) } catch (e) { err('fullPerformanceOn', 'calendar.year_not_covered', (e as Error).message) }
    }
  } else if (input.fullPerformanceOn) err('fullPerformanceOn', 'listings.dates', 'fullPerformanceOn is only for performance "full"')

  if (errors.length > 0) return { ok: false, errors }

  const record: Record<string, unknown> = {
    listKind: input.listKind,
    caseNumber: normalizedCase,
    courtCode,
    courtName: input.courtName.trim(),
    subject,
    restrictedPersons,
    basis: input.basis ?? null,
    obligation: input.obligation ?? null,
    performance: input.performance,
    fullPerformanceOn,
    amountOutstanding: input.amountOutstanding ?? null,
    grounds,
    filedOn: input.filedOn ?? null,
    publishedOn: input.publishedOn,
    graceUntil,
    extensionYears: input.extensionYears ?? 0,
    periodEndsOn,
    convictedOfRefusal: input.convictedOfRefusal ?? false,
  }
  return {
    ok: true,
    warnings,
    listing: {
      listKind: input.listKind, courtCode, courtName: record.courtName as string, caseNumber: normalizedCase, caseNumberRaw: input.caseNumber,
      subjectKind: input.subject.kind, subjectId, subjectName: subject.name as string, grounds, publishedOn: input.publishedOn,
      graceUntil, periodEndsOn, fullPerformanceOn, removalDueOn, matchKeys, record,
      // Insertion order above is fixed, so equal records serialize identically.
      contentHash: createHash('sha256').update(JSON.stringify(record)).digest('base64url'),
    },
  }
}

/** The status a newly pushed listing takes: pending during a grace period (SPC-Goodwill Art. 15). */
export function initialStatus(listing: Pick<NormalizedListing, 'graceUntil'>, today: IsoDate): Exclude<ListingStatus, 'removed'> {
  return listing.graceUntil && listing.graceUntil > today ? 'pending' : 'published'
}
