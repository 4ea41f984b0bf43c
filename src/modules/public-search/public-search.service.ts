import type { Database } from '../../infra/db.js'
import type { ListKind } from '../listings/listings.models.js'
import {
  DEFAULT_PAGE_SIZE, parsePublicId, parsePublicName, publicListingView, type PublicListing, type PublicViewOptions,
} from './public-search.models.js'
import { createPublicSearchRepository, type PublicSearchRepository } from './public-search.repository.js'

export interface PublicSearchQuery {
  name: string
  id?: string
  list?: ListKind
  /** Bounds (1–MAX_PAGE, 1–MAX_PAGE_SIZE) are enforced by the route schema. */
  page?: number
  pageSize?: number
}

export interface PublicSearchResult {
  page: number
  pageSize: number
  /** More matches exist after this page. Past MAX_PAGE the caller narrows by identifier instead. */
  hasMore: boolean
  items: PublicListing[]
}

/**
 * Public search of the active listings (issue 6 item 1): exact name, optional identifier, masked
 * answer. Counted (a metric, by the route), not audited: the caller is anonymous and the answer is
 * what the public site publishes (DESIGN.md audits principals' look-ups).
 */
export function createPublicSearchService(deps: { database: Database; repository?: Pick<PublicSearchRepository, 'search'> } & PublicViewOptions) {
  const repository = deps.repository ?? createPublicSearchRepository(deps.database.db)
  const viewOptions: PublicViewOptions = { maskEntityCodes: deps.maskEntityCodes ?? false }
  return {
    async search(query: PublicSearchQuery): Promise<PublicSearchResult> {
      const name = parsePublicName(query.name)
      const id = query.id === undefined ? undefined : parsePublicId(query.id)
      const page = query.page ?? 1
      const pageSize = query.pageSize ?? DEFAULT_PAGE_SIZE
      // One row past the page tells whether another page exists, without counting every match.
      const rows = await repository.search({ name, id, listKind: query.list, limit: pageSize + 1, offset: (page - 1) * pageSize })
      return {
        page, pageSize, hasMore: rows.length > pageSize,
        items: rows.slice(0, pageSize).map((row) => publicListingView(row, viewOptions)),
      }
    },
  }
}

export type PublicSearchService = ReturnType<typeof createPublicSearchService>
