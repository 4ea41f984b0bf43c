import type { PrincipalProfile } from '../principals/principals.models.js'
import type { ListingRow } from './listings.table.js'

/** A listing as the API and the change log show it: the pushed record plus its lifecycle. */
export function listingView(row: Pick<ListingRow, 'id' | 'status' | 'version' | 'record' | 'removalDueOn' | 'removalReason' | 'removalNote' | 'removedAt' | 'updatedAt'>): Record<string, unknown> {
  return {
    id: row.id,
    status: row.status,
    version: row.version,
    ...row.record,
    removalDueOn: row.removalDueOn,
    removal: row.removalReason ? { reason: row.removalReason, note: row.removalNote, at: row.removedAt instanceof Date ? row.removedAt.toISOString() : row.removedAt } : null,
  }
}

/** Always shown: what a partner needs to key and order a listing, nothing personal beyond the identifiers' owner kind. */
const BASE_FIELDS = ['id', 'status', 'version', 'listKind', 'courtCode', 'publishedOn', 'periodEndsOn', 'removal'] as const

/**
 * Projection (DESIGN.md "Scopes and projection"): an agency sees only the fields its profile names;
 * the rest are absent. `name` and `identifiers` select the subject's name and identifiers (and the
 * officers'); other names select top-level fields. Admins and courts (no `fields` in their profile) see all.
 */
export function projectListing(view: Record<string, unknown>, profile: PrincipalProfile, kind: 'court' | 'agency' | 'admin'): Record<string, unknown> {
  if (kind !== 'agency') return view
  const fields = new Set(profile.fields ?? [])
  const out: Record<string, unknown> = {}
  for (const f of BASE_FIELDS) out[f] = view[f]
  const subject = view.subject as Record<string, unknown>
  const projectedSubject: Record<string, unknown> = { kind: subject.kind }
  if (fields.has('name')) projectedSubject.name = subject.name
  if (fields.has('identifiers')) for (const k of ['idNumber', 'creditCode', 'orgCode'] as const) if (subject[k]) projectedSubject[k] = subject[k]
  if (fields.has('legalRepresentative') && subject.legalRepresentative) projectedSubject.legalRepresentative = subject.legalRepresentative
  out.subject = projectedSubject
  for (const f of fields) {
    if (f === 'name' || f === 'identifiers' || f === 'legalRepresentative' || f === 'subject') continue
    if (f in view) out[f] = view[f]
  }
  return out
}
