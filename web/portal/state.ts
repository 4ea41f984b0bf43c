/**
 * What the portal remembers while the page is open, in memory only: the last search and its
 * results (so a listing's details and "back to the results" need no new request, which the public
 * rate limit counts), and the application being tracked. A tracking code is never put in the URL
 * (browser history, shared computers); it is kept here and typed in again after a reload.
 */
import type { ApplicationKind, Filed, PublicListing, SearchQuery, SearchResult } from './api.js'

export const state: {
  query?: SearchQuery
  result?: SearchResult
  /** Every listing shown in this session, by id: its details view reads from here. */
  listings: Map<string, PublicListing>
  track?: { kind: ApplicationKind; code: string; filed?: Filed }
} = { listings: new Map() }
