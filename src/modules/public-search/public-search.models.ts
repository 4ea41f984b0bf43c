/**
 * The public search (issue 6 item 1): what a citizen may ask and what the answer may show. Pure:
 * no I/O. The query rules defend the list against enumeration (an exact full name is required, the
 * answer is bounded); the view defends the listed party's privacy (an allow-list of the fields
 * SPC-List Art. 6 publishes, identifiers masked as the public site masks them).
 */
import { AppError } from '../../infra/errors.js'
import {
  maskCreditCode, maskResidentId, parseCreditCode, parseOrgCode, parseResidentId, PROVINCE_CODES,
} from '../identity/identity.models.js'
import { GROUNDS, type Ground, type ListKind } from '../listings/listings.models.js'
import type { ListingRow } from '../listings/listings.table.js'
import { publicSearchError } from './public-search.errors.js'

/**
 * Anti-enumeration bounds. With an exact full name required, one query reaches at most
 * MAX_PAGE × MAX_PAGE_SIZE = 100 listings of that one name; the per-address rate limit
 * (infra/rate-limit.ts, registerPublicRateLimit) bounds how many names a client can try.
 */
export const NAME_MIN_CHARS = 2
export const NAME_MAX_CHARS = 100
export const DEFAULT_PAGE_SIZE = 10
export const MAX_PAGE_SIZE = 20
export const MAX_PAGE = 5

/** SQL LIKE and shell-style wildcards, ASCII and full-width: refused outright (no pattern search exists). */
const WILDCARD = /[%_*?％＿＊？]/u
/**
 * What a person's or an entity's name is made of: letters of any script (Han, Latin, Uyghur …),
 * combining marks, digits (entity names carry them: 北京123科技有限公司), the name separators · • ・,
 * spaces, and the punctuation of registered entity names (. , ' ’ & - and ASCII or full-width brackets).
 */
const NAME_CHARS = /^[\p{L}\p{M}\p{N}·•・.,'’&\-()（） ]+$/u

/**
 * Trims and checks a searched name: 2–100 characters (code points), no wildcard, only characters a
 * name has, at least one letter. A name is matched exactly, so this is not about SQL safety (the
 * value is a bound parameter) but about refusing what is plainly an attempt to list the table.
 */
export function parsePublicName(raw: string): string {
  const name = String(raw).trim()
  const field = 'querystring.name'
  if (WILDCARD.test(name)) throw publicSearchError('name_wildcard', 400, 'wildcards (% _ * ?) are not supported: give the exact full name', { field })
  const length = [...name].length
  if (length < NAME_MIN_CHARS || length > NAME_MAX_CHARS) {
    throw publicSearchError('name_length', 400, `the name has ${NAME_MIN_CHARS}–${NAME_MAX_CHARS} characters, got ${length}`, { field })
  }
  if (!NAME_CHARS.test(name) || !/\p{L}/u.test(name)) {
    throw publicSearchError('name_format', 400, 'not a plausible name of a person or an entity: letters, digits, spaces and · . , \' & - ( ) only', { field })
  }
  return name
}

/** How the optional identifier narrows the search. */
export type IdCriterion =
  | { type: 'idNumber'; value: string }
  | { type: 'maskedIdNumber'; prefix: string; suffix: string }
  | { type: 'creditCode'; value: string; orgCode: string }
  | { type: 'orgCode'; value: string }

/** domain.md §7.1: the public site's form, digits 11–14 (birth month and day) replaced by `****`. */
const MASKED_ID = /^(\d{10})\*{4}(\d{3}[\dX])$/

/**
 * Reads the optional `id`: a full resident id (18, or the legacy 15), a unified social credit code,
 * an organisation code (`XXXXXXXX-X` or 9 characters), or a masked resident id as the public site
 * shows it (`3423011964****3224`). A masked id only ever narrows a search by exact name: it is never
 * matched on alone (domain.md §7.1, "never match on the masked string alone").
 *
 * An 18-character all-digit value is read as a resident id, or as a credit code when it is not a
 * valid resident id but is a valid credit code (credit codes may be all digits).
 * Refuses with the identity module's stable codes (`identity.id_check_digit` …) or
 * `public_search.id_format`, field `querystring.id`.
 */
export function parsePublicId(raw: string): IdCriterion {
  const field = 'querystring.id'
  const s = String(raw).trim().toUpperCase()
  const refuse = (code: string, message: string) => new AppError(code, 400, message, { field })
  if (s.includes('*')) {
    const m = MASKED_ID.exec(s)
    if (!m) throw publicSearchError('id_format', 400, 'a masked identity number has the form 3423011964****3224 (18 characters, digits 11–14 as ****)', { field })
    if (!PROVINCE_CODES.has(s.slice(0, 2))) throw refuse('identity.id_region', `"${s.slice(0, 2)}" is not a province-level code of GB/T 2260`)
    return { type: 'maskedIdNumber', prefix: m[1]!, suffix: m[2]! }
  }
  if (/^\d{15}$|^\d{17}[\dX]$/.test(s)) {
    const id = parseResidentId(s)
    if (id.ok) return { type: 'idNumber', value: id.value }
    const code = s.length === 18 ? parseCreditCode(s) : undefined
    if (code?.ok) return { type: 'creditCode', value: code.value, orgCode: code.orgCode }
    throw refuse(id.code, id.message)
  }
  if (s.length === 18) {
    const code = parseCreditCode(s)
    if (!code.ok) throw refuse(code.code, code.message)
    return { type: 'creditCode', value: code.value, orgCode: code.orgCode }
  }
  if (s.length === 9 || (s.length === 10 && s[8] === '-')) {
    const org = parseOrgCode(s)
    if (!org.ok) throw refuse(org.code, org.message)
    return { type: 'orgCode', value: org.value }
  }
  throw publicSearchError('id_format', 400, 'id is a resident identity number (18 or 15 digits, or masked as on the public site), a unified social credit code (18) or an organisation code (XXXXXXXX-X)', { field })
}

export interface PublicListingSubject {
  kind: 'person' | 'entity'
  name: string
  idNumberMasked?: string
  sex?: 'male' | 'female'
  age?: number
  creditCode?: string
  orgCode?: string
  legalRepresentative?: string
}

/** One listing as the public sees it. */
export interface PublicListing {
  id: string
  listKind: ListKind
  subject: PublicListingSubject
  caseNumber: string
  courtName: string
  basis: { issuer: string; documentNumber: string } | null
  obligation: string | null
  performance: string
  amountOutstanding: number | null
  grounds: { code: Ground; description: string }[]
  filedOn: string | null
  publishedOn: string
}

export interface PublicViewOptions {
  /**
   * Mask entity codes (positions 9–16, identity.models maskCreditCode) — the gateway's option, not a
   * published rule. domain.md §7.1 leaves entity-code masking [unconfirmed] and §11 says entity codes
   * are shown in full unless configuration says otherwise; so the default is `false`.
   */
  maskEntityCodes?: boolean
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null)

/** Whole years from a `YYYY-MM-DD` birth date to a `YYYY-MM-DD` day. */
function ageOn(birthDate: string, on: string): number | undefined {
  const [by, bm, bd] = birthDate.split('-').map(Number) as [number, number, number]
  const [y, m, d] = on.split('-').map(Number) as [number, number, number]
  if (![by, bm, bd, y, m, d].every(Number.isInteger)) return undefined
  return y - by - (m < bm || (m === bm && d < bd) ? 1 : 0)
}

/**
 * The publicly disclosed fields of a listing, built from an allow-list — never by copying the
 * record, so a field added to the record later stays private until it is added here.
 *
 * domain.md §1.5 (SPC-List Art. 6, with the public site's field names) decides the set:
 * - entity: name (`iname`), credit code or organisation code (`cardNum`), the legal
 *   representative's NAME (`businessEntity`) — never their identity number;
 * - person: name (`iname`), sex (`sexy`), age (`age`), identity number MASKED per §7.1 (`cardNum`);
 *   age is on the publication date (what Art. 6 records); the birth date itself is never shown, it
 *   is exactly what the mask hides;
 * - obligations and performance: `obligation` (`duty`), `performance` (`performance`),
 *   `amountOutstanding` (`unperformPart`, the unperformed part);
 * - the dishonest conduct: `grounds` with the Art. 1 text (`disruptTypeName`; empty on the
 *   restriction list, which has no grounds);
 * - basis issuer and number (`gistUnit`, `gistId`), `caseNumber` (`caseCode`), `filedOn`
 *   (`regDate`), `courtName` (`courtName`);
 * - publication: `publishedOn` (`publishDate`), `listKind` and `subject.kind` (`partyTypeName`);
 * - `id`: an opaque listing id, so that the listed party can file a correction application
 *   (POST /v1/public/appeals, SPC-List Art. 11) for exactly this listing.
 * Not shown (outside §1.5): the entity's other restricted persons (SPC-Consume Art. 3 para 2 — names
 * and ids), every officer's identity number, the birth date, grace, period end, extension, the
 * conviction flag, full-performance date, court code, version and status (all shown are active).
 */
export function publicListingView(row: Pick<ListingRow, 'id' | 'listKind' | 'subjectKind' | 'record'>, options: PublicViewOptions = {}): PublicListing {
  const record = row.record
  const subject = (record.subject ?? {}) as Record<string, unknown>
  const publishedOn = str(record.publishedOn) ?? ''
  const out: PublicListingSubject = { kind: row.subjectKind, name: str(subject.name) ?? '' }
  if (row.subjectKind === 'person') {
    const id = str(subject.idNumber)
    if (id) out.idNumberMasked = maskResidentId(id)
    if (subject.sex === 'male' || subject.sex === 'female') out.sex = subject.sex
    const birthDate = str(subject.birthDate)
    const age = birthDate && publishedOn ? ageOn(birthDate, publishedOn) : undefined
    if (age !== undefined) out.age = age
  } else {
    const creditCode = str(subject.creditCode)
    const orgCode = str(subject.orgCode)
    if (creditCode) out.creditCode = maskCreditCode(creditCode, { mask: options.maskEntityCodes })
    else if (orgCode) out.orgCode = options.maskEntityCodes ? '*'.repeat(orgCode.length) : orgCode
    const rep = subject.legalRepresentative as Record<string, unknown> | undefined
    const repName = str(rep?.name)
    if (repName) out.legalRepresentative = repName
  }
  const basis = record.basis as Record<string, unknown> | null | undefined
  const grounds = Array.isArray(record.grounds) ? (record.grounds as unknown[]).filter((g): g is Ground => typeof g === 'string' && g in GROUNDS) : []
  return {
    id: row.id,
    listKind: row.listKind,
    subject: out,
    caseNumber: str(record.caseNumber) ?? '',
    courtName: str(record.courtName) ?? '',
    basis: basis && str(basis.issuer) && str(basis.documentNumber) ? { issuer: basis.issuer as string, documentNumber: basis.documentNumber as string } : null,
    obligation: str(record.obligation),
    performance: str(record.performance) ?? '',
    amountOutstanding: typeof record.amountOutstanding === 'number' ? record.amountOutstanding : null,
    grounds: grounds.map((code) => ({ code, description: GROUNDS[code] })),
    filedOn: str(record.filedOn),
    publishedOn,
  }
}
