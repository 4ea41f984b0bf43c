/**
 * The graded-punishment rules engine, pure part: the rule-set document (schemas/RuleSet.json, the
 * default in rules/default.json), its validation, its compilation into look-up tables and the
 * evaluation of one subject's hits for one agency and scenario. No I/O apart from reading the
 * default file; no clock (the caller passes today's China date).
 *
 * Sources: ../shared/domain.md §3.3 (the measure table), §4.2 (the grading PROPOSAL: kept as
 * configuration, never as hard-coded law), §2 (consumption restriction), SPC-Goodwill Art. 16 (an
 * entity's officers are restricted persons, not listed ones: only `EP` measures fire on them).
 */
import { readFileSync } from 'node:fs'
import type { ErrorObject, ValidateFunction } from 'ajv'
import { createErrorFactory } from '../../infra/errors.js'
import { projectPath } from '../../infra/paths.js'
import { createAjv } from '../../infra/schemas.js'
import type { IsoDate } from '../calendar/working-days.js'
import type { Ground, ListKind, MatchRole } from '../listings/listings.models.js'

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

/** §4.2 grades, lowest first: L0 restricted-only, L1 general, L2 serious, L3 aggravated. */
export const GRADES = ['L0', 'L1', 'L2', 'L3'] as const
export type Grade = (typeof GRADES)[number]

/** Weakest first: the strongest decision among the measures wins. */
export const DECISIONS = ['allow', 'review', 'deny'] as const
export type Decision = (typeof DECISIONS)[number]

/** §3.3 Effect column. */
export const EFFECTS = ['BLOCK', 'REVIEW', 'FLAG', 'RECORD'] as const
export type Effect = (typeof EFFECTS)[number]

/**
 * What an effect yields when nothing weakens it. A statutory measure's decision may never fall
 * below this (§4.2 design constraint): BLOCK is a refusal, REVIEW a human decision.
 */
export const STATUTORY_FLOOR: Readonly<Record<Effect, Decision>> = { BLOCK: 'deny', REVIEW: 'review', FLAG: 'allow', RECORD: 'allow' }

/** §3.3 Applies-to column: P listed person, E listed entity, EP an entity's legal representative or restricted person. */
export const ROLE_CLASSES = ['P', 'E', 'EP'] as const
export type RoleClass = (typeof ROLE_CLASSES)[number]

const LIST_KINDS = ['dishonest', 'restricted'] as const satisfies readonly ListKind[]

export const CRITERION_KINDS = [
  'graceActive', 'listKind', 'anyGround', 'groundCount', 'amountAbove', 'concurrentListings', 'listingsWithin', 'extended', 'convictedOfRefusal',
] as const
export type CriterionKind = (typeof CRITERION_KINDS)[number]

export type AppealPolicy = 'unchanged' | 'review'

// ---------------------------------------------------------------------------------------------
// The document (schemas/RuleSet.json is the source of truth; these types mirror it)
// ---------------------------------------------------------------------------------------------

export interface GradeCriterion {
  id: string
  grade: Grade
  kind: CriterionKind
  /** When it matches, the hit takes this grade and nothing else applies (§4.2 L0 rows). */
  exclusive?: boolean
  /** Checked only once the other criteria reached at least this grade (§4.2 L3: L2 with > ¥10m). */
  requiresGrade?: Grade
  listKinds?: ListKind[]
  grounds?: Ground[]
  min?: number
  years?: number
  personAbove?: number
  entityAbove?: number
  note?: string
}

export interface GradeModifier {
  id: string
  kind: 'partialPerformance'
  minShare: number
  lowerBy: number
  floor: Grade
  note?: string
}

export interface DecisionRule { decision: Decision; notice?: string }

export interface MeasureDefinition {
  code: string
  /** The agency's principal id (slug), e.g. caac. */
  agency: string
  agencyName: string
  title: string
  basis: string
  appliesTo: RoleClass[]
  scenarios: string[]
  listKinds: ListKind[]
  minGrade: Grade
  effect: Effect
  /** Mandated by statute or a court order: never weakened by grading or by the appeal policy. */
  statutory: boolean
  /** The decision before grading; always decisions.effects[effect].decision. */
  decision: Decision
  note?: string
}

export interface AgencyDefinition { code: string; name: string; formerNames?: string[] }

export interface RuleSet {
  id: string
  title: string
  note?: string
  /** domain.md §3.1: the agencies measures may name, by current slug. */
  agencies: AgencyDefinition[]
  grading: { defaultGrade: Grade; criteria: GradeCriterion[]; modifiers: GradeModifier[] }
  decisions: { effects: Record<Effect, DecisionRule>; reviewByGrade: Partial<Record<Grade, DecisionRule>> }
  policy: { appealPending: AppealPolicy; appealNotice: string }
  measures: MeasureDefinition[]
}

// ---------------------------------------------------------------------------------------------
// Validation: the JSON Schema, then what a schema cannot say
// ---------------------------------------------------------------------------------------------

export interface RuleSetError { field: string; code: string; message: string }
export type RuleSetValidation = { ok: true; ruleSet: RuleSet } | { ok: false; errors: RuleSetError[] }

/** Stable error codes of validateRuleSet (an admin publishing a rule set branches on them). */
export const RULE_SET_ERROR_CODES = {
  schema: 'rules.schema',
  duplicateMeasure: 'rules.duplicate_measure',
  duplicateCriterion: 'rules.duplicate_criterion',
  unknownGrade: 'rules.unknown_grade',
  statutoryWeakened: 'rules.statutory_weakened',
  decisionMismatch: 'rules.decision_mismatch',
  exclusiveRequiresGrade: 'rules.exclusive_requires_grade',
  unknownAgency: 'rules.unknown_agency',
  duplicateAgency: 'rules.duplicate_agency',
} as const

let schemaValidator: ValidateFunction | undefined

function schemaCheck(): ValidateFunction {
  // No coercion, no defaults: a rule set is checked exactly as written, and not modified.
  schemaValidator ??= createAjv({ allErrors: true, coerceTypes: false, useDefaults: false }).getSchema('RuleSet')
  if (!schemaValidator) throw new Error('schema RuleSet not found in schemas/')
  return schemaValidator
}

/** `/measures/3/code` → `measures.3.code`; a missing or extra property is named in the path. */
function schemaError(e: ErrorObject): RuleSetError {
  const parts = e.instancePath.split('/').slice(1).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
  const named = (e.params as { missingProperty?: unknown; additionalProperty?: unknown })
  // A bad property name: ajv reports it on the error under `propertyNames` (e.propertyName).
  const extra = named.missingProperty ?? named.additionalProperty ?? e.propertyName
  if (typeof extra === 'string') parts.push(extra)
  const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues
  const message = `${e.message ?? 'invalid'}${allowed ? ` (${allowed.join(', ')})` : ''}`
  return { field: parts.join('.') || '/', code: RULE_SET_ERROR_CODES.schema, message }
}

const GRADE_NAME = /^[A-Z][A-Z0-9]{0,7}$/
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const arrayOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const gradeRank = (g: unknown): number => GRADES.indexOf(g as Grade)
const decisionRank = (d: unknown): number => DECISIONS.indexOf(d as Decision)

/**
 * Checks the consistency a schema cannot express. Runs on whatever the document is (also when the
 * schema failed), so that every error is reported at once; it reads only what is well-formed.
 */
function semanticErrors(doc: Record<string, unknown>): RuleSetError[] {
  const errors: RuleSetError[] = []
  const err = (field: string, code: string, message: string) => { errors.push({ field, code, message }) }
  // A well-formed grade name (the schema reports malformed ones) that is not one of GRADES.
  const knownGrade = (value: unknown, field: string) => {
    if (typeof value === 'string' && GRADE_NAME.test(value) && gradeRank(value) < 0) err(field, RULE_SET_ERROR_CODES.unknownGrade, `unknown grade "${value}" (${GRADES.join(', ')})`)
  }

  const grading = isObject(doc.grading) ? doc.grading : {}
  knownGrade(grading.defaultGrade, 'grading.defaultGrade')
  const ids = new Map<string, string>()
  const uniqueId = (id: unknown, field: string) => {
    if (typeof id !== 'string') return
    const first = ids.get(id)
    if (first) err(`${field}.id`, RULE_SET_ERROR_CODES.duplicateCriterion, `id "${id}" is already used at ${first}`)
    else ids.set(id, field)
  }
  for (const [i, c] of arrayOf(grading.criteria).entries()) {
    if (!isObject(c)) continue
    const field = `grading.criteria.${i}`
    uniqueId(c.id, field)
    knownGrade(c.grade, `${field}.grade`)
    knownGrade(c.requiresGrade, `${field}.requiresGrade`)
    if (c.exclusive === true && c.requiresGrade !== undefined) {
      err(`${field}.requiresGrade`, RULE_SET_ERROR_CODES.exclusiveRequiresGrade, 'an exclusive criterion is checked before any grade is reached; it cannot require one')
    }
  }

  const measures = arrayOf(doc.measures).map((m, i) => ({ m: isObject(m) ? m : {}, i }))
  const defaultRank = gradeRank(grading.defaultGrade)
  // The highest grade a statutory measure needs (one needing more than the default grade is reported
  // below): a modifier must never take an active listing under it.
  let statutoryNeeds = -1
  for (const { m } of measures) {
    const needs = gradeRank(m.minGrade)
    if (m.statutory === true && (defaultRank < 0 || needs <= defaultRank)) statutoryNeeds = Math.max(statutoryNeeds, needs)
  }

  for (const [i, mod] of arrayOf(grading.modifiers).entries()) {
    if (!isObject(mod)) continue
    const field = `grading.modifiers.${i}`
    uniqueId(mod.id, field)
    knownGrade(mod.floor, `${field}.floor`)
    const floor = gradeRank(mod.floor)
    if (floor >= 0 && floor < statutoryNeeds) {
      err(`${field}.floor`, RULE_SET_ERROR_CODES.statutoryWeakened, `a floor of ${String(mod.floor)} would lower listings below ${GRADES[statutoryNeeds]}, where statutory measures stop firing`)
    }
  }

  const decisions = isObject(doc.decisions) ? doc.decisions : {}
  const effects = isObject(decisions.effects) ? decisions.effects : {}
  const effectDecision = (effect: unknown): unknown => {
    const rule = typeof effect === 'string' ? effects[effect] : undefined
    return isObject(rule) ? rule.decision : undefined
  }
  if (isObject(decisions.reviewByGrade)) for (const g of Object.keys(decisions.reviewByGrade)) knownGrade(g, `decisions.reviewByGrade.${g}`)

  // §4.2: grading "must not weaken" statutory measures; neither may the effect mapping.
  const statutoryByEffect = new Map<Effect, string[]>()
  for (const { m } of measures) {
    if (m.statutory !== true || !EFFECTS.includes(m.effect as Effect) || typeof m.code !== 'string') continue
    const list = statutoryByEffect.get(m.effect as Effect) ?? []
    list.push(m.code)
    statutoryByEffect.set(m.effect as Effect, list)
  }
  for (const [effect, codes] of statutoryByEffect) {
    const d = effectDecision(effect)
    if (decisionRank(d) >= 0 && decisionRank(d) < decisionRank(STATUTORY_FLOOR[effect])) {
      err(`decisions.effects.${effect}.decision`, RULE_SET_ERROR_CODES.statutoryWeakened,
        `${effect} → ${String(d)} weakens statutory measures (${codes.join(', ')}), which need at least ${STATUTORY_FLOOR[effect]}`)
    }
  }

  const agencies = new Map<string, number>()
  for (const [i, a] of arrayOf(doc.agencies).entries()) {
    if (!isObject(a) || typeof a.code !== 'string') continue
    const first = agencies.get(a.code)
    if (first !== undefined) err(`agencies.${i}.code`, RULE_SET_ERROR_CODES.duplicateAgency, `agency ${a.code} is already defined at agencies.${first}`)
    else agencies.set(a.code, i)
  }

  const codes = new Map<string, number>()
  for (const { m, i } of measures) {
    const field = `measures.${i}`
    if (typeof m.agency === 'string' && Array.isArray(doc.agencies) && !agencies.has(m.agency)) {
      err(`${field}.agency`, RULE_SET_ERROR_CODES.unknownAgency, `agency "${m.agency}" is not in agencies`)
    }
    if (typeof m.code === 'string') {
      const first = codes.get(m.code)
      if (first !== undefined) err(`${field}.code`, RULE_SET_ERROR_CODES.duplicateMeasure, `measure code ${m.code} is already defined at measures.${first}`)
      else codes.set(m.code, i)
    }
    knownGrade(m.minGrade, `${field}.minGrade`)
    if (!EFFECTS.includes(m.effect as Effect) || decisionRank(m.decision) < 0) continue
    if (m.statutory === true && decisionRank(m.decision) < decisionRank(STATUTORY_FLOOR[m.effect as Effect])) {
      err(`${field}.decision`, RULE_SET_ERROR_CODES.statutoryWeakened, `statutory ${m.effect as string} measure cannot yield ${m.decision as string}`)
    } else if (decisionRank(effectDecision(m.effect)) >= 0 && m.decision !== effectDecision(m.effect)
      // A statutory row holding its floor while the mapping is weakened: the mapping is reported, not the row.
      && !(m.statutory === true && decisionRank(effectDecision(m.effect)) < decisionRank(STATUTORY_FLOOR[m.effect as Effect]))) {
      err(`${field}.decision`, RULE_SET_ERROR_CODES.decisionMismatch, `${m.effect as string} yields ${String(effectDecision(m.effect))} (decisions.effects), not ${m.decision as string}`)
    }
    // A statutory measure that needs more than the grade a plain listing gets would be suppressed by grading.
    if (m.statutory === true && defaultRank >= 0 && gradeRank(m.minGrade) > defaultRank) {
      err(`${field}.minGrade`, RULE_SET_ERROR_CODES.statutoryWeakened, `a statutory measure must fire from the default grade ${String(grading.defaultGrade)}, not only from ${String(m.minGrade)}`)
    }
  }
  return errors
}

/**
 * Checks a rule-set document against schemas/RuleSet.json, then for consistency. Every error is
 * listed, each with a dotted field path (`measures.3.code`) and a stable code (`rules.schema`,
 * `rules.duplicate_measure`, …). The document is not modified.
 */
export function validateRuleSet(doc: unknown): RuleSetValidation {
  const check = schemaCheck()
  const errors: RuleSetError[] = []
  if (!check(doc)) {
    // Summaries that repeat the error beneath them: an if/then ("must match then schema") and a
    // propertyNames ("property name is invalid") failure.
    for (const e of check.errors ?? []) if (e.keyword !== 'if' && e.keyword !== 'propertyNames') errors.push(schemaError(e))
  }
  if (isObject(doc)) errors.push(...semanticErrors(doc))
  return errors.length > 0 ? { ok: false, errors } : { ok: true, ruleSet: doc as RuleSet }
}

/**
 * `rules.invalid_rule_set` (500: a rule-set file shipped or configured is wrong, an operator fixes it).
 */
export const rulesError = createErrorFactory('rules')

/** rules/ at the project root: the rule set shipped with the gateway. */
export const DEFAULT_RULE_SET_FILE = projectPath('rules', 'default.json')

/** Reads and validates one rule-set file; throws `rules.invalid_rule_set` listing every error. */
export function loadRuleSetFile(file: string): RuleSet {
  let data: unknown
  try {
    data = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw rulesError('invalid_rule_set', 500, `${file}: not readable JSON (${(err as Error).message})`)
  }
  const result = validateRuleSet(data)
  if (!result.ok) {
    const first = result.errors[0]!
    throw rulesError('invalid_rule_set', 500, `${file}: ${first.field} ${first.message} (${result.errors.length} error(s))`, { errors: result.errors })
  }
  return result.ruleSet
}

/** The default rule set, rules/default.json. */
export function loadDefaultRuleSet(): RuleSet {
  return loadRuleSetFile(DEFAULT_RULE_SET_FILE)
}

// ---------------------------------------------------------------------------------------------
// Evaluation input and output
// ---------------------------------------------------------------------------------------------

/** One active listing the subject matched, and the subject's role in it. */
export interface RuleHit {
  role: MatchRole
  listKind: ListKind
  /** The listing's subject (for an officer: the entity). */
  subjectKind: 'person' | 'entity'
  /** The stored listing record (listings.models.ts NormalizedListing.record). */
  record: Record<string, unknown>
  /** A correction application or reconsideration is pending on this listing (policy.appealPending). */
  appealPending?: boolean
}

export interface RuleInput {
  /** The agency's slug (principal id), e.g. caac. */
  agency: string
  /** One approval scenario; undefined = all of the agency's scenarios. */
  scenario?: string
  /** Today in China (Asia/Shanghai), 'YYYY-MM-DD': grace periods and listing age. */
  today: IsoDate
  hits: readonly RuleHit[]
  /**
   * Earlier, removed listings of the subject as debtor (from audit storage). They count only for
   * repeat criteria (§4.2: 5-year look-back) and never trigger measures.
   */
  history?: readonly { publishedOn: IsoDate; listKind?: ListKind }[]
  explain?: boolean
}

export interface MeasureOutcome {
  readonly code: string
  readonly title: string
  readonly basis: string
  readonly effect: Effect
  readonly decision: Decision
  readonly notice?: string
}

export interface CriterionTrace { id: string; grade: Grade; inputs: Record<string, unknown> }
export interface ModifierTrace { id: string; from: Grade; to: Grade; inputs: Record<string, unknown> }
export interface HitExplanation {
  hit: number
  role: MatchRole
  roleClass: RoleClass
  listKind: ListKind
  grade: Grade
  /** The criteria that matched (the grade is the highest of them, or the exclusive one), with the inputs read. */
  criteria: CriterionTrace[]
  modifiers: ModifierTrace[]
}
export interface RuleTrace { hit: number; code: string; decision: Decision; why: string }
export interface Explanation { hits: HitExplanation[]; rules: RuleTrace[] }

export interface RuleOutcome {
  decision: Decision
  /** The highest grade among the hits; null without hits. */
  grade: Grade | null
  /** Shared, frozen objects: do not modify. */
  measures: readonly MeasureOutcome[]
  ruleSetVersion: number
  explain?: Explanation
}

export interface CompiledRules {
  readonly ruleSetId: string
  readonly version: number
  /** Agencies, and the scenarios each evaluates, as the catalogue names them. */
  readonly scenariosByAgency: ReadonlyMap<string, readonly string[]>
  evaluate(input: RuleInput): RuleOutcome
}

/** §3.3 / SPC-Goodwill Art. 16: officers of a listed entity are EP, never P or E. */
export function roleClassOf(role: MatchRole, subjectKind: 'person' | 'entity'): RoleClass {
  if (role !== 'debtor') return 'EP'
  return subjectKind === 'entity' ? 'E' : 'P'
}

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

interface GradeContext {
  today: IsoDate
  hits: readonly RuleHit[]
  history: readonly { publishedOn: IsoDate; listKind?: ListKind }[]
}

interface CompiledCriterion {
  id: string
  rank: number
  exclusive: boolean
  requiresRank: number
  test(hit: RuleHit, ctx: GradeContext): boolean
  /** The inputs `test` reads, for the explanation. */
  read(hit: RuleHit, ctx: GradeContext): Record<string, unknown>
}

interface CompiledModifier {
  id: string
  floorRank: number
  lowerBy: number
  test(hit: RuleHit): boolean
  read(hit: RuleHit): Record<string, unknown>
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null)
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)
const groundsOf = (record: Record<string, unknown>): readonly unknown[] => (Array.isArray(record.grounds) ? record.grounds : [])
const inGrace = (hit: RuleHit, today: IsoDate): boolean => {
  const until = str(hit.record.graceUntil)
  return until !== null && until > today
}
/** 'YYYY-MM-DD' minus whole years, compared as text (29 Feb stays between 28 Feb and 1 Mar). */
const yearsBefore = (today: IsoDate, years: number): string => `${String(Number(today.slice(0, 4)) - years).padStart(4, '0')}${today.slice(4)}`

/** The subject's own listings among the hits: debtor role, one of `kinds`, published (not in grace). */
function ownListings(ctx: GradeContext, kinds: ReadonlySet<string>): RuleHit[] {
  return ctx.hits.filter((h) => h.role === 'debtor' && kinds.has(h.listKind) && !inGrace(h, ctx.today))
}

function compileCriterion(c: GradeCriterion): CompiledCriterion {
  const base = { id: c.id, rank: gradeRank(c.grade), exclusive: c.exclusive === true, requiresRank: c.requiresGrade ? gradeRank(c.requiresGrade) : -1 }
  const kinds = new Set<string>(c.listKinds ?? LIST_KINDS)
  const grounds = new Set<string>(c.grounds ?? [])
  const min = c.min ?? 1
  switch (c.kind) {
    case 'graceActive': // SPC-Goodwill Art. 15: nothing follows before the grace period ends
      return { ...base, test: (h, ctx) => inGrace(h, ctx.today), read: (h, ctx) => ({ graceUntil: h.record.graceUntil ?? null, today: ctx.today }) }
    case 'listKind':
      return { ...base, test: (h) => kinds.has(h.listKind), read: (h) => ({ listKind: h.listKind }) }
    case 'anyGround':
      return { ...base, test: (h) => groundsOf(h.record).some((g) => grounds.has(g as string)), read: (h) => ({ grounds: groundsOf(h.record) }) }
    case 'groundCount':
      return { ...base, test: (h) => groundsOf(h.record).length >= min, read: (h) => ({ grounds: groundsOf(h.record) }) }
    case 'amountAbove': {
      const person = c.personAbove ?? Infinity
      const entity = c.entityAbove ?? Infinity
      const filtered = grounds.size > 0
      return {
        ...base,
        // An amount the record does not carry never crosses a threshold.
        test: (h) => {
          const amount = num(h.record.amountOutstanding)
          if (amount === null || (filtered && !groundsOf(h.record).some((g) => grounds.has(g as string)))) return false
          return amount > (h.subjectKind === 'entity' ? entity : person)
        },
        read: (h) => ({ amountOutstanding: h.record.amountOutstanding ?? null, subjectKind: h.subjectKind, threshold: h.subjectKind === 'entity' ? entity : person, ...(filtered ? { grounds: groundsOf(h.record) } : {}) }),
      }
    }
    case 'concurrentListings':
      // Only the subject's own listings: an officer is not listed (SPC-Goodwill Art. 16).
      return {
        ...base,
        test: (h, ctx) => h.role === 'debtor' && ctx.hits.length >= min && ownListings(ctx, kinds).length >= min,
        read: (h, ctx) => ({ role: h.role, concurrentListings: h.role === 'debtor' ? ownListings(ctx, kinds).length : null }),
      }
    case 'listingsWithin': {
      const years = c.years ?? 5
      const count = (ctx: GradeContext) => {
        const since = yearsBefore(ctx.today, years)
        const current = ownListings(ctx, kinds).filter((h) => (str(h.record.publishedOn) ?? '') >= since).length
        const earlier = ctx.history.filter((e) => kinds.has(e.listKind ?? 'dishonest') && e.publishedOn >= since).length
        return { since, current, earlier, total: current + earlier }
      }
      return {
        ...base,
        test: (h, ctx) => h.role === 'debtor' && count(ctx).total >= min,
        read: (h, ctx) => {
          const n = count(ctx)
          return { role: h.role, publishedSince: n.since, currentListings: n.current, earlierListings: n.earlier }
        },
      }
    }
    case 'extended': // SPC-List Art. 2: extension by 1–3 years
      return { ...base, test: (h) => (num(h.record.extensionYears) ?? 0) > 0, read: (h) => ({ extensionYears: h.record.extensionYears ?? null }) }
    case 'convictedOfRefusal': // Criminal Law Art. 313
      return { ...base, test: (h) => h.record.convictedOfRefusal === true, read: (h) => ({ convictedOfRefusal: h.record.convictedOfRefusal ?? null }) }
  }
}

function compileModifier(m: GradeModifier): CompiledModifier {
  // §4.2: verified performance of ≥ minShare; needs both amounts on the record.
  const share = (h: RuleHit): number | null => {
    const performed = num(h.record.performedPart)
    const outstanding = num(h.record.amountOutstanding)
    if (h.record.performance !== 'partial' || performed === null || outstanding === null || performed + outstanding <= 0) return null
    return performed / (performed + outstanding)
  }
  const minShare = m.minShare
  return {
    id: m.id,
    floorRank: gradeRank(m.floor),
    lowerBy: m.lowerBy,
    test: (h) => (share(h) ?? -1) >= minShare,
    read: (h) => ({ performance: h.record.performance ?? null, performedPart: h.record.performedPart ?? null, amountOutstanding: h.record.amountOutstanding ?? null, share: share(h) }),
  }
}

interface Entry {
  readonly decision: Decision
  readonly measures: readonly MeasureOutcome[]
  /** Parallel to `measures`: why each fired (explanations only). */
  readonly why: readonly string[]
}
/** One (agency, scenario, role class, list kind, grade) cell: as is, and for a hit under appeal. */
interface Cell { readonly normal: Entry; readonly appeal: Entry }

const CELLS = ROLE_CLASSES.length * LIST_KINDS.length * GRADES.length
const cellIndex = (rc: number, lk: number, grade: number) => (rc * LIST_KINDS.length + lk) * GRADES.length + grade
const ALL_SCENARIOS = '*'

function freezeEntry(measures: MeasureOutcome[], why: string[]): Entry {
  let strongest = 0
  for (const m of measures) strongest = Math.max(strongest, decisionRank(m.decision))
  return Object.freeze({ decision: DECISIONS[strongest]!, measures: Object.freeze(measures.map((m) => Object.freeze(m))), why: Object.freeze(why) })
}

/**
 * Compiles a validated rule set (validateRuleSet) into look-up tables, once per published version: for each
 * `agency|scenario` (and `agency|*` for all its scenarios) an array indexed by role class, list
 * kind and grade holding the frozen measures and decision. Evaluating a subject is then a grade
 * computation per hit and one array read: no scan of the catalogue.
 */
export function compileRules(ruleSet: RuleSet, version: number): CompiledRules {
  const { grading, decisions, policy } = ruleSet
  const criteria = grading.criteria.map(compileCriterion)
  const exclusive = criteria.filter((c) => c.exclusive)
  const plain = criteria.filter((c) => !c.exclusive && c.requiresRank < 0)
  const requiring = criteria.filter((c) => !c.exclusive && c.requiresRank >= 0)
  const modifiers = grading.modifiers.map(compileModifier)
  const defaultRank = gradeRank(grading.defaultGrade)
  const order = new Map(ruleSet.measures.map((m, i) => [m.code, i]))

  /** The outcome of one measure at one grade, and (appeal) for a hit under appeal. */
  const outcome = (m: MeasureDefinition, grade: Grade, appeal: boolean): { outcome: MeasureOutcome; adjusted: string } => {
    let rule: DecisionRule = decisions.effects[m.effect]
    let adjusted = `effect ${m.effect} → ${rule.decision}`
    // §4.2: the grade changes how REVIEW measures are surfaced, never a statutory measure.
    const graded = m.effect === 'REVIEW' && !m.statutory ? decisions.reviewByGrade[grade] : undefined
    if (graded) {
      rule = graded
      adjusted = `REVIEW at ${grade} → ${graded.decision} (decisions.reviewByGrade.${grade})`
    }
    if (appeal && policy.appealPending === 'review' && !m.statutory && rule.decision === 'deny') {
      rule = { decision: 'review', notice: policy.appealNotice }
      adjusted += '; appeal pending → review (policy.appealPending)'
    }
    if (m.statutory) adjusted += '; statutory: never weakened'
    const out: MeasureOutcome = rule.notice
      ? { code: m.code, title: m.title, basis: m.basis, effect: m.effect, decision: rule.decision, notice: rule.notice }
      : { code: m.code, title: m.title, basis: m.basis, effect: m.effect, decision: rule.decision }
    return { outcome: out, adjusted }
  }

  const buildCells = (measures: MeasureDefinition[], scenario: string): Cell[] => {
    const cells: Cell[] = []
    for (const [rc, roleClass] of ROLE_CLASSES.entries()) {
      for (const [lk, listKind] of LIST_KINDS.entries()) {
        for (const [g, grade] of GRADES.entries()) {
          const firing = measures.filter((m) => m.appliesTo.includes(roleClass) && m.listKinds.includes(listKind) && g >= gradeRank(m.minGrade))
          const entry = (appeal: boolean) => {
            const results = firing.map((m) => outcome(m, grade, appeal))
            const why = firing.map((m, i) => `${m.agency} ${scenario === ALL_SCENARIOS ? m.scenarios.join(',') : scenario}: role ${roleClass} ∈ ${m.appliesTo.join(',')}; `
              + `list ${listKind} ∈ ${m.listKinds.join(',')}; grade ${grade} ≥ ${m.minGrade}; ${results[i]!.adjusted}`)
            return freezeEntry(results.map((r) => r.outcome), why)
          }
          const normal = entry(false)
          cells[cellIndex(rc, lk, g)] = Object.freeze({ normal, appeal: policy.appealPending === 'unchanged' ? normal : entry(true) })
        }
      }
    }
    return Object.freeze(cells) as Cell[]
  }

  const tables = new Map<string, readonly Cell[]>()
  const scenariosByAgency = new Map<string, string[]>()
  const byAgency = new Map<string, MeasureDefinition[]>()
  for (const m of ruleSet.measures) {
    byAgency.set(m.agency, [...(byAgency.get(m.agency) ?? []), m])
    const scenarios = scenariosByAgency.get(m.agency) ?? []
    for (const s of m.scenarios) if (!scenarios.includes(s)) scenarios.push(s)
    scenariosByAgency.set(m.agency, scenarios)
  }
  for (const [agency, measures] of byAgency) {
    tables.set(`${agency}|${ALL_SCENARIOS}`, buildCells(measures, ALL_SCENARIOS))
    for (const scenario of scenariosByAgency.get(agency)!) {
      tables.set(`${agency}|${scenario}`, buildCells(measures.filter((m) => m.scenarios.includes(scenario)), scenario))
    }
  }
  const none = freezeEntry([], [])
  const emptyCells: readonly Cell[] = Object.freeze(Array.from({ length: CELLS }, () => Object.freeze({ normal: none, appeal: none })))

  /** The grade of one hit (§4.2): exclusive criteria, then the highest match, then modifiers. */
  const gradeOf = (hit: RuleHit, ctx: GradeContext, trace?: HitExplanation): number => {
    for (const c of exclusive) {
      if (c.test(hit, ctx)) {
        trace?.criteria.push({ id: c.id, grade: GRADES[c.rank]!, inputs: c.read(hit, ctx) })
        return c.rank
      }
    }
    let rank = -1
    for (const c of plain) {
      if (!c.test(hit, ctx)) continue
      if (c.rank > rank) rank = c.rank
      trace?.criteria.push({ id: c.id, grade: GRADES[c.rank]!, inputs: c.read(hit, ctx) })
    }
    if (rank < 0) {
      rank = defaultRank
      trace?.criteria.push({ id: 'grading.defaultGrade', grade: GRADES[rank]!, inputs: { listKind: hit.listKind } })
    }
    for (const c of requiring) {
      if (rank < c.requiresRank || !c.test(hit, ctx)) continue
      if (c.rank > rank) rank = c.rank
      trace?.criteria.push({ id: c.id, grade: GRADES[c.rank]!, inputs: c.read(hit, ctx) })
    }
    for (const m of modifiers) {
      if (rank <= m.floorRank || !m.test(hit)) continue
      const lowered = Math.max(m.floorRank, rank - m.lowerBy)
      trace?.modifiers.push({ id: m.id, from: GRADES[rank]!, to: GRADES[lowered]!, inputs: m.read(hit) })
      rank = lowered
    }
    return rank
  }

  const noHits: RuleOutcome = Object.freeze({ decision: 'allow', grade: null, measures: none.measures, ruleSetVersion: version })
  const listKindIndex = (k: ListKind) => (k === 'restricted' ? 1 : 0)
  const roleClassIndex = (role: MatchRole, subjectKind: 'person' | 'entity') => (role !== 'debtor' ? 2 : subjectKind === 'entity' ? 1 : 0)

  function evaluate(input: RuleInput): RuleOutcome {
    const { hits } = input
    if (hits.length === 0) return input.explain ? { ...noHits, explain: { hits: [], rules: [] } } : noHits
    const cells = tables.get(`${input.agency}|${input.scenario ?? ALL_SCENARIOS}`) ?? emptyCells
    const ctx: GradeContext = { today: input.today, hits, history: input.history ?? [] }
    const explain: Explanation | undefined = input.explain ? { hits: [], rules: [] } : undefined

    let top = 0
    const entries: Entry[] = []
    for (const [i, hit] of hits.entries()) {
      const rc = roleClassIndex(hit.role, hit.subjectKind)
      const trace: HitExplanation | undefined = explain
        ? { hit: i, role: hit.role, roleClass: ROLE_CLASSES[rc]!, listKind: hit.listKind, grade: 'L0', criteria: [], modifiers: [] }
        : undefined
      const rank = gradeOf(hit, ctx, trace)
      if (rank > top) top = rank
      const cell = cells[cellIndex(rc, listKindIndex(hit.listKind), rank)]!
      const entry = hit.appealPending ? cell.appeal : cell.normal
      entries.push(entry)
      if (explain && trace) {
        trace.grade = GRADES[rank]!
        explain.hits.push(trace)
        for (const [j, m] of entry.measures.entries()) explain.rules.push({ hit: i, code: m.code, decision: m.decision, why: entry.why[j]! })
      }
    }

    let decision: Decision
    let measures: readonly MeasureOutcome[]
    if (entries.length === 1) {
      ;({ decision, measures } = entries[0]!)
    } else {
      // Several listings: the union of their measures, each at its strongest decision.
      const byCode = new Map<string, MeasureOutcome>()
      let strongest = 0
      for (const entry of entries) {
        for (const m of entry.measures) {
          const seen = byCode.get(m.code)
          if (!seen || decisionRank(m.decision) > decisionRank(seen.decision)) byCode.set(m.code, m)
        }
        strongest = Math.max(strongest, decisionRank(entry.decision))
      }
      decision = DECISIONS[strongest]!
      measures = [...byCode.values()].sort((a, b) => order.get(a.code)! - order.get(b.code)!)
    }
    const result: RuleOutcome = { decision, grade: GRADES[top]!, measures, ruleSetVersion: version }
    if (explain) result.explain = explain
    return result
  }

  return Object.freeze({
    ruleSetId: ruleSet.id,
    version,
    scenariosByAgency: new Map([...scenariosByAgency].map(([a, s]) => [a, Object.freeze([...s])])) as ReadonlyMap<string, readonly string[]>,
    evaluate,
  })
}
