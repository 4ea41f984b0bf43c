import { randomUUID } from 'node:crypto'
import type { Db } from '../../infra/db.js'
import { AppError } from '../../infra/errors.js'
import { matchKeysForCreditCode, matchKeyForOrgCode, parseCreditCode, parseOrgCode, parseResidentId } from '../identity/identity.models.js'
import type { MatchKey, MatchRole } from '../listings/listings.models.js'
import { createListingsRepository } from '../listings/listings.repository.js'
import { listingView, projectListing } from '../listings/listings.view.js'
import type { Principal } from '../principals/principals.models.js'
import { matchingError } from './matching.errors.js'
import type { MatchIndex } from './matching.index.js'
import type { QuotaGuard } from './matching.quota.js'

/** DESIGN.md: a batch carries up to 10 000 subjects. */
export const MAX_BATCH_SUBJECTS = 10_000

export interface MatchSubject { idNumber?: string; creditCode?: string; orgCode?: string; name?: string }
export type Decision = 'allow' | 'review' | 'deny'
export interface MatchedListing { role: MatchRole; nameMismatch: boolean; listing: Record<string, unknown> }
export interface MatchResult {
  matched: boolean
  decision: Decision
  grade: string | null
  measures: { code: string; title: string; basis: string }[]
  receiptId: string
  listings: MatchedListing[]
}
export interface ItemError { code: string; field: string; message: string }

/**
 * What a hit means for this agency and scenario. Until the rules engine lands, the minimal default
 * of issue 4: listed → review, not listed → allow; the engine will fill the same interface.
 */
export interface DecisionPolicy {
  decide(hits: { role: MatchRole; listKind: string; record: Record<string, unknown> }[], ctx: { agency: Principal; scenario?: string }): { decision: Decision; grade: string | null; measures: MatchResult['measures'] }
}
export const defaultDecisionPolicy: DecisionPolicy = {
  decide: (hits) => ({ decision: hits.length > 0 ? 'review' : 'allow', grade: null, measures: [] }),
}

export interface AuditSink {
  append(entries: {
    principalId: string; action: string; operationId: string; requestId: string; subjectHash: string | null
    scenario: string | null; receiptId: string | null; result: Record<string, unknown>
  }[]): Promise<void>
}

type Parsed = { ok: true; lookups: { type: MatchKey['type']; key: string }[]; auditKey: string } | { ok: false; error: ItemError }

/** The identifier a subject gives, normalized into the index's keys (a credit code also by its org code). */
export function parseSubject(s: MatchSubject, field = 'body'): Parsed {
  const given = (['idNumber', 'creditCode', 'orgCode'] as const).filter((k) => s[k] !== undefined)
  if (given.length !== 1) return { ok: false, error: { code: 'match.identifier_required', field, message: 'give exactly one of idNumber, creditCode, orgCode' } }
  const kind = given[0]!
  if (kind === 'idNumber') {
    const id = parseResidentId(s.idNumber!)
    return id.ok ? { ok: true, lookups: [{ type: 'idNumber', key: id.value }], auditKey: `idNumber:${id.value}` } : { ok: false, error: { code: id.code, field: `${field}.idNumber`, message: id.message } }
  }
  if (kind === 'creditCode') {
    const code = parseCreditCode(s.creditCode!)
    if (!code.ok) return { ok: false, error: { code: code.code, field: `${field}.creditCode`, message: code.message } }
    const [creditKey, orgKey] = matchKeysForCreditCode(code.value)
    return { ok: true, lookups: [{ type: 'creditCode', key: creditKey }, { type: 'orgCode', key: orgKey }], auditKey: `creditCode:${code.value}` }
  }
  const org = parseOrgCode(s.orgCode!)
  if (!org.ok) return { ok: false, error: { code: org.code, field: `${field}.orgCode`, message: org.message } }
  const key = matchKeyForOrgCode(org.value)
  return { ok: true, lookups: [{ type: 'orgCode', key }], auditKey: `orgCode:${key}` }
}

export function createMatchingService(deps: { db: Db; index: MatchIndex; audit: AuditSink; hash: (id: string) => string; quota?: Pick<QuotaGuard, 'consume'>; policy?: DecisionPolicy }) {
  const { index, audit, hash } = deps
  const listingsRepo = createListingsRepository(deps.db)
  const policy = deps.policy ?? defaultDecisionPolicy

  return {
    /**
     * Matches subjects for an agency: index look-up in memory, details of the (rare) hits from
     * PostgreSQL, a decision per subject, and one audit entry per subject committed before the
     * answer. Per-subject errors do not fail the batch and are not audited as matches.
     */
    async match(agency: Principal, subjects: MatchSubject[], opts: { scenario?: string; requestId: string; operationId: string; single: boolean }): Promise<(MatchResult | { error: ItemError })[]> {
      const lists = new Set(agency.profile.lists ?? [])
      if (lists.size === 0) throw matchingError('no_lists', 403, `agency ${agency.id} may not match any list (profile.lists is empty)`)
      if (opts.scenario !== undefined && !(agency.profile.scenarios ?? []).includes(opts.scenario)) {
        throw matchingError('unknown_scenario', 400, `scenario "${opts.scenario}" is not in agency ${agency.id}'s profile`, { field: 'body.scenario' })
      }
      const single = opts.single
      const parsed = subjects.map((s, i) => parseSubject(s, single ? 'body' : `body.subjects.${i}`))
      const first = parsed[0]!
      // A single match with a bad identifier is a request error (the identity module's own code).
      if (single && !first.ok) throw new AppError(first.error.code, 400, first.error.message, { field: first.error.field })
      // Only subjects that will really be matched count against the daily quota.
      await deps.quota?.consume(agency, parsed.filter((p) => p.ok).length)
      // Index hits, filtered to the lists this agency may match.
      const hits = parsed.map((p) => {
        if (!p.ok) return []
        const seen = new Map<string, { listingId: string; role: MatchRole; key: string; type: MatchKey['type'] }>()
        for (const l of p.lookups) {
          for (const h of index.lookup(l.type, l.key)) {
            if (lists.has(h.listKind) && !seen.has(h.listingId)) seen.set(h.listingId, { listingId: h.listingId, role: h.role, key: l.key, type: l.type })
          }
        }
        return [...seen.values()]
      })
      const rows = new Map((await listingsRepo.findByIds([...new Set(hits.flat().map((h) => h.listingId))])).map((r) => [r.id, r]))

      const results: (MatchResult | { error: ItemError })[] = []
      const entries: Parameters<AuditSink['append']>[0] = []
      parsed.forEach((p, i) => {
        if (!p.ok) { results.push({ error: p.error }); return }
        const subject = subjects[i]!
        const matched: MatchedListing[] = []
        const forPolicy: Parameters<DecisionPolicy['decide']>[0] = []
        for (const h of hits[i]!) {
          const row = rows.get(h.listingId)
          // Verify against the stored keys: a removal racing this request, or a 64-bit hash collision, is not a hit.
          const key = row?.status === 'published' ? (row.matchKeys as MatchKey[]).find((k) => k.type === h.type && k.key === h.key) : undefined
          if (!row || !key) continue
          const nameMismatch = subject.name !== undefined && subject.name.trim() !== key.name
          matched.push({ role: key.role, nameMismatch, listing: projectListing(listingView(row), agency.profile, 'agency') })
          forPolicy.push({ role: key.role, listKind: row.listKind, record: row.record })
        }
        const { decision, grade, measures } = policy.decide(forPolicy, { agency, scenario: opts.scenario })
        const receiptId = randomUUID()
        results.push({ matched: matched.length > 0, decision, grade, measures, receiptId, listings: matched })
        entries.push({
          principalId: agency.id, action: 'match', operationId: opts.operationId, requestId: opts.requestId, subjectHash: hash(p.auditKey),
          scenario: opts.scenario ?? null, receiptId,
          result: { matched: matched.length > 0, decision, grade, listings: matched.map((m) => ({ id: m.listing.id, version: m.listing.version, role: m.role, nameMismatch: m.nameMismatch })) },
        })
      })
      // 全程留痕: the entries are committed before any answer leaves.
      await audit.append(entries)
      return results
    },
  }
}

export type MatchingService = ReturnType<typeof createMatchingService>
