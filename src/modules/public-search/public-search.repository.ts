import { and, asc, desc, eq, or, sql, type SQL } from 'drizzle-orm'
import type { Db } from '../../infra/db.js'
import { ORG_MATCH_KEY_PREFIX } from '../identity/identity.models.js'
import type { ListKind } from '../listings/listings.models.js'
import { listings, type ListingRow } from '../listings/listings.table.js'
import type { IdCriterion } from './public-search.models.js'

export interface PublicSearchCriteria {
  name: string
  id?: IdCriterion
  listKind?: ListKind
  limit: number
  offset: number
}

export type PublicSearchRow = Pick<ListingRow, 'id' | 'listKind' | 'subjectKind' | 'record'>

/** `subject_id` conditions for the optional identifier (listings.subject_id holds the normalized id, the credit code, or `org:` + a legacy organisation code). */
function idCondition(id: IdCriterion): SQL | undefined {
  switch (id.type) {
    case 'idNumber':
      return and(eq(listings.subjectKind, 'person'), eq(listings.subjectId, id.value))
    case 'maskedIdNumber':
      // Prefix and suffix are digits (validated), so they are compared, never used as a pattern.
      return and(eq(listings.subjectKind, 'person'), sql`length(${listings.subjectId}) = 18`,
        sql`left(${listings.subjectId}, 10) = ${id.prefix}`, sql`right(${listings.subjectId}, 4) = ${id.suffix}`)
    case 'creditCode':
      // A listing pushed with the legacy organisation code is the same entity (SPC-List Art. 6 allows either).
      return and(eq(listings.subjectKind, 'entity'), or(eq(listings.subjectId, id.value), eq(listings.subjectId, ORG_MATCH_KEY_PREFIX + id.orgCode)))
    case 'orgCode':
      // … and an organisation code finds the credit code that embeds it (positions 9–17, GB 32100-2015).
      return and(eq(listings.subjectKind, 'entity'), or(eq(listings.subjectId, ORG_MATCH_KEY_PREFIX + id.value),
        and(sql`length(${listings.subjectId}) = 18`, sql`substr(${listings.subjectId}, 9, 9) = ${id.value}`)))
  }
}

/** Active listings by exact subject name (index listings_public_name, migrations/0006_public_search.sql). */
export function createPublicSearchRepository(db: Db) {
  return {
    async search(c: PublicSearchCriteria): Promise<PublicSearchRow[]> {
      return db.select({ id: listings.id, listKind: listings.listKind, subjectKind: listings.subjectKind, record: listings.record })
        .from(listings)
        .where(and(
          eq(listings.status, 'published'),
          eq(listings.subjectName, c.name),
          c.listKind ? eq(listings.listKind, c.listKind) : undefined,
          c.id ? idCondition(c.id) : undefined,
        ))
        .orderBy(desc(listings.publishedOn), asc(listings.id))
        .limit(c.limit)
        .offset(c.offset)
    },
  }
}

export type PublicSearchRepository = ReturnType<typeof createPublicSearchRepository>
