import { randomUUID } from 'node:crypto'
import type { ErrorObject, ValidateFunction } from 'ajv'
import { nowSeconds, type Clock } from '../../infra/clock.js'
import { createAjv } from '../../infra/schemas.js'
import { shanghaiDate, type WorkingDayCalendar } from '../calendar/working-days.js'
import type { Principal } from '../principals/principals.models.js'
import { listingsError } from './listings.errors.js'
import { initialStatus, normalizeListing, type FieldError, type ListingInput, type NormalizedListing, type RemovalReason } from './listings.models.js'
import type { ListingInsert, ListingsRepository, NewEvent } from './listings.repository.js'
import type { ListingEventRow, ListingRow } from './listings.table.js'
import { listingView, projectListing } from './listings.view.js'

/** DESIGN.md: a push carries up to 10 000 listings. */
export const MAX_PUSH_ITEMS = 10_000
/** Listings expired or published per scheduler transaction. */
const SCHEDULER_BATCH = 500
/** Advisory lock key: one process at a time runs the expiry / publication pass. */
export const SCHEDULER_LOCK = 7_210_003

export type PushStatus = 'created' | 'updated' | 'unchanged' | 'rejected'
export interface PushResult {
  index: number
  status: PushStatus
  listingId?: string
  version?: number
  listingStatus?: ListingRow['status']
  errors?: FieldError[]
  warnings?: FieldError[]
}

type Repo = Pick<ListingsRepository, 'inTransaction' | 'lockCourts' | 'findExisting' | 'insertMany' | 'updateMany' | 'appendEvents' | 'lockById' | 'markRemoved' | 'markPublished' | 'lockDue' | 'tryLock' | 'overdueRemovals' | 'changesAfter'>

function schemaErrors(errors: ErrorObject[] | null | undefined): FieldError[] {
  return (errors ?? []).map((e) => {
    const extra = (e.params as { missingProperty?: string; additionalProperty?: string })
    const path = e.instancePath.replace(/^\//, '').replaceAll('/', '.')
    const leaf = extra.missingProperty ?? extra.additionalProperty
    return { field: [path, leaf].filter(Boolean).join('.') || '(item)', code: 'request.validation', message: e.message ?? 'invalid' }
  })
}

/** Court codes a court principal may write: its own, and its subordinates' if granted (DESIGN.md). */
export function writableCourtCodes(p: Pick<Principal, 'courtCode' | 'profile'>): string[] {
  return [...(p.courtCode ? [p.courtCode] : []), ...(p.profile.subordinateCourtCodes ?? [])]
}

/** How often a long-polling change-feed request looks again. */
const CHANGES_POLL_MS = 250

export function createListingsService(deps: { repo: Repo; calendar: WorkingDayCalendar; clock: Clock }) {
  const { repo, calendar, clock } = deps
  const validateInput = createAjv({ coerceTypes: false, allErrors: true }).getSchema('ListingInput') as ValidateFunction<ListingInput>
  const today = () => shanghaiDate(new Date(clock.nowMs()))

  function toRow(l: NormalizedListing, id: string, status: ListingRow['status'], version: number, actor: string): ListingInsert {
    return {
      id, listKind: l.listKind, courtCode: l.courtCode, courtName: l.courtName, caseNumber: l.caseNumber, caseNumberRaw: l.caseNumberRaw,
      subjectKind: l.subjectKind, subjectId: l.subjectId, subjectName: l.subjectName, record: l.record, matchKeys: l.matchKeys,
      grounds: l.grounds, publishedOn: l.publishedOn, graceUntil: l.graceUntil, periodEndsOn: l.periodEndsOn, status,
      fullPerformanceOn: l.fullPerformanceOn, removalDueOn: l.removalDueOn, contentHash: l.contentHash, version, createdBy: actor,
    }
  }

  function eventFor(row: ListingInsert, kind: NewEvent['kind'], actor: string, requestId: string | undefined): NewEvent {
    const view = listingView({ id: row.id, status: row.status, version: row.version!, record: row.record, removalDueOn: row.removalDueOn ?? null, removalReason: null, removalNote: null, removedAt: null, updatedAt: new Date() })
    return { listingId: row.id, kind, version: row.version!, courtCode: row.courtCode, listKind: row.listKind, listing: view, actor, requestId }
  }

  return {
    /**
     * Creates or updates up to 10 000 listings, idempotent by (court, case number, subject). Every
     * item gets a result in input order; valid items are applied even when others are rejected, and
     * all applied items commit in one transaction together with their change-log events.
     */
    async push(actor: Principal, items: unknown[], requestId?: string): Promise<{ results: PushResult[]; summary: Record<PushStatus, number> }> {
      const day = today()
      const allowed = writableCourtCodes(actor)
      const results: PushResult[] = items.map((_, index) => ({ index, status: 'rejected' as PushStatus }))
      const valid: { index: number; listing: NormalizedListing }[] = []
      const seen = new Map<string, number>()
      items.forEach((item, index) => {
        const r = results[index]!
        if (!validateInput(item)) { r.errors = schemaErrors(validateInput.errors); return }
        const n = normalizeListing(item, { today: day, calendar, defaultCourtCode: actor.courtCode ?? '' })
        if (!n.ok) { r.errors = n.errors; return }
        if (n.warnings.length) r.warnings = n.warnings
        if (!allowed.includes(n.listing.courtCode)) {
          r.errors = [{ field: 'caseNumber', code: 'listings.cross_court_write', message: `court ${actor.courtCode ?? actor.id} may not write listings of court ${n.listing.courtCode}` }]
          return
        }
        const key = `${n.listing.courtCode}\u0000${n.listing.caseNumber}\u0000${n.listing.subjectId}`
        const first = seen.get(key)
        if (first !== undefined) {
          r.errors = [{ field: 'subject', code: 'listings.duplicate_in_request', message: `the same case number and subject as item ${first}` }]
          return
        }
        seen.set(key, index)
        valid.push({ index, listing: n.listing })
      })

      if (valid.length > 0) {
        await repo.inTransaction(async (tx) => {
          await repo.lockCourts(tx, valid.map((v) => v.listing.courtCode))
          const existing = new Map((await repo.findExisting(tx, valid.map((v) => v.listing))).map((e) => [`${e.courtCode}\u0000${e.caseNumber}\u0000${e.subjectId}`, e]))
          const inserts: ListingInsert[] = []
          const updates: ListingInsert[] = []
          const events: NewEvent[] = []
          for (const { index, listing } of valid) {
            const r = results[index]!
            const prior = existing.get(`${listing.courtCode}\u0000${listing.caseNumber}\u0000${listing.subjectId}`)
            if (!prior) {
              const row = toRow(listing, randomUUID(), initialStatus(listing, day), 1, actor.id)
              inserts.push(row)
              // Nothing reaches partners during a grace period (SPC-Goodwill Art. 15).
              if (row.status === 'published') events.push(eventFor(row, 'published', actor.id, requestId))
              Object.assign(r, { status: 'created', listingId: row.id, version: 1, listingStatus: row.status })
            } else if (prior.status === 'removed') {
              r.errors = [{ field: 'caseNumber', code: 'listings.already_removed', message: 'this listing was removed; a new listing needs a new case number' }]
            } else if (prior.contentHash === listing.contentHash) {
              Object.assign(r, { status: 'unchanged', listingId: prior.id, version: prior.version, listingStatus: prior.status })
            } else {
              const status = prior.status === 'published' ? 'published' : initialStatus(listing, day)
              const row = toRow(listing, prior.id, status, prior.version + 1, actor.id)
              updates.push(row)
              if (status === 'published') events.push(eventFor(row, prior.status === 'published' ? 'updated' : 'published', actor.id, requestId))
              Object.assign(r, { status: 'updated', listingId: prior.id, version: row.version, listingStatus: status })
            }
          }
          await repo.insertMany(tx, inserts)
          await repo.updateMany(tx, updates)
          await repo.appendEvents(tx, events)
        })
      }
      const summary = { created: 0, updated: 0, unchanged: 0, rejected: 0 }
      for (const r of results) summary[r.status]++
      return { results, summary }
    },

    /** Removes (屏蔽) a listing with a statutory reason; it stays stored with its history. Idempotent for the same reason. */
    async remove(actor: Principal, id: string, reason: Exclude<RemovalReason, 'expired'>, note: string | undefined, requestId?: string): Promise<Record<string, unknown>> {
      return repo.inTransaction(async (tx) => {
        const row = await repo.lockById(tx, id)
        if (!row) throw listingsError('not_found', 404, `no listing ${id}`)
        if (!writableCourtCodes(actor).includes(row.courtCode)) throw listingsError('cross_court_write', 403, `court ${actor.courtCode ?? actor.id} may not remove listings of court ${row.courtCode}`)
        if (row.status === 'removed') {
          if (row.removalReason === reason) return listingView(row)
          throw listingsError('already_removed', 409, `the listing was already removed (${row.removalReason ?? ''})`, { field: 'body.reason' })
        }
        const version = row.version + 1
        await repo.markRemoved(tx, id, { reason, note: note ?? null, by: actor.id, version })
        const updated = { ...row, status: 'removed' as const, version, removalReason: reason, removalNote: note ?? null, removedAt: new Date() }
        // A listing still in its grace period was never published: partners have nothing to lift.
        if (row.status === 'published') {
          await repo.appendEvents(tx, [{ listingId: id, kind: 'removed', version, courtCode: row.courtCode, listKind: row.listKind, listing: listingView(updated), actor: actor.id, requestId }])
        }
        return listingView(updated)
      })
    },

    /**
     * One scheduler pass: publishes listings whose grace period ended and expires listings whose
     * period ended (reason `expired`, SPC-List Art. 10 para 2), batch by batch, each batch one
     * transaction with its events. Only the process holding the advisory lock works; returns counts.
     */
    async runDue(): Promise<{ expired: number; published: number; skipped: boolean }> {
      const totals = { expired: 0, published: 0, skipped: false }
      for (;;) {
        const batch = await repo.inTransaction(async (tx) => {
          if (!(await repo.tryLock(tx, SCHEDULER_LOCK))) return undefined
          const { expiring, publishing } = await repo.lockDue(tx, today(), SCHEDULER_BATCH)
          const events: NewEvent[] = []
          for (const row of expiring) {
            const version = row.version + 1
            await repo.markRemoved(tx, row.id, { reason: 'expired', note: null, by: 'system', version })
            events.push({ listingId: row.id, kind: 'expired', version, courtCode: row.courtCode, listKind: row.listKind, listing: listingView({ ...row, status: 'removed', version, removalReason: 'expired', removalNote: null, removedAt: new Date() }), actor: 'system' })
          }
          for (const row of publishing) {
            const version = row.version + 1
            await repo.markPublished(tx, row.id, version)
            events.push({ listingId: row.id, kind: 'published', version, courtCode: row.courtCode, listKind: row.listKind, listing: listingView({ ...row, status: 'published', version }), actor: 'system' })
          }
          await repo.appendEvents(tx, events)
          return { expired: expiring.length, published: publishing.length }
        })
        if (!batch) return { ...totals, skipped: true }
        totals.expired += batch.expired
        totals.published += batch.published
        if (batch.expired < SCHEDULER_BATCH && batch.published < SCHEDULER_BATCH) return totals
      }
    },

    /** Listings whose court recorded full performance but did not remove them within 3 working days (未及时屏蔽). */
    async overdueRemovals(viewer: Principal) {
      if (viewer.kind === 'agency') throw listingsError('forbidden', 403, 'the overdue-removal queue is for courts and admins')
      const courts = viewer.kind === 'admin' ? null : writableCourtCodes(viewer)
      const rows = await repo.overdueRemovals(today(), courts)
      return rows.map((r) => ({ id: r.id, courtCode: r.courtCode, caseNumber: r.caseNumber, listKind: r.listKind, subjectName: r.subjectName, fullPerformanceOn: r.fullPerformanceOn, removalDueOn: r.removalDueOn, overdueWorkingDays: calendar.workingDaysBetween(r.removalDueOn!, today()) }))
    },

    /** The change feed in commit order, filtered to the list kinds and projected to the fields the reader may see. */
    /**
     * The change feed after `after`, optionally only some event kinds and list kinds. With `waitSeconds`,
     * an empty answer waits (polling every 250 ms) until an event arrives or the time is up, so a
     * partner can follow the feed without hammering it.
     */
    async changes(viewer: Principal, after: number, limit: number, filter: { kinds?: ListingEventRow['kind'][]; list?: string; waitSeconds?: number } = {}) {
      const allowed = viewer.kind === 'agency' ? (viewer.profile.lists ?? []) : null
      const lists = filter.list === undefined ? allowed : (allowed ?? [filter.list]).filter((l) => l === filter.list)
      const read = () => (lists && lists.length === 0 ? Promise.resolve([]) : repo.changesAfter(after, limit, lists, filter.kinds))
      let rows = await read()
      const until = Date.now() + (filter.waitSeconds ?? 0) * 1000
      while (rows.length === 0 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, Math.min(CHANGES_POLL_MS, until - Date.now())))
        rows = await read()
      }
      return {
        events: rows.map((e) => ({ seq: e.seq, kind: e.kind, listingId: e.listingId, version: e.version, at: e.at.toISOString(), listing: projectListing(e.listing, viewer.profile, viewer.kind) })),
        next: rows.length > 0 ? rows[rows.length - 1]!.seq : after,
        serverTime: nowSeconds(clock),
      }
    },
  }
}

export type ListingsService = ReturnType<typeof createListingsService>
