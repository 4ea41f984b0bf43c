/**
 * Identifiers of listed subjects and of cases: parsing, normalisation, check characters, match keys,
 * masking for display and keyed hashing for logs. Pure: no I/O, no database, no clock except the
 * default "today" of the birth-date check (pass `today` to make it deterministic).
 *
 * Sources: ../shared/domain.md §6 (algorithms and verified examples), §7.1 (masking), §8 (normalise
 * on ingest), §11 (entity codes shown in full); the vectors in ../shared/vectors/identifiers.json.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto'

// ---------------------------------------------------------------------------------------------
// Results and error codes
// ---------------------------------------------------------------------------------------------

/** Stable error codes (partners branch on them; never rename). */
export const IDENTITY_ERROR_CODES = {
  idLength: 'identity.id_length',
  idCharset: 'identity.id_charset',
  idRegion: 'identity.id_region',
  idBirthDate: 'identity.id_birth_date',
  idCheckDigit: 'identity.id_check_digit',
  usccLength: 'identity.uscc_length',
  usccCharset: 'identity.uscc_charset',
  usccCheckDigit: 'identity.uscc_check_digit',
  orgCodeLength: 'identity.org_code_length',
  orgCodeCharset: 'identity.org_code_charset',
  caseNumber: 'identity.case_number',
} as const
export type IdentityErrorCode = (typeof IDENTITY_ERROR_CODES)[keyof typeof IDENTITY_ERROR_CODES]

/** Stable warning codes: the value is accepted, but a data-quality problem is worth recording. */
export const IDENTITY_WARNING_CODES = {
  /** The GB 11714 check character embedded at USCC position 17 does not match (domain.md §6.2: a warning). */
  usccOrgCodeCheckDigit: 'identity.uscc_org_code_check_digit',
  /** USCC position 1 is not a registration-authority code of GB 32100-2015 Table 1 [M]. */
  usccUnknownAuthority: 'identity.uscc_unknown_authority',
  /** USCC positions 3–8 are not a 6-digit administrative-division code (GB/T 2260). */
  usccRegionFormat: 'identity.uscc_region_format',
  /** A legacy organisation code whose GB 11714 check character does not match. */
  orgCodeCheckDigit: 'identity.org_code_check_digit',
} as const
export type IdentityWarningCode = (typeof IDENTITY_WARNING_CODES)[keyof typeof IDENTITY_WARNING_CODES]

export interface IdentityFailure {
  ok: false
  code: IdentityErrorCode
  message: string
}

const fail = (code: IdentityErrorCode, message: string): IdentityFailure => ({ ok: false, code, message })

/** Thrown by the functions that need an already-valid identifier (match keys, check characters). */
export class InvalidIdentifierError extends Error {
  constructor(readonly code: IdentityErrorCode, message: string) {
    super(message)
    this.name = 'InvalidIdentifierError'
  }
}

// ---------------------------------------------------------------------------------------------
// Resident identity number (居民身份证号码), GB 11643-1999 — domain.md §6.1
// ---------------------------------------------------------------------------------------------

/** GB 11643-1999: ISO 7064 MOD 11-2 weights for positions 1–17, w_i = 2^(18−i) mod 11. */
export const RESIDENT_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2] as const
/** GB 11643-1999: check character indexed by S mod 11 (i.e. (12 − S mod 11) mod 11, 10 written X). */
const RESIDENT_ID_CHECK_CHARS = '10X98765432'

/**
 * GB/T 2260 province-level codes (first two digits of the address code): 11–15, 21–23, 31–37,
 * 41–46, 50–54, 61–65, 71 (Taiwan), 81 (Hong Kong), 82 (Macao).
 */
export const PROVINCE_CODES: ReadonlySet<string> = new Set([
  '11', '12', '13', '14', '15',
  '21', '22', '23',
  '31', '32', '33', '34', '35', '36', '37',
  '41', '42', '43', '44', '45', '46',
  '50', '51', '52', '53', '54',
  '61', '62', '63', '64', '65',
  '71', '81', '82',
])

/**
 * Default lower bound of a birth year. GB 11643-1999 sets none, and its own widely cited example
 * `440524188001010014` (domain.md §6.1, vectors/identifiers.json) is born in 1880, so the default
 * admits it; the bound only rejects garbage such as year 0001. Pass `minBirthYear: 1900` for a
 * stricter policy.
 */
export const DEFAULT_MIN_BIRTH_YEAR = 1800

export interface ResidentIdOptions {
  /**
   * "Today" for the not-in-the-future check: a `YYYY-MM-DD` string (a date in China) or a Date,
   * read in China Standard Time (UTC+8, no DST). Defaults to the current time.
   */
  today?: Date | string
  /** Earliest accepted birth year; default {@link DEFAULT_MIN_BIRTH_YEAR}. */
  minBirthYear?: number
}

export interface ResidentId {
  ok: true
  /** The normalised 18-character number: digits, final `X` upper-case (domain.md §8). */
  value: string
  /** `YYYY-MM-DD`. */
  birthDate: string
  /** GB 11643-1999: the 3-digit sequence (positions 15–17) is odd for men, even for women. */
  sex: 'male' | 'female'
  /** The 6-digit address code (GB/T 2260), positions 1–6. */
  regionCode: string
  /** Present when the input was the legacy 15-digit form (domain.md §6.1 [M]). */
  convertedFrom15?: true
}

export type ResidentIdResult = ResidentId | IdentityFailure

/**
 * GB 11643-1999: ISO 7064 MOD 11-2 check character of the first 17 digits.
 * S = Σ dᵢ·wᵢ, check = (12 − S mod 11) mod 11, 10 written `X`.
 * Throws {@link InvalidIdentifierError} unless `first17` is exactly 17 ASCII digits.
 */
export function residentIdCheckChar(first17: string): string {
  if (!/^\d{17}$/.test(first17)) {
    throw new InvalidIdentifierError(IDENTITY_ERROR_CODES.idCharset, 'residentIdCheckChar needs exactly 17 digits')
  }
  let s = 0
  for (let i = 0; i < 17; i++) s += (first17.charCodeAt(i) - 48) * RESIDENT_ID_WEIGHTS[i]!
  return RESIDENT_ID_CHECK_CHARS[s % 11]!
}

const isLeapYear = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const

/** True for a real Gregorian calendar date (leap years: divisible by 4, except centuries not divisible by 400). */
export function isCalendarDate(year: number, month: number, day: number): boolean {
  if (!Number.isInteger(year) || !Number.isInteger(month) || !Number.isInteger(day)) return false
  if (month < 1 || month > 12 || day < 1) return false
  const max = month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1]!
  return day <= max
}

const CHINA_OFFSET_MS = 8 * 3600 * 1000

/** `YYYY-MM-DD` of the given instant in China Standard Time (UTC+8). */
function chinaDate(d: Date): string {
  return new Date(d.getTime() + CHINA_OFFSET_MS).toISOString().slice(0, 10)
}

function todayString(today: Date | string | undefined): string {
  if (today === undefined) return chinaDate(new Date())
  if (typeof today === 'string') {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(today)) throw new RangeError(`today must be YYYY-MM-DD, got "${today}"`)
    return today
  }
  if (Number.isNaN(today.getTime())) throw new RangeError('today is an invalid Date')
  return chinaDate(today)
}

/**
 * Parses and validates a resident identity number (GB 11643-1999; domain.md §6.1).
 *
 * - Trims; accepts a lower-case `x` and normalises it to `X` (domain.md §8).
 * - Accepts the legacy 15-digit form (6-digit address code + `YYMMDD` + 3-digit sequence, no check
 *   character) and converts it to 18 by inserting "19" before the year and computing the check
 *   character (domain.md §6.1 [M]); the result carries `convertedFrom15: true`.
 * - Refuses, in this order: a length other than 15 or 18 (`identity.id_length`); anything but
 *   digits with an optional final `X` (`identity.id_charset`); a first-two-digit prefix that is not a
 *   GB/T 2260 province-level code (`identity.id_region`); a birth date that is not a calendar date,
 *   is before `minBirthYear` or after `today` (`identity.id_birth_date`); a wrong check character
 *   (`identity.id_check_digit`).
 *
 * Masked numbers from the public site (`3423011964****3224`) fail with `identity.id_charset`: they
 * cannot be validated and must never be matched on (domain.md §6.1, §7.1).
 */
export function parseResidentId(raw: string, options: ResidentIdOptions = {}): ResidentIdResult {
  const s = String(raw).trim().toUpperCase()
  if (s.length !== 18 && s.length !== 15) {
    return fail(IDENTITY_ERROR_CODES.idLength, `a resident identity number has 18 characters (or 15 in the old form), got ${s.length}`)
  }
  const legacy = s.length === 15
  const charsetOk = legacy ? /^\d{15}$/.test(s) : /^\d{17}[\dX]$/.test(s)
  if (!charsetOk) {
    const bad = [...s].findIndex((c, i) => !(/\d/.test(c) || (!legacy && i === 17 && c === 'X')))
    const where = bad >= 0 ? `: "${s[bad]}" at position ${bad + 1}` : ''
    return fail(
      IDENTITY_ERROR_CODES.idCharset,
      legacy
        ? `a 15-digit identity number has digits only${where}`
        : `an identity number has 17 digits and a final digit or X${where}`,
    )
  }
  const first17 = legacy ? s.slice(0, 6) + '19' + s.slice(6, 15) : s.slice(0, 17)
  if (!PROVINCE_CODES.has(first17.slice(0, 2))) {
    return fail(IDENTITY_ERROR_CODES.idRegion, `"${first17.slice(0, 2)}" is not a province-level code of GB/T 2260`)
  }
  const y = Number(first17.slice(6, 10))
  const m = Number(first17.slice(10, 12))
  const d = Number(first17.slice(12, 14))
  const birthDate = `${first17.slice(6, 10)}-${first17.slice(10, 12)}-${first17.slice(12, 14)}`
  const minYear = options.minBirthYear ?? DEFAULT_MIN_BIRTH_YEAR
  if (!isCalendarDate(y, m, d)) {
    return fail(IDENTITY_ERROR_CODES.idBirthDate, `birth date ${birthDate} is not a calendar date`)
  }
  if (y < minYear) {
    return fail(IDENTITY_ERROR_CODES.idBirthDate, `birth year ${y} is before ${minYear}`)
  }
  const today = todayString(options.today)
  if (birthDate > today) {
    return fail(IDENTITY_ERROR_CODES.idBirthDate, `birth date ${birthDate} is in the future (today is ${today})`)
  }
  const check = residentIdCheckChar(first17)
  if (!legacy && s[17] !== check) {
    return fail(IDENTITY_ERROR_CODES.idCheckDigit, `check character is ${s[17]}, expected ${check} (ISO 7064 MOD 11-2)`)
  }
  const result: ResidentId = {
    ok: true,
    value: first17 + check,
    birthDate,
    sex: (first17.charCodeAt(16) - 48) % 2 === 1 ? 'male' : 'female',
    regionCode: first17.slice(0, 6),
  }
  if (legacy) result.convertedFrom15 = true
  return result
}

// ---------------------------------------------------------------------------------------------
// Unified social credit code (统一社会信用代码), GB 32100-2015 — domain.md §6.2
// ---------------------------------------------------------------------------------------------

/** GB 32100-2015: the 31-character alphabet (no I, O, S, V, Z); a character's value is its index. */
export const USCC_ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY'
/** GB 32100-2015: weights for positions 1–17, w_i = 3^(i−1) mod 31. */
export const USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28] as const
/** GB 11714: weights of the organisation code's positions 1–8. */
export const ORG_CODE_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2] as const

/**
 * GB 32100-2015 Table 1, position 1 (registration authority). domain.md §6.2 confirms 1, 5, 9, Y
 * [M]; the others are from memory of the standard [M] and are labels only, never a reason to refuse.
 */
export const USCC_REGISTRATION_AUTHORITIES: Readonly<Record<string, string>> = {
  '1': 'establishment_control', // 机构编制
  '2': 'foreign_affairs', // 外交
  '3': 'justice', // 司法行政
  '4': 'culture', // 文化
  '5': 'civil_affairs', // 民政
  '6': 'tourism', // 旅游
  '7': 'religion', // 宗教
  '8': 'trade_union', // 工会
  '9': 'market_regulation', // 工商 / 市场监管
  A: 'military_establishment', // 中央军委改革和编制办公室
  N: 'agriculture', // 农业
  Y: 'other', // 其他
}

/** GB 32100-2015, position 2 under authority 9 (domain.md §6.2 [M]); labels only. */
export const USCC_MARKET_ENTITY_TYPES: Readonly<Record<string, string>> = {
  '1': 'enterprise', // 企业
  '2': 'individual_business', // 个体工商户
  '3': 'farmers_cooperative', // 农民专业合作社
}

export interface CreditCode {
  ok: true
  /** The normalised 18-character code, upper-case. */
  value: string
  /** Positions 9–17: the GB 11714 organisation code including its own check character. */
  orgCode: string
  /** Position 1, e.g. `9` (see {@link USCC_REGISTRATION_AUTHORITIES}). */
  registrationAuthority: string
  /** Position 2, e.g. `1` (meaning depends on the authority; see {@link USCC_MARKET_ENTITY_TYPES}). */
  entityType: string
  /** Positions 3–8: the administrative-division code (GB/T 2260). */
  regionCode: string
  /** Warning codes ({@link IDENTITY_WARNING_CODES}); the code is valid regardless. */
  warnings: IdentityWarningCode[]
}

export type CreditCodeResult = CreditCode | IdentityFailure

function usccValues(chars: string): number[] | undefined {
  const out: number[] = []
  for (const c of chars) {
    const v = USCC_ALPHABET.indexOf(c)
    if (v < 0) return undefined
    out.push(v)
  }
  return out
}

/**
 * GB 32100-2015: MOD 31 check character of the first 17 characters.
 * check = (31 − Σ cᵢ·wᵢ mod 31) mod 31, mapped back through {@link USCC_ALPHABET}.
 * Throws {@link InvalidIdentifierError} unless `first17` is 17 characters of the alphabet (case-insensitive).
 */
export function creditCodeCheckChar(first17: string): string {
  const s = first17.toUpperCase()
  const values = s.length === 17 ? usccValues(s) : undefined
  if (!values) {
    throw new InvalidIdentifierError(IDENTITY_ERROR_CODES.usccCharset, 'creditCodeCheckChar needs 17 characters of the GB 32100 alphabet')
  }
  let sum = 0
  for (let i = 0; i < 17; i++) sum += values[i]! * USCC_WEIGHTS[i]!
  return USCC_ALPHABET[(31 - (sum % 31)) % 31]!
}

/**
 * GB 11714: check character of an organisation code's first 8 characters.
 * Values 0–9 for digits and A = 10 … Z = 35; S = Σ cᵢ·wᵢ; check = 11 − (S mod 11), 10 written `X`
 * and 11 written `0`. Throws {@link InvalidIdentifierError} unless `first8` is 8 of [0-9A-Z].
 */
export function orgCodeCheckChar(first8: string): string {
  const s = first8.toUpperCase()
  if (!/^[0-9A-Z]{8}$/.test(s)) {
    throw new InvalidIdentifierError(IDENTITY_ERROR_CODES.orgCodeCharset, 'orgCodeCheckChar needs 8 characters of 0-9 A-Z')
  }
  let sum = 0
  for (let i = 0; i < 8; i++) sum += parseInt(s[i]!, 36) * ORG_CODE_WEIGHTS[i]!
  const c = 11 - (sum % 11)
  return c === 10 ? 'X' : c === 11 ? '0' : String(c)
}

/**
 * Parses a unified social credit code (GB 32100-2015; domain.md §6.2). Trims and upper-cases.
 * Refuses a length other than 18 (`identity.uscc_length`), a character outside the 31-character
 * alphabet, named with its position (`identity.uscc_charset`), and a wrong MOD 31 check character
 * (`identity.uscc_check_digit`). The embedded GB 11714 check (position 17) failing is a warning,
 * not a failure (domain.md §6.2 [M]); so are an unknown authority and a non-numeric region.
 */
export function parseCreditCode(raw: string): CreditCodeResult {
  const s = String(raw).trim().toUpperCase()
  if (s.length !== 18) {
    return fail(IDENTITY_ERROR_CODES.usccLength, `a unified social credit code has 18 characters, got ${s.length}`)
  }
  const bad: string[] = []
  for (let i = 0; i < 18; i++) {
    if (!USCC_ALPHABET.includes(s[i]!)) bad.push(`"${s[i]}" at position ${i + 1}`)
  }
  if (bad.length > 0) {
    return fail(
      IDENTITY_ERROR_CODES.usccCharset,
      `not in the GB 32100 alphabet (0-9 and A-Z without I, O, S, V, Z): ${bad.join(', ')}`,
    )
  }
  const check = creditCodeCheckChar(s.slice(0, 17))
  if (s[17] !== check) {
    return fail(IDENTITY_ERROR_CODES.usccCheckDigit, `check character is ${s[17]}, expected ${check} (GB 32100-2015 MOD 31)`)
  }
  const warnings: IdentityWarningCode[] = []
  const orgCode = s.slice(8, 17)
  if (orgCodeCheckChar(orgCode.slice(0, 8)) !== orgCode[8]) warnings.push(IDENTITY_WARNING_CODES.usccOrgCodeCheckDigit)
  if (!(s[0]! in USCC_REGISTRATION_AUTHORITIES)) warnings.push(IDENTITY_WARNING_CODES.usccUnknownAuthority)
  const regionCode = s.slice(2, 8)
  if (!/^\d{6}$/.test(regionCode)) warnings.push(IDENTITY_WARNING_CODES.usccRegionFormat)
  return { ok: true, value: s, orgCode, registrationAuthority: s[0]!, entityType: s[1]!, regionCode, warnings }
}

export interface OrgCode {
  ok: true
  /** 9 characters, upper-case, no hyphen. */
  value: string
  warnings: IdentityWarningCode[]
}
export type OrgCodeResult = OrgCode | IdentityFailure

/**
 * Parses a legacy organisation code (组织机构代码, GB 11714), as printed `XXXXXXXX-X` or bare
 * `XXXXXXXXX`, into 9 upper-case characters without the hyphen. Refuses another length
 * (`identity.org_code_length`) or a character outside 0-9 A-Z (`identity.org_code_charset`). A wrong
 * check character is a warning (`identity.org_code_check_digit`), as for the code embedded in a USCC
 * (domain.md §6.2), so that a partner holding exactly the code embedded in a listed USCC still matches.
 */
export function parseOrgCode(raw: string): OrgCodeResult {
  let s = String(raw).trim().toUpperCase()
  if (s.length === 10 && s[8] === '-') s = s.slice(0, 8) + s.slice(9)
  if (s.length !== 9) {
    return fail(IDENTITY_ERROR_CODES.orgCodeLength, `an organisation code is XXXXXXXX-X or 9 characters, got ${String(raw).trim().length} characters`)
  }
  const bad = [...s].findIndex((c) => !/[0-9A-Z]/.test(c))
  if (bad >= 0) {
    return fail(IDENTITY_ERROR_CODES.orgCodeCharset, `an organisation code has characters 0-9 A-Z only: "${s[bad]}" at position ${bad + 1}`)
  }
  const warnings: IdentityWarningCode[] = []
  if (orgCodeCheckChar(s.slice(0, 8)) !== s[8]) warnings.push(IDENTITY_WARNING_CODES.orgCodeCheckDigit)
  return { ok: true, value: s, warnings }
}

/** Prefix of the match key of an organisation code (keeps it apart from 18-character identifiers). */
export const ORG_MATCH_KEY_PREFIX = 'org:'

/**
 * The normalised identifiers a listing under this credit code must be findable by: the code itself
 * and `org:` + its embedded 9-character organisation code (positions 9–17, GB 32100-2015 / GB 11714),
 * so a partner holding only the old organisation code (SPC-List Art. 6 allows either) still matches.
 * Throws {@link InvalidIdentifierError} for an invalid code.
 */
export function matchKeysForCreditCode(code: string): [string, string] {
  const parsed = parseCreditCode(code)
  if (!parsed.ok) throw new InvalidIdentifierError(parsed.code, parsed.message)
  return [parsed.value, ORG_MATCH_KEY_PREFIX + parsed.orgCode]
}

/** The `org:` match key of a legacy organisation code (either printed form); same key as {@link matchKeysForCreditCode}. */
export function matchKeyForOrgCode(orgCode: string): string {
  const parsed = parseOrgCode(orgCode)
  if (!parsed.ok) throw new InvalidIdentifierError(parsed.code, parsed.message)
  return ORG_MATCH_KEY_PREFIX + parsed.value
}

// ---------------------------------------------------------------------------------------------
// Case number (案号) — domain.md §6.3, SPC rules on case numbers in force 2016-01-01
// ---------------------------------------------------------------------------------------------

/** domain.md §6.3: enforcement case-type codes, longer first so `执恢` is not read as `执`. */
export const ENFORCEMENT_CASE_TYPES = ['执恢', '执保', '执异', '执复', '执监', '执协', '执他', '执'] as const
export type EnforcementCaseType = (typeof ENFORCEMENT_CASE_TYPES)[number]

/** domain.md §6.3: the regex of the reference script, verbatim. */
export const CASE_NUMBER_PATTERN =
  /^[（(](\d{4})[）)](最高法|[京津沪渝冀晋辽吉黑苏浙皖闽赣鲁豫鄂湘粤琼川黔云陕甘青宁新藏桂内兵军](?:\d{4}|\d{2})?)(执恢|执保|执异|执复|执监|执协|执他|执)([1-9]\d*)号$/

/** Pre-2016 numbers, e.g. `(2014)朝执字第12345号` (domain.md §6.3: legacy, not rejected). */
const LEGACY_CASE_NUMBER_PATTERN = /^[（(](\d{4})[）)]([^\s（）()]+?)字第(\d+)号$/
/** The SPC rules on case numbers took effect on 2016-01-01; "…字第N号" numbers are older. */
export const CASE_NUMBER_RULES_FIRST_YEAR = 2016

/** domain.md §6.3: SPC `最高法`; high court = abbreviation; intermediate + 2 digits; basic + 4 digits. */
export type CourtLevel = 'supreme' | 'high' | 'intermediate' | 'basic'

export interface CaseNumber {
  ok: true
  legacy: false
  /** Normalised to full-width brackets `（）` (domain.md §8). */
  value: string
  year: number
  /** e.g. `京0105`, `沪01`, `最高法`. */
  courtCode: string
  courtLevel: CourtLevel
  caseType: EnforcementCaseType
  sequence: number
}

export interface LegacyCaseNumber {
  ok: true
  legacy: true
  /** Normalised to full-width brackets `（）`; otherwise as given. */
  value: string
  year: number
}

export type CaseNumberResult = CaseNumber | LegacyCaseNumber | IdentityFailure

const toFullWidthBrackets = (s: string) => s.replace('(', '（').replace(')', '）')

/**
 * Parses an enforcement case number (domain.md §6.3) with the reference regex; ASCII `()` and
 * full-width `（）` brackets are both accepted and the value is normalised to full width
 * (domain.md §8). Pre-2016 `…字第N号` numbers are recognised as legacy (not parsed further). Anything
 * else, including non-enforcement types (民初 …), is `identity.case_number`.
 */
export function parseCaseNumber(raw: string): CaseNumberResult {
  const s = String(raw).trim()
  const m = CASE_NUMBER_PATTERN.exec(s)
  if (m) {
    const courtCode = m[2]!
    const sequence = Number(m[4])
    if (!Number.isSafeInteger(sequence)) return fail(IDENTITY_ERROR_CODES.caseNumber, 'case sequence number is too large')
    const courtLevel: CourtLevel =
      courtCode === '最高法' ? 'supreme' : courtCode.length === 1 ? 'high' : courtCode.length === 3 ? 'intermediate' : 'basic'
    return {
      ok: true,
      legacy: false,
      value: toFullWidthBrackets(s),
      year: Number(m[1]),
      courtCode,
      courtLevel,
      caseType: m[3] as EnforcementCaseType,
      sequence,
    }
  }
  const l = LEGACY_CASE_NUMBER_PATTERN.exec(s)
  if (l) {
    const year = Number(l[1])
    if (year < CASE_NUMBER_RULES_FIRST_YEAR) return { ok: true, legacy: true, value: toFullWidthBrackets(s), year }
    return fail(IDENTITY_ERROR_CODES.caseNumber, `"…字第N号" numbers predate 2016; year ${year} needs the current format`)
  }
  return fail(
    IDENTITY_ERROR_CODES.caseNumber,
    'not an enforcement case number: expected （YYYY）+ court code (最高法, 京, 沪01, 京0105 …) + 执/执恢/执保/执异/执复/执监/执协/执他 + sequence + 号',
  )
}

// ---------------------------------------------------------------------------------------------
// Masking for display — domain.md §7.1, §11
// ---------------------------------------------------------------------------------------------

/**
 * domain.md §7.1 (zxgk practice [C]): digits 11–14 of an 18-character number (birth month and day)
 * become `****`, e.g. `3423011964****3224`; region, birth year, sequence and check stay visible.
 * A 15-digit number gets its month and day (digits 9–12) masked the same way. Anything else is
 * masked entirely, so a malformed value can never leak through display.
 */
export function maskResidentId(id: string): string {
  const s = String(id).trim().toUpperCase()
  if (/^\d{17}[\dX]$/.test(s)) return s.slice(0, 10) + '****' + s.slice(14)
  if (/^\d{15}$/.test(s)) return s.slice(0, 8) + '****' + s.slice(12)
  return '*'.repeat([...s].length)
}

/**
 * domain.md §11: entity codes are shown in full unless configuration asks for masking (zxgk
 * practice [unconfirmed], §9). With `mask: true` — the gateway's own choice, not a published rule —
 * positions 9–16 (the organisation-code body) become `********`, keeping authority, type, region
 * and both check characters: `91350100********43`.
 */
export function maskCreditCode(code: string, options: { mask?: boolean } = {}): string {
  const s = String(code).trim().toUpperCase()
  if (!options.mask) return s
  if (s.length !== 18) return '*'.repeat([...s].length)
  return s.slice(0, 8) + '********' + s.slice(16)
}

/**
 * A natural person's name for public display — the gateway's choice (no published rule): keep the
 * first character and replace every other character with `*`, so 张三 → 张*, 欧阳娜娜 → 欧***
 * (compound surnames are not recognised: which names have one is ambiguous). Counts Unicode code
 * points, so rare characters outside the BMP count as one. The name separator `·` (e.g. in
 * 买买提·艾力) and spaces stay visible. A one-character name is masked entirely (`*`), since showing
 * its first character would show all of it. Entity names are published in full (SPC-List Art. 6)
 * and are not passed through this.
 */
export function maskName(name: string): string {
  const chars = [...String(name).trim()]
  if (chars.length <= 1) return '*'.repeat(chars.length)
  return chars.map((c, i) => (i === 0 || c === '·' || c === '•' || c === ' ' ? c : '*')).join('')
}

// ---------------------------------------------------------------------------------------------
// Keyed hash for audit entries and logs — issue 3 item 1; PIPL (domain.md §8)
// ---------------------------------------------------------------------------------------------

/** HMAC-SHA-256 keys shorter than the hash output (32 bytes) weaken it; refuse them. */
export const MIN_IDENTIFIER_HASH_SECRET_BYTES = 32

/**
 * Returns `hash(normalizedIdentifier)` = HMAC-SHA-256(secret, identifier) as 64 lower-case hex
 * characters, for audit entries and log lines in place of the identifier.
 *
 * What it defends against: raw identity numbers and credit codes never appear in logs or audit
 * rows (PIPL sensitive personal information, domain.md §8), while equal identifiers still hash
 * equally so entries can be correlated. Because the hash is keyed, someone with the logs but not
 * the secret cannot build a dictionary: resident numbers have at most ~10^17 values (fewer with
 * real regions and dates), which an unkeyed SHA-256 would let anyone enumerate. It does not defend
 * against a holder of the secret, who can enumerate; keep it in the secret store and rotate it
 * with the logs it covers.
 *
 * Pass the normalised form (parseResidentId/parseCreditCode `value`): `...x` and `...X` hash
 * differently. Throws RangeError for a secret shorter than 32 bytes (a string counts UTF-8 bytes).
 */
export function createIdentifierHasher(secret: Buffer | string): (normalizedIdentifier: string) => string {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret)
  if (bytes.length < MIN_IDENTIFIER_HASH_SECRET_BYTES) {
    throw new RangeError(`the identifier hash secret must be at least ${MIN_IDENTIFIER_HASH_SECRET_BYTES} bytes, got ${bytes.length}`)
  }
  const key: KeyObject = createSecretKey(bytes)
  bytes.fill(0)
  return (normalizedIdentifier: string) => createHmac('sha256', key).update(normalizedIdentifier, 'utf8').digest('hex')
}
