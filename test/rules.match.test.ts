/**
 * The graded-punishment rules, end to end: listings pushed by a court through `POST /v1/listings`,
 * matched by agencies through signed `POST /v1/match` and `POST /v1/match/batch`, on the shipped
 * rule set (version 1, rules/default.json).
 *
 * Every expectation in GRID is written by hand from /work/shared/domain.md — §3.3 (the measure
 * table: applies-to P/E/EP, effect, scenarios, basis), §4.2 (the grading PROPOSAL and what the grade
 * does to REVIEW measures), §2 (consumption restriction), §1.1–§1.2 (grounds, periods) — never
 * computed from the engine. Each row's `src` is its citation (it is also printed in every message).
 *
 * Today is 2026-03-02 (noon in China) throughout.
 */
import t, { type Test } from 'tap'
import { buildTestGateway } from './helper.js'
import { caseNumber, creditCode, entityListing, personId, personListing } from './factories.js'

const NOON_2026_03_02 = Date.parse('2026-03-02T04:00:00Z')

type Ground = 'G1' | 'G2' | 'G3' | 'G4' | 'G5' | 'G6'
type Grade = 'L0' | 'L1' | 'L2' | 'L3'
type Decision = 'allow' | 'review' | 'deny'
type Role = 'debtor' | 'legalRepresentative' | 'restrictedPerson'

// ---------------------------------------------------------------------------------------------
// The listings (facts), one subject each
// ---------------------------------------------------------------------------------------------

interface Facts {
  kind: 'person' | 'entity'
  list: 'dishonest' | 'restricted'
  grounds?: Ground[]
  amount: number
  extensionYears?: number
  convicted?: boolean
  publishedOn?: string
  /** A grace period (SPC-Goodwill Art. 15) sent with the first push of a new listing. */
  graceAtPush?: string
  /** A grace period the court grants later, by re-pushing the published listing (an update). */
  graceLater?: string
  /** The same debtor is listed this many times in all (other case numbers, same facts). */
  listings?: number
}

/** seq: the factories' subject number (person id, credit code, the entity's officers, case number). */
const LISTED = {
  // Grace: published 2026-02-01 without one, then the court grants grace until 2026-04-01 (> today).
  P_GRACE_LATER: { seq: 1, kind: 'person', list: 'dishonest', grounds: ['G4'], amount: 50_000, publishedOn: '2026-02-01', graceLater: '2026-04-01' },
  // The same, on facts that would be L2 outside grace (G3, over the cap): grace is exclusive (see GRID).
  P_GRACE_LATER_G3: { seq: 26, kind: 'person', list: 'dishonest', grounds: ['G3'], amount: 150_000, publishedOn: '2026-02-01', graceLater: '2026-04-01' },
  // Grace from the start: a new listing whose grace period runs until 2026-04-01.
  P_GRACE_NEW: { seq: 2, kind: 'person', list: 'dishonest', grounds: ['G4'], amount: 50_000, publishedOn: '2026-02-15', graceAtPush: '2026-04-01' },
  // A consumption-restriction order only (no dishonest listing); the large amount must not raise it.
  P_RESTRICTED: { seq: 3, kind: 'person', list: 'restricted', amount: 20_000_000 },
  E_RESTRICTED: { seq: 4, kind: 'entity', list: 'restricted', amount: 5_000_000 },
  P_G4_50K: { seq: 5, kind: 'person', list: 'dishonest', grounds: ['G4'], amount: 50_000 },
  P_G1_50K: { seq: 6, kind: 'person', list: 'dishonest', grounds: ['G1'], amount: 50_000 },
  P_G6_100K: { seq: 7, kind: 'person', list: 'dishonest', grounds: ['G6'], amount: 100_000 },
  P_G1_150K: { seq: 8, kind: 'person', list: 'dishonest', grounds: ['G1'], amount: 150_000 },
  P_G4_120K: { seq: 9, kind: 'person', list: 'dishonest', grounds: ['G4'], amount: 120_000 },
  P_G3_50K: { seq: 10, kind: 'person', list: 'dishonest', grounds: ['G3'], amount: 50_000 },
  P_G5_50K: { seq: 11, kind: 'person', list: 'dishonest', grounds: ['G5'], amount: 50_000 },
  P_G1G4_50K: { seq: 12, kind: 'person', list: 'dishonest', grounds: ['G1', 'G4'], amount: 50_000 },
  P_TWICE_G4_50K: { seq: 13, kind: 'person', list: 'dishonest', grounds: ['G4'], amount: 50_000, listings: 2 },
  P_G3_10M: { seq: 14, kind: 'person', list: 'dishonest', grounds: ['G3'], amount: 10_000_000 },
  P_G2_50K: { seq: 15, kind: 'person', list: 'dishonest', grounds: ['G2'], amount: 50_000 },
  P_G4_EXTENDED: { seq: 16, kind: 'person', list: 'dishonest', grounds: ['G4'], amount: 50_000, extensionYears: 1 },
  P_G4_CONVICTED: { seq: 17, kind: 'person', list: 'dishonest', grounds: ['G4'], amount: 50_000, convicted: true },
  P_G3_12M: { seq: 18, kind: 'person', list: 'dishonest', grounds: ['G3'], amount: 12_000_000 },
  E_G4_500K: { seq: 19, kind: 'entity', list: 'dishonest', grounds: ['G4'], amount: 500_000 },
  P_G4_500K: { seq: 20, kind: 'person', list: 'dishonest', grounds: ['G4'], amount: 500_000 },
  E_G4_1500K: { seq: 21, kind: 'entity', list: 'dishonest', grounds: ['G4'], amount: 1_500_000 },
  E_G4_12M: { seq: 22, kind: 'entity', list: 'dishonest', grounds: ['G4'], amount: 12_000_000 },
  E_G3_500K: { seq: 23, kind: 'entity', list: 'dishonest', grounds: ['G3'], amount: 500_000 },
  E_G2_500K: { seq: 24, kind: 'entity', list: 'dishonest', grounds: ['G2'], amount: 500_000 },
  P_G2_EXT_CONVICTED: { seq: 25, kind: 'person', list: 'dishonest', grounds: ['G2'], amount: 50_000, extensionYears: 1, convicted: true },
} as const satisfies Record<string, Facts & { seq: number }>
type Who = keyof typeof LISTED

function listingInput(seq: number, f: Facts, caseSeq = seq, withGrace?: string): Record<string, unknown> {
  const dishonest = f.list === 'dishonest'
  const common = {
    listKind: f.list,
    caseNumber: caseNumber(caseSeq),
    performance: 'none',
    amountOutstanding: f.amount,
    // Grounds and extensions belong to the dishonest list (SPC-List Arts. 1–2); a restriction order states its own period.
    grounds: dishonest ? f.grounds : undefined,
    periodEndsOn: dishonest ? undefined : '2027-06-01',
    extensionYears: f.extensionYears,
    convictedOfRefusal: f.convicted,
    publishedOn: f.publishedOn ?? '2025-06-01',
    graceUntil: withGrace,
  }
  // The entity factory records a legal representative (李seq) and an actual controller (王seq).
  return f.kind === 'person' ? personListing(seq, common) : entityListing(seq, common)
}

function subjectOf(who: Who, role: Role): Record<string, string> {
  const { seq, kind } = LISTED[who]
  if (role === 'legalRepresentative') return { idNumber: personId(seq + 500, '19700101') }
  if (role === 'restrictedPerson') return { idNumber: personId(seq + 700, '19750505') }
  return kind === 'person' ? { idNumber: personId(seq) } : { creditCode: creditCode(seq) }
}

// ---------------------------------------------------------------------------------------------
// The agencies: principal id = catalogue code unless profile.agency says otherwise
// ---------------------------------------------------------------------------------------------

const AGENCIES: Record<string, { scenarios: string[]; agency?: string }> = {
  caac: { scenarios: ['TICKET_AIR'] },
  rail: { scenarios: ['TICKET_RAIL', 'TICKET_SHIP'] },
  samr: { scenarios: ['COMPANY_OFFICER_REG', 'ROUTINE_INSPECTION'] },
  mof: { scenarios: ['GOV_PROCUREMENT'] },
  nfra: { scenarios: ['CREDIT_LENDING', 'INSURANCE_PURCHASE', 'FIN_EXEC_APPOINTMENT'] },
  ndrc: { scenarios: ['POLICY_SUPPORT', 'GOV_INVEST_PROJECT'] },
  mohurd: { scenarios: ['CONSTRUCTION_QUAL'] },
  // Not in the §3.3 catalogue at all.
  cityhall: { scenarios: [] },
  // A bank whose principal id is its own, matching under NFRA's measures.
  'bank-icbc': { scenarios: ['CREDIT_LENDING'], agency: 'nfra' },
}

/** §3.3 basis column, verbatim, for the measures the grid expects. */
const BASIS: Record<string, string> = {
  'CAAC-AIR': 'SPC-Consume R1; O16-VII [C]',
  'RAIL-TKT': 'R1/R9 [C]',
  'MOF-PROC': 'O16-I; 财库〔2016〕125号 [C]',
  'SAMR-OFFICER': 'Company Law 2023 Art. 178(1)(5) [C]',
  'SAMR-INSPECT': 'O16-IX [M]',
  'NFRA-CREDIT': 'O16-V [M]',
  'NFRA-INS': 'O16-VII [C]',
  'NFRA-EXEC': 'O16-III [C]',
  'NDRC-POLICY': 'O16-II [C]',
  'NDRC-GOVINV': 'O16-I [M]',
  'MOHURD-QUAL': 'O16-IV [C]',
}

// ---------------------------------------------------------------------------------------------
// The grid
// ---------------------------------------------------------------------------------------------

interface Row {
  who: Who
  role: Role
  agency: string
  scenario?: string
  /** null: not matched at all. */
  grade: Grade | null
  decision: Decision
  /** 'CODE EFFECT decision' per measure, any order. */
  measures: string[]
  src: string
}

const r = (who: Who, role: Role, agency: string, scenario: string | undefined, grade: Grade | null, decision: Decision, measures: string[], src: string): Row =>
  ({ who, role, agency, scenario, grade, decision, measures, src })
const D = 'debtor'
const LR = 'legalRepresentative'
const RP = 'restrictedPerson'
const CAAC = 'CAAC-AIR BLOCK deny'
const RAIL = 'RAIL-TKT BLOCK deny'
const MOF = 'MOF-PROC BLOCK deny'
const SAMR = 'SAMR-OFFICER BLOCK deny'

const GRID: Row[] = [
  // ── L0, grace period ──────────────────────────────────────────────────────────────────────
  // §4.2 L0 "a listing still in its grace period": agency measures do not fire, consumption R1–R9 only.
  // Reachable through the API when the court grants grace on a listing already published (an update).
  r('P_GRACE_LATER', D, 'caac', 'TICKET_AIR', 'L0', 'deny', [CAAC], '§4.2 L0 grace → consumption only; §2.2 R1 flights; §3.3 CAAC-AIR P BLOCK'),
  r('P_GRACE_LATER', D, 'rail', 'TICKET_RAIL', 'L0', 'deny', [RAIL], '§4.2 L0 grace → consumption only; §2.2 R1/R9; §3.3 RAIL-TKT P BLOCK'),
  // SAMR-OFFICER is statutory, but §4.2 L0 says agency measures do not fire in grace: §1.4 the grace
  // period comes before publication, so the person is not yet a "listed person" (§3.3 SAMR-OFFICER).
  r('P_GRACE_LATER', D, 'samr', 'COMPANY_OFFICER_REG', 'L0', 'allow', [], '§4.2 L0 grace: agency measures do not fire (SAMR-OFFICER silent)'),
  r('P_GRACE_LATER', D, 'mof', 'GOV_PROCUREMENT', 'L0', 'allow', [], '§4.2 L0 grace: agency measures do not fire (MOF-PROC silent)'),
  r('P_GRACE_LATER', D, 'nfra', 'CREDIT_LENDING', 'L0', 'allow', [], '§4.2 L0 grace: agency measures do not fire (NFRA-CREDIT silent)'),
  // AMBIGUOUS: §4.2 says "any row triggers; take the highest", which for G3 in grace would be L2 and
  // fire agency measures during the grace period. Reading taken: the L0 rows are exclusive — during
  // grace "no punishment follows" if the debtor performs (§1.4, SPC-Goodwill Art. 15), whatever the
  // ground; otherwise grace would only ever matter for L1 facts.
  r('P_GRACE_LATER_G3', D, 'nfra', 'CREDIT_LENDING', 'L0', 'allow', [], '§4.2 L0 grace even on L2 facts (G3, ¥150k): agency measures silent'),
  r('P_GRACE_LATER_G3', D, 'mof', 'GOV_PROCUREMENT', 'L0', 'allow', [], '§4.2 L0 grace even on L2 facts: MOF-PROC silent'),
  r('P_GRACE_LATER_G3', D, 'caac', 'TICKET_AIR', 'L0', 'deny', [CAAC], '§4.2 L0 grace: consumption ban R1 still fires'),
  // AMBIGUOUS in domain.md: §1.4 / SPC-Goodwill Art. 15 put the grace period "before publishing" (and
  // §2.1 ties the mandatory consumption ban to being on the list), while §4.2 L0 lists "a listing still
  // in its grace period" next to the consumption order. Reading taken: a new listing in grace is not
  // published, so it is not matchable at all (README: `pending`, not in the change log); a consumption
  // order the court issues meanwhile is its own `restricted` listing (rows P_RESTRICTED below).
  r('P_GRACE_NEW', D, 'caac', 'TICKET_AIR', null, 'allow', [], '§1.4 grace "before publishing": a new listing in grace is not yet on the list'),
  r('P_GRACE_NEW', D, 'samr', 'COMPANY_OFFICER_REG', null, 'allow', [], '§1.4 grace "before publishing"; §4.2 L0 agency measures silent either way'),

  // ── L0, consumption order only ────────────────────────────────────────────────────────────
  r('P_RESTRICTED', D, 'caac', 'TICKET_AIR', 'L0', 'deny', [CAAC], '§4.2 L0 restricted-only; §2.2 R1; §3.3 CAAC-AIR P BLOCK'),
  r('P_RESTRICTED', D, 'rail', 'TICKET_RAIL', 'L0', 'deny', [RAIL], '§4.2 L0; §2.2 R1/R9; §3.3 RAIL-TKT P BLOCK'),
  r('P_RESTRICTED', D, 'nfra', 'INSURANCE_PURCHASE', 'L0', 'deny', ['NFRA-INS BLOCK deny'], '§4.2 L0; §2.2 R8; §3.3 NFRA-INS P BLOCK'),
  r('P_RESTRICTED', D, 'samr', 'COMPANY_OFFICER_REG', 'L0', 'allow', [], '§4.2 L0: no agency measure; §2.5 a restriction has the R1–R9 bans only; ¥20m does not raise an order without grounds'),
  r('P_RESTRICTED', D, 'mof', 'GOV_PROCUREMENT', 'L0', 'allow', [], '§4.2 L0: no agency measure; §2.5'),
  r('P_RESTRICTED', D, 'nfra', 'CREDIT_LENDING', 'L0', 'allow', [], '§4.2 L0: no agency measure (NFRA-CREDIT silent)'),
  r('E_RESTRICTED', LR, 'caac', 'TICKET_AIR', 'L0', 'deny', [CAAC], '§2.3 the order binds the legal representative; §3.3 CAAC-AIR EP BLOCK'),
  r('E_RESTRICTED', RP, 'rail', 'TICKET_RAIL', 'L0', 'deny', [RAIL], '§2.3 the order binds the actual controller; §3.3 RAIL-TKT EP BLOCK'),
  r('E_RESTRICTED', D, 'caac', 'TICKET_AIR', 'L0', 'allow', [], '§3.3 CAAC-AIR applies to P,EP, not to the entity E itself'),
  r('E_RESTRICTED', LR, 'ndrc', 'POLICY_SUPPORT', 'L0', 'allow', [], '§4.2 L0: agency measures do not fire, even NDRC-POLICY (E,EP)'),
  r('E_RESTRICTED', D, 'ndrc', 'POLICY_SUPPORT', 'L0', 'allow', [], '§4.2 L0: agency measures do not fire'),
  r('E_RESTRICTED', D, 'mof', 'GOV_PROCUREMENT', 'L0', 'allow', [], '§4.2 L0: agency measures do not fire'),

  // ── L1 general: single G1/G4/G6, first listing, ≤ ¥100k person ───────────────────────────
  r('P_G4_50K', D, 'samr', 'COMPANY_OFFICER_REG', 'L1', 'deny', [SAMR], '§4.2 L1 single G4 ≤ ¥100k; §3.3 SAMR-OFFICER P BLOCK (statutory, §4.2 never weakened)'),
  r('P_G4_50K', D, 'mof', 'GOV_PROCUREMENT', 'L1', 'deny', [MOF], '§4.2 L1; §3.3 MOF-PROC P BLOCK (statutory)'),
  r('P_G4_50K', D, 'nfra', 'CREDIT_LENDING', 'L1', 'allow', ['NFRA-CREDIT REVIEW allow'], '§4.2 L1 REVIEW → advisory flag, approval proceeds; §3.3 NFRA-CREDIT P REVIEW'),
  r('P_G1_50K', D, 'caac', 'TICKET_AIR', 'L1', 'deny', [CAAC], '§4.2 L1 single G1; §2.1 a listed debtor shall be restricted; §3.3 CAAC-AIR P BLOCK'),
  r('P_G1_50K', D, 'nfra', 'CREDIT_LENDING', 'L1', 'allow', ['NFRA-CREDIT REVIEW allow'], '§4.2 L1 single G1 ≤ ¥100k → advisory'),
  r('P_G6_100K', D, 'samr', 'COMPANY_OFFICER_REG', 'L1', 'deny', [SAMR], '§4.2 L1 single G6, exactly ¥100k is "≤ ¥100k"; §3.3 SAMR-OFFICER'),
  r('P_G6_100K', D, 'nfra', 'CREDIT_LENDING', 'L1', 'allow', ['NFRA-CREDIT REVIEW allow'], '§4.2 L1 boundary ¥100k → advisory'),

  // ── L2 serious ────────────────────────────────────────────────────────────────────────────
  r('P_G1_150K', D, 'nfra', 'CREDIT_LENDING', 'L2', 'review', ['NFRA-CREDIT REVIEW review'], '§4.2 L2 "G1 with outstanding above the L1 cap" (¥150k > ¥100k) → enhanced review'),
  // AMBIGUOUS: §4.2 L2 names "G1 above the L1 cap"; a single G4 above the cap fails the L1 row (≤ ¥100k)
  // and meets no other L2 row literally. Reading taken: the cap bounds L1 for G1, G4 and G6 alike, so
  // any single ground above it is L2 (rules/default.json L2.overCap note says the same).
  r('P_G4_120K', D, 'nfra', 'CREDIT_LENDING', 'L2', 'review', ['NFRA-CREDIT REVIEW review'], '§4.2 L1 cap exceeded (G4 ¥120k) → L2 (reading, see comment)'),
  r('P_G3_50K', D, 'nfra', 'CREDIT_LENDING', 'L2', 'review', ['NFRA-CREDIT REVIEW review'], '§4.2 L2 G3 (evasion) even under the cap'),
  r('P_G5_50K', D, 'samr', 'COMPANY_OFFICER_REG', 'L2', 'deny', [SAMR], '§4.2 L2 G5; statutory SAMR-OFFICER deny at L2'),
  r('P_G5_50K', D, 'nfra', 'CREDIT_LENDING', 'L2', 'review', ['NFRA-CREDIT REVIEW review'], '§4.2 L2 G5 → enhanced review'),
  r('P_G1G4_50K', D, 'mof', 'GOV_PROCUREMENT', 'L2', 'deny', [MOF], '§4.2 L2 ≥ 2 grounds; statutory MOF-PROC deny at L2'),
  r('P_G1G4_50K', D, 'nfra', 'CREDIT_LENDING', 'L2', 'review', ['NFRA-CREDIT REVIEW review'], '§4.2 L2 ≥ 2 grounds'),
  r('P_TWICE_G4_50K', D, 'nfra', 'CREDIT_LENDING', 'L2', 'review', ['NFRA-CREDIT REVIEW review'], '§4.2 L2 ≥ 2 concurrent listings (each alone would be L1)'),
  r('P_TWICE_G4_50K', D, 'caac', 'TICKET_AIR', 'L2', 'deny', [CAAC], '§4.2 L2 concurrent; §3.3 CAAC-AIR, once for both listings'),
  r('P_G3_10M', D, 'nfra', 'CREDIT_LENDING', 'L2', 'review', ['NFRA-CREDIT REVIEW review'], '§4.2 L3 needs "> ¥10m": exactly ¥10m stays L2'),

  // ── L3 aggravated ─────────────────────────────────────────────────────────────────────────
  r('P_G2_50K', D, 'nfra', 'CREDIT_LENDING', 'L3', 'deny', ['NFRA-CREDIT REVIEW deny'], '§4.2 L3 G2 (violence or threats) → presumptive refusal'),
  r('P_G2_50K', D, 'mof', 'GOV_PROCUREMENT', 'L3', 'deny', [MOF], '§4.2 L3 G2; statutory MOF-PROC deny at L3'),
  r('P_G4_EXTENDED', D, 'nfra', 'CREDIT_LENDING', 'L3', 'deny', ['NFRA-CREDIT REVIEW deny'], '§4.2 L3 period extended by the court (§1.2 +1–3 years)'),
  r('P_G4_CONVICTED', D, 'samr', 'COMPANY_OFFICER_REG', 'L3', 'deny', [SAMR], '§4.2 L3 Art. 313 conviction; statutory SAMR-OFFICER deny at L3'),
  r('P_G4_CONVICTED', D, 'nfra', 'CREDIT_LENDING', 'L3', 'deny', ['NFRA-CREDIT REVIEW deny'], '§4.2 L3 Art. 313 conviction → presumptive refusal'),
  r('P_G3_12M', D, 'nfra', 'CREDIT_LENDING', 'L3', 'deny', ['NFRA-CREDIT REVIEW deny'], '§4.2 L3 "L2 with outstanding > ¥10m" (G3 → L2, ¥12m)'),
  r('P_G2_EXT_CONVICTED', D, 'nfra', 'CREDIT_LENDING', 'L3', 'deny', ['NFRA-CREDIT REVIEW deny'], '§4.2 L3 on three rows at once: still L3 (take the highest)'),

  // ── an entity debtor vs a person debtor ───────────────────────────────────────────────────
  r('E_G4_500K', D, 'mof', 'GOV_PROCUREMENT', 'L1', 'deny', [MOF], '§4.2 L1 entity cap ¥1m (¥500k); §3.3 MOF-PROC E BLOCK'),
  r('P_G4_500K', D, 'mof', 'GOV_PROCUREMENT', 'L2', 'deny', [MOF], '§4.2 the same ¥500k is over the person cap ¥100k → L2; MOF-PROC P BLOCK'),
  r('E_G4_500K', D, 'nfra', 'CREDIT_LENDING', 'L1', 'allow', ['NFRA-CREDIT REVIEW allow'], '§4.2 L1 entity ≤ ¥1m → advisory; §3.3 NFRA-CREDIT E REVIEW'),
  r('P_G4_500K', D, 'nfra', 'CREDIT_LENDING', 'L2', 'review', ['NFRA-CREDIT REVIEW review'], '§4.2 person over ¥100k → L2 enhanced review'),
  r('E_G4_1500K', D, 'nfra', 'CREDIT_LENDING', 'L2', 'review', ['NFRA-CREDIT REVIEW review'], '§4.2 entity over the ¥1m cap → L2'),
  r('E_G4_500K', D, 'caac', 'TICKET_AIR', 'L1', 'allow', [], '§3.3 CAAC-AIR P,EP: the listed entity itself takes no air ban'),
  r('E_G4_500K', D, 'samr', 'COMPANY_OFFICER_REG', 'L1', 'allow', [], '§3.3 SAMR-OFFICER P only: not the entity'),
  r('E_G4_500K', D, 'mohurd', 'CONSTRUCTION_QUAL', 'L1', 'deny', ['MOHURD-QUAL BLOCK deny'], '§3.3 MOHURD-QUAL E BLOCK'),
  r('P_G4_50K', D, 'mohurd', 'CONSTRUCTION_QUAL', 'L1', 'allow', [], '§3.3 MOHURD-QUAL E only: no measure for a person, matched all the same'),
  r('E_G4_500K', D, 'ndrc', 'POLICY_SUPPORT', 'L1', 'allow', ['NDRC-POLICY REVIEW allow'], '§4.2 L1 → advisory; §3.3 NDRC-POLICY E REVIEW'),
  r('E_G3_500K', D, 'ndrc', 'POLICY_SUPPORT', 'L2', 'review', ['NDRC-POLICY REVIEW review'], '§4.2 L2 G3 → enhanced review'),
  r('E_G4_12M', D, 'ndrc', 'POLICY_SUPPORT', 'L3', 'deny', ['NDRC-POLICY REVIEW deny'], '§4.2 entity over ¥1m → L2, and > ¥10m → L3 presumptive refusal'),
  r('P_G4_50K', D, 'ndrc', 'POLICY_SUPPORT', 'L1', 'allow', [], '§3.3 NDRC-POLICY E,EP only: a listed person gets none'),

  // ── officers of a listed entity (EP): only measures marked EP ─────────────────────────────
  // SPC-Goodwill Art. 16, §3.3 last paragraph, §11. The officer's hit takes the grade of the entity's
  // listing (the criteria of §4.2 describe the listing; the officer is not listed himself).
  r('E_G4_500K', LR, 'caac', 'TICKET_AIR', 'L1', 'deny', [CAAC], '§2.3/§3.3 CAAC-AIR EP BLOCK on the legal representative'),
  r('E_G4_500K', LR, 'rail', 'TICKET_RAIL', 'L1', 'deny', [RAIL], '§3.3 RAIL-TKT EP BLOCK'),
  r('E_G4_500K', LR, 'mof', 'GOV_PROCUREMENT', 'L1', 'allow', [], '§3.3 MOF-PROC P,E: never on officers (SPC-Goodwill Art. 16)'),
  r('E_G4_500K', LR, 'samr', 'COMPANY_OFFICER_REG', 'L1', 'allow', [], '§3.3 SAMR-OFFICER P: an officer is not a listed person'),
  r('E_G4_500K', RP, 'caac', 'TICKET_AIR', 'L1', 'deny', [CAAC], '§2.3 actual controller; §3.3 CAAC-AIR EP'),
  r('E_G4_500K', RP, 'samr', 'COMPANY_OFFICER_REG', 'L1', 'allow', [], '§3.3 SAMR-OFFICER P only'),
  r('E_G4_500K', LR, 'nfra', 'CREDIT_LENDING', 'L1', 'allow', ['NFRA-CREDIT REVIEW allow'], '§3.3 NFRA-CREDIT EP ("the borrower and its officers"); §4.2 L1 advisory'),
  r('E_G4_500K', LR, 'samr', 'ROUTINE_INSPECTION', 'L1', 'allow', ['SAMR-INSPECT FLAG allow'], '§3.3 SAMR-INSPECT P,E,EP FLAG (heightened supervision, not a refusal)'),
  r('E_G2_500K', LR, 'ndrc', 'POLICY_SUPPORT', 'L3', 'deny', ['NDRC-POLICY REVIEW deny'], '§3.3 NDRC-POLICY EP; §4.2 L3 (entity listed on G2) presumptive refusal'),
  r('E_G2_500K', LR, 'mof', 'GOV_PROCUREMENT', 'L3', 'allow', [], '§3.3 MOF-PROC P,E: not on an officer even at L3'),

  // ── scenario filtering ────────────────────────────────────────────────────────────────────
  r('P_G4_120K', D, 'nfra', 'INSURANCE_PURCHASE', 'L2', 'deny', ['NFRA-INS BLOCK deny'], '§3.3 NFRA-INS INSURANCE_PURCHASE; NFRA-CREDIT is CREDIT_LENDING and does not fire'),
  r('P_G4_120K', D, 'nfra', 'FIN_EXEC_APPOINTMENT', 'L2', 'deny', ['NFRA-EXEC BLOCK deny'], '§3.3 NFRA-EXEC P BLOCK FIN_EXEC_APPOINTMENT only'),
  r('P_G4_50K', D, 'samr', 'ROUTINE_INSPECTION', 'L1', 'allow', ['SAMR-INSPECT FLAG allow'], '§3.3 SAMR-INSPECT FLAG; SAMR-OFFICER (COMPANY_OFFICER_REG) does not fire'),
  r('P_G4_50K', D, 'rail', 'TICKET_SHIP', 'L1', 'deny', [RAIL], '§3.3 RAIL-TKT scenarios TICKET_RAIL, TICKET_SHIP'),
  r('P_G4_50K', D, 'ndrc', 'GOV_INVEST_PROJECT', 'L1', 'deny', ['NDRC-GOVINV BLOCK deny'], '§3.3 NDRC-GOVINV P BLOCK; NDRC-POLICY (POLICY_SUPPORT, E,EP) does not fire'),
  // DESIGN.md: the scenario is optional; reading taken: without one, every measure of the agency applies.
  r('P_G4_50K', D, 'samr', undefined, 'L1', 'deny', [SAMR, 'SAMR-INSPECT FLAG allow'], '§3.3 both SAMR rows for P; the strongest decision (deny) wins'),

  // ── agencies with no measure for the hit: allow, matched all the same ─────────────────────
  r('P_G4_50K', D, 'cityhall', undefined, 'L1', 'allow', [], 'an agency outside the §3.3 catalogue has no measures'),
  r('P_G3_50K', D, 'bank-icbc', 'CREDIT_LENDING', 'L2', 'review', ['NFRA-CREDIT REVIEW review'], 'profile.agency nfra: a bank applies §3.3 NFRA-CREDIT; §4.2 L2'),
]

/** The status, with the body in the message only when it is not the one expected. */
function status(t: Test, res: { statusCode: number; body: string }, expected: number, what = '') {
  t.equal(res.statusCode, expected, `${what ? `${what}: ` : ''}HTTP ${expected}${res.statusCode === expected ? '' : ` — ${res.body}`}`)
}

const rowName = (row: Row) => `${row.who} as ${row.role} @ ${row.agency}${row.scenario ? `/${row.scenario}` : ''} → ${row.grade ?? 'not matched'} ${row.decision}`

// ---------------------------------------------------------------------------------------------
// One gateway for the file: the listings pushed once
// ---------------------------------------------------------------------------------------------

const gw = await buildTestGateway(t)
gw.clock.set(NOON_2026_03_02)
const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
const keys = Object.fromEntries(await Promise.all(Object.entries(AGENCIES).map(async ([id, a]) => [id, await gw.addPrincipal({
  id, kind: 'agency', scopes: ['match'],
  profile: { lists: ['dishonest', 'restricted'], fields: ['name', 'caseNumber'], scenarios: a.scenarios, ...(a.agency ? { agency: a.agency } : {}) },
})] as const)))

const items: Record<string, unknown>[] = []
const graceUpdates: Record<string, unknown>[] = []
for (const f of Object.values(LISTED) as (Facts & { seq: number })[]) {
  items.push(listingInput(f.seq, f, f.seq, f.graceAtPush))
  for (let n = 1; n < (f.listings ?? 1); n++) items.push(listingInput(f.seq, f, f.seq + 1000 * n))
  if (f.graceLater) graceUpdates.push(listingInput(f.seq, f, f.seq, f.graceLater))
}

// The root test ends itself once it has asserted with nothing queued: the pushes are a subtest.
t.test('the court pushes the grid\'s listings; two are granted grace after publication', async (t) => {
  const push = await gw.signed(court, 'POST', '/v1/listings', { items })
  status(t, push, 200)
  t.same(push.json().summary, { created: items.length, updated: 0, unchanged: 0, rejected: 0 }, 'every listing of the grid is accepted')
  t.same(push.json().results.filter((x: { listingStatus: string }) => x.listingStatus === 'pending').length, 1, 'only P_GRACE_NEW waits in its grace period')
  const update = await gw.signed(court, 'POST', '/v1/listings', { items: graceUpdates })
  status(t, update, 200)
  t.same(update.json().results.map((x: { status: string; listingStatus: string }) => `${x.status} ${x.listingStatus}`), ['updated published', 'updated published'],
    'the court grants grace on a published listing: it stays published, now with graceUntil')
  await gw.app.matchSync.catchUp()
})

interface MatchBody {
  matched: boolean; decision: string; grade: string | null; ruleSetVersion: number; receiptId: string
  measures: { code: string; title: string; basis: string; effect: string; decision: string; notice?: string }[]
  listings: { role: string }[]; explain?: { hits: { grade: string; role: string; roleClass: string; criteria: { id: string; grade: string; inputs: Record<string, unknown> }[] }[]; rules: { code: string; decision: string; why: string }[] }
}

/** Every assertion a grid row makes on one result (single or batch). */
function checkRow(t: Test, row: Row, res: MatchBody, how: string) {
  const at = `${how}: ${row.src}`
  const listed = LISTED[row.who] as Facts
  t.equal(res.matched, row.grade !== null, `matched — ${at}`)
  t.equal(res.grade, row.grade, `grade — ${at}`)
  t.equal(res.decision, row.decision, `decision — ${at}`)
  t.same(res.measures.map((m) => `${m.code} ${m.effect} ${m.decision}`).sort(), [...row.measures].sort(), `measures — ${at}`)
  t.equal(res.ruleSetVersion, 1, `the shipped rule set is version 1 — ${at}`)
  t.match(res.receiptId, /^[0-9a-f-]{36}$/, `a receipt — ${at}`)
  t.equal(res.listings.length, row.grade === null ? 0 : (listed.listings ?? 1), `listings — ${at}`)
  t.ok(res.listings.every((l) => l.role === row.role), `role ${row.role} — ${at}`)
  t.notOk('explain' in res, `no explanation unless asked — ${at}`)
  for (const m of res.measures) {
    t.ok(m.title.length > 0, `${m.code} has a title`)
    t.equal(m.basis, BASIS[m.code], `${m.code} cites its §3.3 basis`)
    // §4.2 L1: a REVIEW measure is "shown as an advisory flag" — the agency must be told.
    if (m.effect === 'REVIEW' && row.grade === 'L1') t.ok(typeof m.notice === 'string' && m.notice.length > 0, `${m.code} at L1 carries its advisory notice — ${at}`)
  }
}

t.test('the grid, one signed POST /v1/match per row', async (t) => {
  for (const row of GRID) {
    await t.test(rowName(row), async (t) => {
      const res = await gw.signed(keys[row.agency]!, 'POST', '/v1/match', { ...subjectOf(row.who, row.role), ...(row.scenario ? { scenario: row.scenario } : {}) })
      status(t, res, 200)
      checkRow(t, row, res.json() as MatchBody, 'single')
    })
  }
})

t.test('the grid again through POST /v1/match/batch: one result per subject, in order, each with its ruleSetVersion', async (t) => {
  const groups = new Map<string, Row[]>()
  for (const row of GRID) {
    const k = `${row.agency}|${row.scenario ?? ''}`
    groups.set(k, [...(groups.get(k) ?? []), row])
  }
  t.ok(groups.size >= 10, 'several agency/scenario batches')
  for (const [k, rows] of groups) {
    const [agency, scenario] = k.split('|') as [string, string]
    const res = await gw.signed(keys[agency]!, 'POST', '/v1/match/batch', { subjects: rows.map((row) => subjectOf(row.who, row.role)), ...(scenario ? { scenario } : {}) })
    status(t, res, 200)
    const results = res.json().results as MatchBody[]
    t.equal(results.length, rows.length, `${k}: one result per subject`)
    rows.forEach((row, i) => checkRow(t, row, results[i]!, `batch ${k} #${i}`))
    t.equal(new Set(results.map((x) => x.receiptId)).size, rows.length, `${k}: a receipt per subject`)
  }
})

t.test('explain: true names the criteria that set the grade, with the facts they read', async (t) => {
  const explain = async (who: Who, role: Role, agency: string, scenario: string) => {
    const res = await gw.signed(keys[agency]!, 'POST', '/v1/match', { ...subjectOf(who, role), scenario, explain: true })
    status(t, res, 200)
    return res.json() as MatchBody
  }
  /** The criteria of the hit that carry the hit's own grade: the ones that set it. */
  const setting = (res: MatchBody, hit = 0) => {
    const h = res.explain!.hits[hit]!
    return h.criteria.filter((c) => c.grade === h.grade)
  }

  // §4.2 L3 on three rows: G2, an extension, an Art. 313 conviction — all three named.
  const l3 = await explain('P_G2_EXT_CONVICTED', D, 'nfra', 'CREDIT_LENDING')
  t.equal(l3.grade, 'L3')
  t.equal(l3.explain!.hits.length, 1)
  t.equal(l3.explain!.hits[0]!.grade, 'L3')
  t.equal(l3.explain!.hits[0]!.role, 'debtor')
  t.equal(l3.explain!.hits[0]!.roleClass, 'P')
  const l3Criteria = setting(l3)
  t.same(l3Criteria.map((c) => c.id).sort(), ['L3.convicted', 'L3.extended', 'L3.obstruction'], 'G2, the extension and the conviction each set L3')
  t.same(l3Criteria.find((c) => c.id === 'L3.obstruction')?.inputs.grounds, ['G2'])
  t.equal(l3Criteria.find((c) => c.id === 'L3.extended')?.inputs.extensionYears, 1)
  t.equal(l3Criteria.find((c) => c.id === 'L3.convicted')?.inputs.convictedOfRefusal, true)
  t.same(l3.explain!.rules.map((x) => `${x.code} ${x.decision}`), ['NFRA-CREDIT deny'], 'the rule that fired, with its decision')
  t.ok(l3.explain!.rules[0]!.why.length > 0, 'and why')

  // §4.2 L3 "L2 with outstanding > ¥10m": G3 sets L2, the amount lifts it.
  const amount = await explain('P_G3_12M', D, 'nfra', 'CREDIT_LENDING')
  t.same(setting(amount).map((c) => c.id), ['L3.aggravatedAmount'])
  t.equal(setting(amount)[0]!.inputs.amountOutstanding, 12_000_000)
  t.ok(amount.explain!.hits[0]!.criteria.some((c) => c.id === 'L2.grounds' && c.grade === 'L2'), 'the L2 row it builds on is named too')

  // §4.2 L2 "G1 with outstanding above the L1 cap".
  const overCap = await explain('P_G1_150K', D, 'nfra', 'CREDIT_LENDING')
  t.same(setting(overCap).map((c) => c.id), ['L2.overCap'])
  t.same([setting(overCap)[0]!.inputs.amountOutstanding, setting(overCap)[0]!.inputs.threshold], [150_000, 100_000])

  // §4.2 L1: no aggravating row, the general grade.
  const general = await explain('P_G4_50K', D, 'nfra', 'CREDIT_LENDING')
  t.equal(general.explain!.hits[0]!.grade, 'L1')
  t.same(setting(general).map((c) => c.id), ['grading.defaultGrade'])

  // §4.2 L0 rows, and an officer (EP) graded on the entity's listing.
  const restricted = await explain('P_RESTRICTED', D, 'caac', 'TICKET_AIR')
  t.same(setting(restricted).map((c) => c.id), ['L0.restrictedOnly'])
  const grace = await explain('P_GRACE_LATER', D, 'caac', 'TICKET_AIR')
  t.same(setting(grace).map((c) => c.id), ['L0.grace'])
  t.equal(setting(grace)[0]!.inputs.graceUntil, '2026-04-01')
  const graceOnL2Facts = await explain('P_GRACE_LATER_G3', D, 'nfra', 'CREDIT_LENDING')
  t.same(graceOnL2Facts.explain!.hits[0]!.criteria.map((c) => c.id), ['L0.grace'], 'grace decides alone: no L2 criterion is applied')
  const officer = await explain('E_G2_500K', LR, 'ndrc', 'POLICY_SUPPORT')
  t.same([officer.explain!.hits[0]!.role, officer.explain!.hits[0]!.roleClass, officer.explain!.hits[0]!.grade], ['legalRepresentative', 'EP', 'L3'])
  t.same(setting(officer).map((c) => c.id), ['L3.obstruction'])

  // Two concurrent listings: a hit each, both L2 by the concurrency row.
  const twice = await explain('P_TWICE_G4_50K', D, 'nfra', 'CREDIT_LENDING')
  t.equal(twice.explain!.hits.length, 2)
  t.same(twice.explain!.hits.map((h) => setting(twice, twice.explain!.hits.indexOf(h)).map((c) => c.id)), [['L2.concurrent'], ['L2.concurrent']])

  // Not matched: nothing to explain.
  const none = await explain('P_GRACE_NEW', D, 'caac', 'TICKET_AIR')
  t.equal(none.matched, false)
  t.same(none.explain?.hits ?? [], [])
})
