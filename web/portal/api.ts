/**
 * The public API the portal uses, all same-origin and unsigned (`/v1/public/…`, and the certificate
 * check). Shapes follow src/modules/public-search/public-search.routes.ts and
 * src/modules/applications/applications.routes.ts; refusals become an ApiError with the problem's
 * stable `code` and, for a 429, the Retry-After seconds.
 */
import { ProblemError, readJson, type Problem } from '../shared/problem.js'

export type ListKind = 'dishonest' | 'restricted'
export type ApplicationKind = 'appeal' | 'repair'

/** The values of the filing body's `ground` enum (applications.models.ts APPEAL_GROUNDS, REPAIR_GROUNDS). */
export const GROUNDS: Record<ApplicationKind, readonly string[]> = {
  appeal: ['not_to_be_listed', 'inaccurate', 'should_be_deleted'],
  repair: ['full_performance', 'settlement_performed', 'creditor_consent'],
}

/** Fields a court may correct (applications.models.ts CORRECTABLE_FIELDS): what an applicant may say is wrong. */
export const CORRECTABLE_FIELDS = ['subjectName', 'obligation', 'performance', 'amountOutstanding', 'grounds', 'basis', 'filedOn', 'fullPerformanceOn'] as const

/** Attachment limits (applications.service.ts). */
export const MAX_ATTACHMENTS = 5
export const MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024
export const ATTACHMENT_TYPES = ['application/pdf', 'image/jpeg', 'image/png'] as const
export type AttachmentType = (typeof ATTACHMENT_TYPES)[number]

/** public-search.models.ts MAX_PAGE: past it, the search must be narrowed by identifier. */
export const MAX_PAGE = 5

export interface PublicListing {
  id: string
  listKind: ListKind
  subject: {
    kind: 'person' | 'entity'
    name: string
    idNumberMasked?: string
    sex?: 'male' | 'female'
    age?: number
    creditCode?: string
    orgCode?: string
    legalRepresentative?: string
  }
  caseNumber: string
  courtName: string
  basis: { issuer: string; documentNumber: string } | null
  obligation: string | null
  performance: 'none' | 'partial' | 'full'
  amountOutstanding: number | null
  grounds: { code: string; description: string }[]
  filedOn: string | null
  publishedOn: string
}

export interface SearchResult { page: number; pageSize: number; hasMore: boolean; items: PublicListing[] }

export interface ApplicationInput {
  listingId: string
  ground: string
  applicant: { name: string; idNumber?: string; creditCode?: string; contact: string }
  statement: string
  requestedChanges?: Record<string, string | number>
  attachments?: { fileName: string; mediaType: AttachmentType; contentBase64: string }[]
}

export interface Filed { trackingCode: string; kind: ApplicationKind; status: string; listingId: string; receivedOn: string; reviewDueOn: string }

export interface Decision {
  outcome?: 'accept' | 'reject'
  reasons?: string | null
  decidedOn?: string
  decidedBy?: string
  correction?: Record<string, unknown> | null
  removal?: boolean
  appliedOn?: string
  [more: string]: unknown
}

export interface Tracked {
  kind: ApplicationKind
  status: string
  listingId?: string
  ground?: string
  receivedOn?: string
  reviewDueOn?: string
  dueOn?: string | null
  overdue?: boolean
  decision?: Decision | null
  correctionDueOn?: string | null
  reconsiderationWindowEndsOn?: string | null
  reconsideration?: { statement?: string; filedOn?: string; decision?: Decision } | null
  reconsiderationDueOn?: string | null
  applicant?: { name?: string; identifier?: string }
  attachments?: { fileName: string; mediaType: string; size: number; sha256: string }[]
  certificateId?: string | null
  history: { at: string; status: string; by?: string; note?: string | null }[]
}

export interface CertificateCheck { id: string; valid: boolean; signatureValid: boolean; listingRemovedByRepair: boolean }

/** A refusal: the gateway's problem (stable `code`), and for a 429 how long to wait. */
export class ApiError extends ProblemError {
  constructor(problem: Problem, readonly retryAfterSeconds?: number) {
    super(problem)
  }
}

async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  let res: Response
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    })
  } catch {
    throw new ApiError({ status: 0, code: 'network' })
  }
  try {
    return await readJson<T>(res)
  } catch (err) {
    if (!(err instanceof ProblemError)) throw new ApiError({ status: res.status, code: 'network' })
    const retryAfter = Number(res.headers.get('retry-after'))
    throw new ApiError(err.problem, Number.isFinite(retryAfter) && retryAfter > 0 ? Math.ceil(retryAfter) : undefined)
  }
}

export interface SearchQuery { name: string; id: string; list: '' | ListKind; page: number }

export function searchListings(q: SearchQuery): Promise<SearchResult> {
  const params = new URLSearchParams({ name: q.name })
  if (q.id) params.set('id', q.id)
  if (q.list) params.set('list', q.list)
  if (q.page > 1) params.set('page', String(q.page))
  return request('GET', `/v1/public/listings?${params.toString()}`)
}

const collection = (kind: ApplicationKind) => (kind === 'appeal' ? 'appeals' : 'repairs')

export function fileApplication(kind: ApplicationKind, input: ApplicationInput): Promise<Filed> {
  return request('POST', `/v1/public/${collection(kind)}`, input)
}

export function trackApplication(kind: ApplicationKind, code: string): Promise<Tracked> {
  return request('GET', `/v1/public/${collection(kind)}/${encodeURIComponent(code)}`)
}

export function askReconsideration(code: string, statement: string): Promise<Tracked> {
  return request('POST', `/v1/public/appeals/${encodeURIComponent(code)}/reconsideration`, { statement })
}

export function verifyCertificate(id: string): Promise<CertificateCheck> {
  return request('GET', `/v1/certificates/${encodeURIComponent(id)}/verify`)
}
