import { createHash, randomUUID } from 'node:crypto'
import { compactVerify, createLocalJWKSet } from 'jose'
import type { Clock } from '../../infra/clock.js'
import type { GatewayKeys } from '../../infra/gateway-keys.js'
import { shanghaiDate, type WorkingDayCalendar } from '../calendar/working-days.js'
import { maskCreditCode, maskResidentId, parseCreditCode, parseOrgCode, parseResidentId } from '../identity/identity.models.js'
import type { ListingsRepository } from '../listings/listings.repository.js'
import type { ListingsService } from '../listings/listings.service.js'
import type { Principal } from '../principals/principals.models.js'
import {
  applicationsError, correctedInput, correctionDueOn, newTrackingCode, reconsiderationDueOn, reconsiderationWindowEndsOn,
  reviewDueOn, trackingHash, type ApplicationKind, type Correction,
} from './applications.models.js'
import type { ApplicationsRepository, NewAttachment } from './applications.repository.js'
import type { ApplicationRow } from './applications.table.js'

/** Attachment limits: the route's body limit follows from them. */
export const MAX_ATTACHMENTS = 5
export const MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024
export const ATTACHMENT_TYPES = ['application/pdf', 'image/jpeg', 'image/png'] as const

export interface ApplicationInput {
  listingId: string
  ground: string
  applicant: { name: string; idNumber?: string; creditCode?: string; contact: string }
  statement: string
  requestedChanges?: Record<string, unknown>
  attachments?: { fileName: string; mediaType: string; contentBase64: string }[]
}
export interface DecisionInput { outcome: 'accept' | 'reject'; reasons?: string; correction?: Correction; removal?: boolean }

/** Where status changes go besides the tracking page (an SMS or WeChat gateway in a deployment). */
export interface Notifier { notify(event: { applicationId: string; kind: ApplicationKind; status: string; at: string }): void }

/** The default notifier: a log line with no personal data (the applicant reads the tracking page). */
export function logNotifier(log: { info(obj: unknown, msg?: string): void }): Notifier {
  return { notify: (event) => log.info({ notification: event }, 'application status changed') }
}

/**
 * Correction applications (纠正申请, SPC-List Arts. 11–12) and credit repair (信用修复): filing by
 * the listed party, tracking by code, review by the listing's court, reconsideration by its higher
 * court, and the decision applied through the normal listing path (so the change log, the match
 * index and every partner see it at once). Deadlines on the working-day calendar (domain.md §1.8).
 */
export function createApplicationsService(deps: {
  repo: ApplicationsRepository
  listingsRepo: Pick<ListingsRepository, 'findByIds'>
  listings: Pick<ListingsService, 'push' | 'remove'>
  calendar: WorkingDayCalendar
  clock: Clock
  gatewayKeys: GatewayKeys
  hash: (normalizedIdentifier: string) => string
  notifier: Notifier
}) {
  const { repo, calendar, clock } = deps
  const now = () => new Date(clock.nowMs())

  function notify(row: ApplicationRow, at: Date) {
    try { deps.notifier.notify({ applicationId: row.id, kind: row.kind, status: row.status, at: at.toISOString() }) } catch { /* a notifier never fails a decision */ }
  }

  /** The applicant's identifier must be the listed subject's (a repair for someone else's listing is refused). */
  function checkIdentity(input: ApplicationInput, subject: Record<string, unknown>): { masked: string; hash: string } {
    const a = input.applicant
    if ((a.idNumber === undefined) === (a.creditCode === undefined)) throw applicationsError('identifier_required', 400, 'give exactly one of applicant.idNumber, applicant.creditCode', { field: 'body.applicant' })
    let normalized: string
    let masked: string
    if (a.idNumber !== undefined) {
      const id = parseResidentId(a.idNumber, { today: shanghaiDate(now()) })
      if (!id.ok) throw applicationsError('bad_identifier', 400, id.message, { field: 'body.applicant.idNumber' })
      normalized = `idNumber:${id.value}`
      masked = maskResidentId(id.value)
      if (subject.idNumber !== id.value) throw applicationsError('identity_mismatch', 403, 'the applicant is not the listed subject of this listing', { field: 'body.applicant.idNumber' })
    } else {
      const code = parseCreditCode(a.creditCode!)
      if (!code.ok) throw applicationsError('bad_identifier', 400, code.message, { field: 'body.applicant.creditCode' })
      normalized = `creditCode:${code.value}`
      masked = maskCreditCode(code.value)
      const listedOrg = typeof subject.orgCode === 'string' ? parseOrgCode(subject.orgCode) : undefined
      // An entity listed by its legacy organisation code is the holder of the credit code embedding it.
      if (subject.creditCode !== code.value && !(listedOrg?.ok && listedOrg.value === code.orgCode)) {
        throw applicationsError('identity_mismatch', 403, 'the applicant is not the listed subject of this listing', { field: 'body.applicant.creditCode' })
      }
    }
    return { masked, hash: deps.hash(normalized) }
  }

  function decodeAttachments(applicationId: string, list: ApplicationInput['attachments'] = []): NewAttachment[] {
    return list.map((a, i) => {
      const bytes = Buffer.from(a.contentBase64, 'base64')
      if (bytes.length === 0 || bytes.toString('base64').replace(/=+$/, '') !== a.contentBase64.replace(/\s/g, '').replace(/=+$/, '')) {
        throw applicationsError('bad_attachment', 400, `attachment ${i} is not base64`, { field: `body.attachments.${i}.contentBase64` })
      }
      if (bytes.length > MAX_ATTACHMENT_BYTES) throw applicationsError('attachment_too_large', 413, `attachment ${i} has ${bytes.length} bytes; at most ${MAX_ATTACHMENT_BYTES}`, { field: `body.attachments.${i}` })
      return { id: randomUUID(), applicationId, fileName: a.fileName, mediaType: a.mediaType, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), bytes }
    })
  }

  async function listingOf(id: string) {
    const [listing] = await deps.listingsRepo.findByIds([id])
    if (!listing) throw applicationsError('listing_not_found', 404, `no listing ${id}`, { field: 'body.listingId' })
    return listing
  }

  /** What anyone holding the tracking code may see: status, deadlines, decisions, history; no identifiers. */
  async function publicView(row: ApplicationRow) {
    const [events, attachments, certificate] = await Promise.all([repo.events(row.id), repo.attachmentsOf(row.id), repo.certificateOf(row.id)])
    const today = shanghaiDate(now())
    const dueOn = row.status === 'reconsideration' ? row.reconsiderationDueOn : row.status === 'under_review' ? row.reviewDueOn : null
    return {
      kind: row.kind, status: row.status, listingId: row.listingId, ground: row.ground, receivedOn: row.receivedOn,
      reviewDueOn: row.reviewDueOn, dueOn, overdue: dueOn !== null && today > dueOn,
      decision: row.decision, correctionDueOn: row.correctionDueOn, reconsiderationWindowEndsOn: row.reconsiderationWindowEndsOn,
      reconsideration: row.reconsideration, reconsiderationDueOn: row.reconsiderationDueOn,
      applicant: { name: row.applicant.name, identifier: row.applicant.identifierMasked },
      attachments: attachments.map((a) => ({ fileName: a.fileName, mediaType: a.mediaType, size: a.size, sha256: a.sha256 })),
      certificateId: certificate?.id ?? null,
      history: events.map((e) => ({ at: e.at.toISOString(), status: e.status, by: e.actor === 'applicant' ? 'applicant' : 'court', note: e.note })),
    }
  }

  /** A court's view of an item in its queue. */
  function queueView(row: ApplicationRow, today: string) {
    const stage = row.status === 'reconsideration' ? 'reconsideration' : 'review'
    const dueOn = stage === 'reconsideration' ? row.reconsiderationDueOn! : row.reviewDueOn
    return {
      id: row.id, kind: row.kind, stage, status: row.status, listingId: row.listingId, courtCode: row.courtCode, ground: row.ground,
      applicant: { name: row.applicant.name, identifier: row.applicant.identifierMasked, contact: row.applicant.contact },
      statement: row.statement, requestedChanges: row.requestedChanges, receivedOn: row.receivedOn, dueOn, overdue: today > dueOn,
      decision: row.decision, reconsideration: row.reconsideration,
    }
  }

  async function issueCertificate(row: ApplicationRow, listing: Awaited<ReturnType<typeof listingOf>>, decidedOn: string, court: Principal) {
    const id = randomUUID()
    const issuedAt = now()
    const subject = listing.record.subject as Record<string, unknown>
    const payload = {
      typ: 'credit-repair-certificate', id, listingId: listing.id, caseNumber: listing.caseNumber,
      court: { code: listing.courtCode, name: listing.courtName }, subject: { kind: subject.kind, name: subject.name, identifier: row.applicant.identifierMasked },
      ground: row.ground, decidedOn, decidedBy: court.id, iat: Math.floor(issuedAt.getTime() / 1000),
    }
    const bytes = Buffer.from(JSON.stringify(payload))
    // The gateway's detached signature over the payload, re-attached: a compact JWS (RFC 7515 §7.1).
    const [header, , signature] = (await deps.gatewayKeys.signDetached(bytes, { typ: 'JWT' })).split('.')
    return { id, applicationId: row.id, listingId: listing.id, jws: `${header}.${bytes.toString('base64url')}.${signature}`, issuedAt }
  }

  return {
    async file(kind: ApplicationKind, input: ApplicationInput, requestId: string) {
      const listing = await listingOf(input.listingId)
      if (listing.status !== 'published') throw applicationsError('listing_not_active', 409, `listing ${listing.id} is ${listing.status}; only an active listing can be ${kind === 'appeal' ? 'corrected' : 'repaired'}`, { field: 'body.listingId' })
      const identity = checkIdentity(input, listing.record.subject as Record<string, unknown>)
      const id = randomUUID()
      const attachments = decodeAttachments(id, input.attachments)
      const code = newTrackingCode()
      const at = now()
      const receivedOn = shanghaiDate(at)
      const row = {
        id, kind, trackingHash: trackingHash(code)!, listingId: listing.id, listingVersion: listing.version, courtCode: listing.courtCode,
        ground: input.ground, applicant: { name: input.applicant.name, identifierMasked: identity.masked, identifierHash: identity.hash, contact: input.applicant.contact },
        statement: input.statement, requestedChanges: input.requestedChanges ?? null, status: 'under_review' as const,
        receivedOn, reviewDueOn: reviewDueOn(calendar, receivedOn),
      }
      await repo.inTransaction(async (tx) => {
        // One open application of a kind per listing: a second one waits for the first's decision.
        await repo.lockListing(tx, listing.id)
        if (await repo.hasPending(tx, listing.id, kind)) throw applicationsError('already_pending', 409, `an application on listing ${listing.id} is already open`, { field: 'body.listingId' })
        await repo.insert(tx, row, attachments, { at, actor: 'applicant', note: null, requestId })
      })
      notify({ ...row, createdAt: at, updatedAt: at } as ApplicationRow, at)
      return { trackingCode: code, kind, status: row.status, listingId: listing.id, receivedOn, reviewDueOn: row.reviewDueOn }
    },

    async track(kind: ApplicationKind, code: string) {
      const hash = trackingHash(code)
      const row = hash ? await repo.byTrackingHash(hash, kind) : undefined
      if (!row) throw applicationsError('not_found', 404, 'no application with this tracking code')
      return publicView(row)
    },

    /** SPC-List Art. 12: a rejected applicant asks the next-higher court within the window. */
    async reconsider(code: string, statement: string, requestId: string) {
      const hash = trackingHash(code)
      if (!hash) throw applicationsError('not_found', 404, 'no application with this tracking code')
      const at = now()
      const today = shanghaiDate(at)
      const found = await repo.byTrackingHash(hash, 'appeal')
      if (!found) throw applicationsError('not_found', 404, 'no application with this tracking code')
      // Read before the transaction: on the embedded database a query outside it would wait for it.
      const higher = await repo.higherCourtOf(found.courtCode)
      const row = await repo.inTransaction(async (tx) => {
        const app = (await repo.lockByTrackingHash(tx, hash, 'appeal'))!
        if (app.status !== 'rejected') throw applicationsError('not_rejected', 409, `reconsideration is for a rejected application; this one is ${app.status}`)
        if (today > app.reconsiderationWindowEndsOn!) throw applicationsError('reconsideration_window_closed', 409, `the window for reconsideration ended on ${app.reconsiderationWindowEndsOn}`)
        if (!higher) throw applicationsError('no_higher_court', 409, `no higher court is registered for court ${app.courtCode}`)
        return repo.update(tx, app.id, {
          status: 'reconsideration', higherCourtCode: higher, reconsideration: { statement, filedOn: today }, reconsiderationDueOn: reconsiderationDueOn(calendar, today),
        }, { at, actor: 'applicant', note: null, requestId })
      })
      notify(row, at)
      return publicView(row)
    },

    async queue(court: Principal, kind: ApplicationKind, limit: number) {
      if (!court.courtCode) throw applicationsError('not_a_court', 403, 'review queues belong to courts')
      const today = shanghaiDate(now())
      return (await repo.queue(kind, [court.courtCode], court.courtCode, limit)).map((r) => queueView(r, today))
    },

    /**
     * A court's decision: the listing's court at first instance, its higher court on reconsideration.
     * Accepting applies the correction (or removal, or for a repair the removal with reason
     * `credit_repair` and a certificate) through the listing service before the status changes.
     */
    async decide(court: Principal, id: string, input: DecisionInput, requestId: string, kind: ApplicationKind) {
      const at = now()
      const decidedOn = shanghaiDate(at)
      const check = (app: ApplicationRow | undefined): ApplicationRow => {
        // An id of the other kind is not found on this path, like an unknown one.
        if (!app || app.kind !== kind) throw applicationsError('not_found', 404, `no application ${id}`)
        const stage = app.status === 'under_review' ? 'review' : app.status === 'reconsideration' ? 'reconsideration' : undefined
        if (!stage) throw applicationsError('already_decided', 409, `application ${id} was already decided (${app.status})`)
        const deciding = stage === 'review' ? app.courtCode : app.higherCourtCode
        if (court.courtCode !== deciding) throw applicationsError('not_your_court', 403, `application ${id} is decided by court ${deciding ?? '?'}`)
        return app
      }
      const pending = check(await repo.byId(id))
      const reconsidering = pending.status === 'reconsideration'
      const listing = await listingOf(pending.listingId)
      let status: ApplicationRow['status']
      const decision: Record<string, unknown> = { outcome: input.outcome, reasons: input.reasons ?? null, decidedOn, decidedBy: court.id }
      let certificate: Awaited<ReturnType<typeof issueCertificate>> | undefined
      if (input.outcome === 'reject') {
        if (!input.reasons) throw applicationsError('reasons_required', 400, 'a rejection states its reasons', { field: 'body.reasons' })
        status = reconsidering ? 'upheld' : 'rejected'
      } else if (pending.kind === 'repair') {
        await deps.listings.remove(court, listing.id, 'credit_repair', input.reasons, requestId)
        certificate = await issueCertificate(pending, listing, decidedOn, court)
        status = 'approved'
      } else {
        const hasCorrection = input.correction !== undefined && Object.keys(input.correction).length > 0
        if (hasCorrection === (input.removal === true)) throw applicationsError('correction_required', 400, 'accepting an appeal gives either a correction or removal: true', { field: 'body.correction' })
        if (input.removal) {
          await deps.listings.remove(court, listing.id, 'corrected', input.reasons, requestId)
          status = 'removed'
        } else {
          const result = await deps.listings.push(court, [correctedInput(listing.record, input.correction!)], requestId)
          const r = result.results[0]!
          if (r.status === 'rejected') throw applicationsError('correction_invalid', 422, 'the corrected listing does not validate', { field: 'body.correction', errors: r.errors })
          decision.listingVersion = r.version
          status = 'corrected'
        }
        decision.correction = input.correction ?? null
        decision.removal = input.removal === true
        // Applied with the decision, so always inside the 3 working days of SPC-List Arts. 9/11.
        decision.appliedOn = decidedOn
      }
      const row = await repo.inTransaction(async (tx) => {
        const app = check(await repo.lockById(tx, id))
        if (certificate) await repo.insertCertificate(tx, certificate)
        const patch: Parameters<ApplicationsRepository['update']>[2] = { status }
        if (reconsidering) patch.reconsideration = { ...app.reconsideration, decision }
        else patch.decision = decision
        if (status === 'rejected') patch.reconsiderationWindowEndsOn = reconsiderationWindowEndsOn(calendar, decidedOn)
        if (status === 'corrected' || status === 'removed') patch.correctionDueOn = correctionDueOn(calendar, decidedOn)
        return repo.update(tx, id, patch, { at, actor: court.id, note: input.reasons ?? null, requestId })
      })
      notify(row, at)
      return { id: row.id, kind: row.kind, status: row.status, decision, certificateId: certificate?.id ?? null, correctionDueOn: row.correctionDueOn, reconsiderationWindowEndsOn: row.reconsiderationWindowEndsOn }
    },

    /** Checks a stored certificate: the gateway's signature (JWKS) and that the listing is still removed by repair. */
    async verifyCertificate(id: string) {
      const cert = await repo.certificate(id)
      if (!cert) throw applicationsError('certificate_not_found', 404, `no certificate ${id}`)
      let valid = true
      let payload: Record<string, unknown> | undefined
      try {
        const verified = await compactVerify(cert.jws, createLocalJWKSet(deps.gatewayKeys.jwks as never), { algorithms: ['ES256', 'EdDSA'] })
        payload = JSON.parse(Buffer.from(verified.payload).toString('utf8')) as Record<string, unknown>
      } catch {
        valid = false
      }
      const [listing] = await deps.listingsRepo.findByIds([cert.listingId])
      const listingRemovedByRepair = listing?.status === 'removed' && listing.removalReason === 'credit_repair'
      return { id: cert.id, valid: valid && listingRemovedByRepair && payload?.id === cert.id, signatureValid: valid, listingRemovedByRepair, certificate: payload ?? null, jws: cert.jws, issuedAt: cert.issuedAt.toISOString() }
    },

    pendingListingIds: (ids: string[]) => repo.pendingListingIds(ids),
  }
}

export type ApplicationsService = ReturnType<typeof createApplicationsService>
