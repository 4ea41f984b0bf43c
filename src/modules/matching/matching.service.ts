import type { Db } from '../../infra/db.js'
import { systemClock, type Clock } from '../../infra/clock.js'
import { AppError } from '../../infra/errors.js'
import { canonicalText, newReceiptBase, receiptIdsOf } from '../audit/audit.models.js'
import { shanghaiDate } from '../calendar/working-days.js'
import { matchKeysForCreditCode, matchKeyForOrgCode, parseCreditCode, parseOrgCode, parseResidentId } from '../identity/identity.models.js'
import type { MatchKey, MatchRole } from '../listings/listings.models.js'
import { createListingsRepository } from '../listings/listings.repository.js'
import { listingView, projectListing } from '../listings/listings.view.js'
import type { Principal } from '../principals/principals.models.js'
import { matchingError } from './matching.errors.js'
import type { MatchIndex } from './matching.index.js'
import type { QuotaGuard } from './matching.quota.js'
import type { CompiledRules, Decision, Explanation, MeasureOutcome, RuleHit } from '../rules/rules.models.js'

/** DESIGN.md: a batch carries up to 10 000 subjects. */
export const MAX_BATCH_SUBJECTS = 10_000

export interface MatchSubject { idNumber?: string; creditCode?: string; orgCode?: string; name?: string }
export interface MatchedListing { role: MatchRole; nameMismatch: boolean; listing: Record<string, unknown> }
export interface MatchResult {
  matched: boolean
  decision: Decision
  grade: string | null
  measures: readonly MeasureOutcome[]
  ruleSetVersion: number
  receiptId: string
  listings: MatchedListing[]
  explain?: Explanation
}
export interface ItemError { code: string; field: string; message: string }

/** The compiled rule set in force (rules.service.ts), read once per request. */
export interface RulesSource { current(): { compiled: CompiledRules } }

export interface AuditSink {
  append(entries: {
    principalId: string; action: string; operationId: string; requestId: string; subjectHash: string | null
    scenario: string | null; receiptId: string | null; result: Record<string, unknown>
  }[]): Promise<void>
}

/** A subject as the audit entry records it: the keyed hash, never the identifier; a refused item keeps its place. */
type AuditItem = { decision: Decision; grade?: string | null; listings?: { id: unknown; nameMismatch: boolean; role: MatchRole; version: unknown }[]; matched: boolean; measures?: string[]; subjectHash: string }

type Lookup = { type: MatchKey['type']; key: string }
type Parsed = { ok: true; lookups: Lookup[]; auditKey: string } | { ok: false; error: ItemError }

/**
 * The identifier a subject gives, normalized into the index's keys (a credit code also by its org
 * code). `today` (China date) bounds birth dates; `field` prefixes an error's field, e.g. `body.subjects.3`.
 */
export function parseSubject(s: MatchSubject, today: string, field: () => string): Parsed {
  const n = (s.idNumber !== undefined ? 1 : 0) + (s.creditCode !== undefined ? 1 : 0) + (s.orgCode !== undefined ? 1 : 0)
  if (n !== 1) return { ok: false, error: { code: 'match.identifier_required', field: field(), message: 'give exactly one of idNumber, creditCode, orgCode' } }
  if (s.idNumber !== undefined) {
    const id = parseResidentId(s.idNumber, { today })
    return id.ok ? { ok: true, lookups: [{ type: 'idNumber', key: id.value }], auditKey: `idNumber:${id.value}` } : { ok: false, error: { code: id.code, field: `${field()}.idNumber`, message: id.message } }
  }
  if (s.creditCode !== undefined) {
    const code = parseCreditCode(s.creditCode)
    if (!code.ok) return { ok: false, error: { code: code.code, field: `${field()}.creditCode`, message: code.message } }
    const [creditKey, orgKey] = matchKeysForCreditCode(code.value)
    return { ok: true, lookups: [{ type: 'creditCode', key: creditKey }, { type: 'orgCode', key: orgKey }], auditKey: `creditCode:${code.value}` }
  }
  const org = parseOrgCode(s.orgCode!)
  if (!org.ok) return { ok: false, error: { code: org.code, field: `${field()}.orgCode`, message: org.message } }
  const key = matchKeyForOrgCode(org.value)
  return { ok: true, lookups: [{ type: 'orgCode', key }], auditKey: `orgCode:${key}` }
}

type Hit = { listingId: string; role: MatchRole; key: string; type: MatchKey['type'] }
const NO_HITS: Hit[] = []

/** The index's hits for a subject's keys, on the lists the agency may match, one per listing. */
function indexHits(index: MatchIndex, lookups: Lookup[], lists: Set<string>): Hit[] {
  let out = NO_HITS
  for (const l of lookups) {
    for (const h of index.lookup(l.type, l.key)) {
      if (!lists.has(h.listKind) || out.some((o) => o.listingId === h.listingId)) continue
      if (out === NO_HITS) out = []
      out.push({ listingId: h.listingId, role: h.role, key: l.key, type: l.type })
    }
  }
  return out
}

export function createMatchingService(deps: { db: Db; index: MatchIndex; audit: AuditSink; hash: (id: string) => string; quota?: Pick<QuotaGuard, 'consume'>; rules: RulesSource; clock?: Clock; appeals?: { pendingListingIds(ids: string[]): Promise<Set<string>> } }) {
  const { index, audit, hash } = deps
  const clock = deps.clock ?? systemClock
  const listingsRepo = createListingsRepository(deps.db)

  return {
    /**
     * Matches subjects for an agency: index look-up in memory, details of the (rare) hits from
     * PostgreSQL, a decision per subject, and one audit entry per request (an item per subject,
     * each with its own receipt) committed before the answer. Per-subject errors do not fail the
     * batch and are not counted as matches.
     */
    async match(agency: Principal, subjects: MatchSubject[], opts: { scenario?: string; explain?: boolean; requestId: string; operationId: string; single: boolean }): Promise<(MatchResult | { error: ItemError })[]> {
      const lists = new Set(agency.profile.lists ?? [])
      if (lists.size === 0) throw matchingError('no_lists', 403, `agency ${agency.id} may not match any list (profile.lists is empty)`)
      if (opts.scenario !== undefined && !(agency.profile.scenarios ?? []).includes(opts.scenario)) {
        throw matchingError('unknown_scenario', 400, `scenario "${opts.scenario}" is not in agency ${agency.id}'s profile`, { field: 'body.scenario' })
      }
      const single = opts.single
      // One rule-set version for the whole request, named in every result.
      const rules = deps.rules.current().compiled
      const agencyCode = agency.profile.agency ?? agency.id
      const today = shanghaiDate(new Date(clock.nowMs()))
      const parsed = subjects.map((s, i) => parseSubject(s, today, single ? () => 'body' : () => `body.subjects.${i}`))
      const first = parsed[0]!
      // A single match with a bad identifier is a request error (the identity module's own code).
      if (single && !first.ok) throw new AppError(first.error.code, 400, first.error.message, { field: first.error.field })
      // Only subjects that will really be matched count against the daily quota.
      await deps.quota?.consume(agency, parsed.filter((p) => p.ok).length)
      // Index hits, filtered to the lists this agency may match.
      const hits = parsed.map((p) => (p.ok ? indexHits(index, p.lookups, lists) : NO_HITS))
      const hitIds = [...new Set(hits.flat().map((h) => h.listingId))]
      const [found, underAppeal] = await Promise.all([listingsRepo.findByIds(hitIds), hitIds.length > 0 && deps.appeals ? deps.appeals.pendingListingIds(hitIds) : new Set<string>()])
      const rows = new Map(found.map((r) => [r.id, r]))

      // One audit entry for the whole request, one item per subject in input order (receipts below).
      const receiptBase = newReceiptBase()
      const receiptOf = receiptIdsOf(receiptBase)
      const results: (MatchResult | { error: ItemError })[] = []
      const items: string[] = []
      let singleHash: string | null = null
      const summary = { ruleSetVersion: rules.version, subjects: 0, refused: 0, matched: 0, allow: 0, review: 0, deny: 0 }
      parsed.forEach((p, i) => {
        if (!p.ok) { results.push({ error: p.error }); items.push(JSON.stringify({ error: p.error.code })); summary.refused++; return }
        const subject = subjects[i]!
        const matched: MatchedListing[] = []
        const ruleHits: RuleHit[] = []
        for (const h of hits[i]!) {
          const row = rows.get(h.listingId)
          // Verify against the stored keys: a removal racing this request, or a 64-bit hash collision, is not a hit.
          const key = row?.status === 'published' ? (row.matchKeys as MatchKey[]).find((k) => k.type === h.type && k.key === h.key) : undefined
          if (!row || !key) continue
          const nameMismatch = subject.name !== undefined && subject.name.trim() !== key.name
          // A correction or repair application is pending (issue 6): agencies see it, the rule set's policy weighs it.
          const appealPending = underAppeal.has(row.id)
          matched.push({ role: key.role, nameMismatch, listing: { ...projectListing(listingView(row), agency.profile, 'agency'), appealPending } })
          ruleHits.push({ role: key.role, listKind: row.listKind, subjectKind: row.subjectKind, record: row.record, appealPending })
        }
        const { decision, grade, measures, explain } = rules.evaluate({ agency: agencyCode, scenario: opts.scenario, today, hits: ruleHits, explain: opts.explain })
        const isMatch = matched.length > 0
        results.push({ matched: isMatch, decision, grade, measures, ruleSetVersion: rules.version, receiptId: receiptOf(i), listings: matched, ...(explain ? { explain } : {}) })
        summary.subjects++
        if (isMatch) summary.matched++
        summary[decision]++
        // Keys inserted in sorted order, so JSON.stringify gives the audit's canonical JSON (canonicalText).
        const item: AuditItem = isMatch
          ? { decision, grade, listings: matched.map((m) => ({ id: m.listing.id, nameMismatch: m.nameMismatch, role: m.role, version: m.listing.version })), matched: true, measures: measures.map((m) => m.code), subjectHash: hash(p.auditKey) }
          : { decision, matched: false, subjectHash: hash(p.auditKey) }
        items.push(JSON.stringify(item))
        if (single) singleHash = item.subjectHash
      })
      // 全程留痕: the entry is committed before any answer leaves; a request whose every subject
      // was refused matched nothing and is not on record as a match.
      if (summary.subjects > 0) {
        await audit.append([{
          principalId: agency.id, action: 'match', operationId: opts.operationId, requestId: opts.requestId,
          subjectHash: singleHash, scenario: opts.scenario ?? null, receiptId: receiptBase, result: { summary, items: canonicalText(`[${items.join(',')}]`) },
        }])
      }
      return results
    },
  }
}

export type MatchingService = ReturnType<typeof createMatchingService>
