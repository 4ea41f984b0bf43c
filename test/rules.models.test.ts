import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { AppError } from '../src/infra/errors.js'
import { projectPath } from '../src/infra/paths.js'
import {
  DECISIONS, DEFAULT_RULE_SET_FILE, GRADES, compileRules, loadDefaultRuleSet, loadRuleSetFile, roleClassOf, validateRuleSet,
  type RuleHit, type RuleInput, type RuleOutcome, type RuleSet,
} from '../src/modules/rules/rules.models.js'

const TODAY = '2026-06-01'
const raw = (): RuleSet => JSON.parse(readFileSync(projectPath('rules', 'default.json'), 'utf8')) as RuleSet
const ruleSet = loadDefaultRuleSet()
const rules = compileRules(ruleSet, 7)

/** A stored dishonest-listing record (listings.models.ts), G1 and a small amount unless told. */
const record = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  listKind: 'dishonest', grounds: ['G1'], amountOutstanding: 50_000, performance: 'none', publishedOn: '2026-01-10',
  graceUntil: null, extensionYears: 0, convictedOfRefusal: false, ...over,
})
const person = (over: Record<string, unknown> = {}, hit: Partial<RuleHit> = {}): RuleHit =>
  ({ role: 'debtor', listKind: 'dishonest', subjectKind: 'person', record: record(over), ...hit })
const entity = (over: Record<string, unknown> = {}, hit: Partial<RuleHit> = {}): RuleHit =>
  ({ role: 'debtor', listKind: 'dishonest', subjectKind: 'entity', record: record(over), ...hit })
/** The legal representative of a listed entity (an EP hit graded on the entity's record). */
const officer = (over: Record<string, unknown> = {}, hit: Partial<RuleHit> = {}): RuleHit =>
  ({ role: 'legalRepresentative', listKind: 'dishonest', subjectKind: 'entity', record: record(over), ...hit })
const restricted = (subjectKind: 'person' | 'entity' = 'person', role: RuleHit['role'] = 'debtor'): RuleHit =>
  ({ role, listKind: 'restricted', subjectKind, record: record({ listKind: 'restricted', grounds: [], amountOutstanding: 20_000_000 }) })

const run = (agency: string, hits: RuleHit[], extra: Partial<RuleInput> = {}, compiled = rules): RuleOutcome =>
  compiled.evaluate({ agency, today: TODAY, hits, ...extra })
const codes = (r: RuleOutcome) => r.measures.map((m) => m.code)
const gradeOf = (...hits: RuleHit[]) => run('pboc', hits).grade
const criteriaOf = (hit: RuleHit, extra: Partial<RuleInput> = {}) =>
  run('pboc', [hit], { explain: true, ...extra }).explain!.hits[0]!.criteria.map((c) => c.id)
const errorsOf = (doc: unknown) => {
  const result = validateRuleSet(doc)
  return result.ok ? [] : result.errors.map((e) => [e.field, e.code])
}
const compiledWith = (change: (rs: RuleSet) => void) => {
  const rs = raw()
  change(rs)
  const result = validateRuleSet(rs)
  if (!result.ok) throw new Error(JSON.stringify(result.errors))
  return compileRules(result.ruleSet, 8)
}

/** domain.md §3.3, row by row: agency, applies-to, effect, scenarios. */
const TABLE: Record<string, string> = {
  'MOF-PROC': 'mof P,E BLOCK GOV_PROCUREMENT',
  'NDRC-GOVINV': 'ndrc P,E BLOCK GOV_INVEST_PROJECT',
  'NDRC-EBOND': 'ndrc E BLOCK BOND_ISSUANCE',
  'NDRC-TENDER': 'ndrc P,E BLOCK TENDER_BIDDING',
  'NDRC-SUBSIDY': 'ndrc P,E BLOCK SUBSIDY_APPLICATION',
  'NDRC-POLICY': 'ndrc E,EP REVIEW POLICY_SUPPORT',
  'MNR-LAND': 'mnr P,E BLOCK LAND_SUPPLY',
  'SASAC-TRADE': 'sasac P,E BLOCK STATE_ASSET_TRADE',
  'SAMR-OFFICER': 'samr P BLOCK COMPANY_OFFICER_REG',
  'SAMR-INSPECT': 'samr P,E,EP FLAG ROUTINE_INSPECTION',
  'PBOC-CRR': 'pboc P,E RECORD CREDIT_REPORT',
  'PBOC-IBBOND': 'pboc E REVIEW BOND_ISSUANCE',
  'CSRC-CBOND': 'csrc E BLOCK BOND_ISSUANCE',
  'CSRC-IPO': 'csrc E REVIEW IPO_REVIEW',
  'CSRC-ESOP': 'csrc P,E BLOCK EQUITY_INCENTIVE',
  'NFRA-LICENCE': 'nfra P,E REVIEW FIN_INSTITUTION_LICENSING',
  'NFRA-EXEC': 'nfra P BLOCK FIN_EXEC_APPOINTMENT',
  'NFRA-CREDIT': 'nfra P,E,EP REVIEW CREDIT_LENDING',
  'GACC-AEO': 'gacc E BLOCK CUSTOMS_CERT',
  'SASAC-EXEC': 'sasac P BLOCK SOE_APPOINTMENT',
  'SCOPSR-LR': 'scopsr P BLOCK PUBLIC_INST_REG',
  'MCA-SOCORG': 'mca P,E BLOCK SOCIAL_ORG_REG',
  'MOHRSS-HIRE': 'mohrss P BLOCK CIVIL_SERVICE_HIRING',
  'ORG-CAND': 'org P BLOCK REPRESENTATIVE_CANDIDACY',
  'MOHURD-QUAL': 'mohurd E BLOCK CONSTRUCTION_QUAL',
  'REG-INDUSTRY': 'nmpa P,E REVIEW INDUSTRY_LICENCE',
  'CCO-HONOUR': 'cco P,E BLOCK HONOUR_AWARD',
  'CAAC-AIR': 'caac P,EP BLOCK TICKET_AIR',
  'RAIL-TKT': 'rail P,EP BLOCK TICKET_RAIL,TICKET_SHIP',
  'MCT-TOUR': 'mct P,EP BLOCK TOUR_HOTEL',
  'MOE-SCHOOL': 'moe P,EP BLOCK SCHOOL_FEES',
  'NFRA-INS': 'nfra P,EP BLOCK INSURANCE_PURCHASE',
  'MPS-EXIT': 'mps P,EP BLOCK EXIT_CONTROL',
}
const CONSUMPTION = ['CAAC-AIR', 'RAIL-TKT', 'MCT-TOUR', 'MOE-SCHOOL', 'NFRA-INS', 'MPS-EXIT']

t.test('the default rule set validates and carries all 33 measures of domain.md §3.3', async (t) => {
  const doc = raw()
  t.same(validateRuleSet(doc), { ok: true, ruleSet: doc }, 'schema and semantic checks pass')
  t.equal(DEFAULT_RULE_SET_FILE, projectPath('rules', 'default.json'))
  t.same(loadDefaultRuleSet(), doc)
  t.equal(doc.measures.length, 33)
  t.same(doc.measures.map((m) => m.code), Object.keys(TABLE), 'every §3.3 code, in table order')
  for (const m of doc.measures) {
    t.equal(`${m.agency} ${m.appliesTo.join(',')} ${m.effect} ${m.scenarios.join(',')}`, TABLE[m.code], `${m.code} as in §3.3`)
    t.equal(m.decision, doc.decisions.effects[m.effect].decision, `${m.code}: its decision is its effect's`)
    const consumption = CONSUMPTION.includes(m.code)
    t.same(m.listKinds, consumption ? ['dishonest', 'restricted'] : ['dishonest'], `${m.code}: list kinds`)
    t.equal(m.minGrade, consumption ? 'L0' : 'L1', `${m.code}: minimum grade`)
    if (consumption) t.equal(m.statutory, true, `${m.code}: a court's consumption order is statutory`)
  }
  t.same(doc.measures.filter((m) => m.statutory).map((m) => m.code).sort(),
    ['CAAC-AIR', 'MCT-TOUR', 'MOE-SCHOOL', 'MOF-PROC', 'MPS-EXIT', 'NFRA-EXEC', 'NFRA-INS', 'PBOC-CRR', 'RAIL-TKT', 'SAMR-OFFICER', 'SASAC-EXEC'])
  for (const code of ['NFRA-LICENCE', 'REG-INDUSTRY']) {
    const m = doc.measures.find((x) => x.code === code)!
    t.equal(m.effect, 'REVIEW', `${code}: the mixed REVIEW/BLOCK row is a graded REVIEW`)
    t.match(m.note, /REVIEW\/BLOCK/, `${code}: the choice is documented`)
  }
  t.same({ effects: Object.fromEntries(Object.entries(doc.decisions.effects).map(([k, v]) => [k, v.decision])), appeal: doc.policy.appealPending },
    { effects: { BLOCK: 'deny', REVIEW: 'review', FLAG: 'allow', RECORD: 'allow' }, appeal: 'unchanged' })
  t.same(rules.scenariosByAgency.get('ndrc'), ['GOV_INVEST_PROJECT', 'BOND_ISSUANCE', 'TENDER_BIDDING', 'SUBSIDY_APPLICATION', 'POLICY_SUPPORT'])
})

t.test('no hits: allow, no grade, no measures', async (t) => {
  t.same(run('caac', []), { decision: 'allow', grade: null, measures: [], ruleSetVersion: 7 })
  t.same(run('caac', [], { explain: true }).explain, { hits: [], rules: [] })
  t.same(run('caac', [], { history: [{ publishedOn: '2025-01-01' }, { publishedOn: '2025-06-01' }] }).measures, [], 'history alone never triggers measures')
})

t.test('L0: a listing in its grace period fires consumption measures only', async (t) => {
  const inGrace = person({ grounds: ['G2'], publishedOn: '2026-05-20', graceUntil: '2026-07-01' })
  t.equal(gradeOf(inGrace), 'L0', 'grace wins over G2 (exclusive)')
  t.same(run('pboc', [inGrace], { explain: true }).explain!.hits[0]!.criteria,
    [{ id: 'L0.grace', grade: 'L0', inputs: { graceUntil: '2026-07-01', today: TODAY } }])
  t.same(run('mof', [inGrace]), { decision: 'allow', grade: 'L0', measures: [], ruleSetVersion: 7 }, 'no procurement exclusion yet')
  t.same([run('caac', [inGrace]).decision, codes(run('caac', [inGrace]))], ['deny', ['CAAC-AIR']])
  const after = run('mof', [inGrace], { today: '2026-07-01' })
  t.same([after.grade, after.decision, codes(after)], ['L3', 'deny', ['MOF-PROC']], 'the day the grace period ends, the listing bites')
})

t.test('L0: a consumption order alone fires no agency measure, while CAAC-AIR still blocks', async (t) => {
  const hit = restricted()
  t.equal(gradeOf(hit), 'L0', 'restricted-only is L0 even with ¥20m outstanding')
  t.same(criteriaOf(hit), ['L0.restrictedOnly'])
  for (const agency of ['mof', 'ndrc', 'samr', 'pboc', 'sasac', 'csrc']) t.same(codes(run(agency, [hit])), [], `${agency}: nothing`)
  const expected: Record<string, string[]> = {
    caac: ['CAAC-AIR'], rail: ['RAIL-TKT'], mct: ['MCT-TOUR'], moe: ['MOE-SCHOOL'], mps: ['MPS-EXIT'], nfra: ['NFRA-INS'],
  }
  for (const [agency, want] of Object.entries(expected)) {
    const r = run(agency, [hit])
    t.same([r.decision, codes(r)], ['deny', want], `${agency}: ${want.join(',')}`)
  }
  t.same(codes(run('caac', [restricted('entity')])), [], 'a restricted entity itself buys no tickets (P,EP only)')
})

t.test('L1: a single G1, G4 or G6 ground, outstanding up to the cap, first listing', async (t) => {
  t.equal(gradeOf(person()), 'L1')
  t.same(run('pboc', [person()], { explain: true }).explain!.hits[0]!.criteria, [{ id: 'grading.defaultGrade', grade: 'L1', inputs: { listKind: 'dishonest' } }])
  t.equal(gradeOf(person({ amountOutstanding: 100_000 })), 'L1', 'person: exactly ¥100k is still L1')
  t.equal(gradeOf(entity({ amountOutstanding: 1_000_000 })), 'L1', 'entity: exactly ¥1m is still L1')
  t.equal(gradeOf(entity({ amountOutstanding: 500_000 })), 'L1', 'entity: ¥500k')
  t.equal(gradeOf(person({ grounds: ['G4'] })), 'L1', 'G4')
  t.equal(gradeOf(person({ grounds: ['G6'] })), 'L1', 'G6')
  t.equal(gradeOf(person({ amountOutstanding: null })), 'L1', 'no amount on the record: no amount criterion')
})

t.test('L2: outstanding above the cap, G3 or G5, two grounds', async (t) => {
  t.equal(gradeOf(person({ amountOutstanding: 100_001 })), 'L2', 'person over ¥100k')
  t.same(run('pboc', [person({ amountOutstanding: 100_001 })], { explain: true }).explain!.hits[0]!.criteria,
    [{ id: 'L2.overCap', grade: 'L2', inputs: { amountOutstanding: 100_001, subjectKind: 'person', threshold: 100_000 } }])
  t.equal(gradeOf(entity({ amountOutstanding: 1_000_001 })), 'L2', 'entity over ¥1m')
  t.equal(gradeOf(person({ amountOutstanding: 500_000 })), 'L2', '¥500k is over the person cap')
  t.equal(gradeOf(person({ grounds: ['G4'], amountOutstanding: 200_000 })), 'L2', 'G4 over the cap is not L1 either')
  t.same(criteriaOf(person({ grounds: ['G3'] })), ['L2.grounds'])
  t.same(criteriaOf(person({ grounds: ['G5'] })), ['L2.grounds'])
  t.same(criteriaOf(person({ grounds: ['G1', 'G4'] })), ['L2.multipleGrounds'])
})

t.test('L2: two concurrent listings of the subject', async (t) => {
  const a = person({ caseNumber: 'a' })
  const b = person({ caseNumber: 'b' })
  t.equal(gradeOf(a), 'L1')
  const r = run('pboc', [a, b], { explain: true })
  t.equal(r.grade, 'L2')
  t.same(r.explain!.hits.map((h) => [h.grade, h.criteria.map((c) => c.id)]), [['L2', ['L2.concurrent']], ['L2', ['L2.concurrent']]])
  t.same(r.explain!.hits[0]!.criteria[0]!.inputs, { role: 'debtor', concurrentListings: 2 })
  t.equal(gradeOf(a, person({ publishedOn: '2026-05-20', graceUntil: '2026-07-01' })), 'L1', 'a listing in grace is not concurrent')
  t.equal(gradeOf(a, restricted()), 'L1', 'a consumption order is not a listing')
  t.equal(gradeOf(a, officer()), 'L1', "being an officer of a listed entity is not the subject's own listing")
  const withOfficer = run('pboc', [a, b, officer()], { explain: true }).explain!.hits
  t.same(withOfficer.map((h) => h.grade), ['L2', 'L2', 'L1'], "the entity's listing keeps its own grade")
})

t.test('L2: three listings in five years, the removed ones from history', async (t) => {
  const hit = person({ publishedOn: '2026-01-10' })
  t.equal(run('pboc', [hit], { history: [{ publishedOn: '2022-03-01' }, { publishedOn: '2024-08-15' }] }).grade, 'L2')
  t.same(criteriaOf(hit, { history: [{ publishedOn: '2022-03-01' }, { publishedOn: '2024-08-15' }] }), ['L2.repeat'])
  t.same(run('pboc', [hit], { explain: true, history: [{ publishedOn: '2021-06-01' }, { publishedOn: '2024-08-15' }] }).explain!.hits[0]!.criteria[0]!.inputs,
    { role: 'debtor', publishedSince: '2021-06-01', currentListings: 1, earlierListings: 2 }, 'the look-back starts five years before today')
  t.equal(run('pboc', [hit], { history: [{ publishedOn: '2021-05-31' }, { publishedOn: '2024-08-15' }] }).grade, 'L1', 'one of them older than five years')
  t.equal(run('pboc', [hit], { history: [{ publishedOn: '2024-08-15', listKind: 'restricted' }, { publishedOn: '2025-01-01' }] }).grade, 'L1', 'consumption orders do not count')
})

t.test('L3: G2, an extended period, an Art. 313 conviction, L2 with more than ¥10m', async (t) => {
  t.same(criteriaOf(person({ grounds: ['G2'] })), ['L3.obstruction'])
  t.same(criteriaOf(person({ grounds: ['G4'], extensionYears: 2 })), ['L3.extended'])
  t.same(run('pboc', [person({ grounds: ['G4'], extensionYears: 2 })], { explain: true }).explain!.hits[0]!.criteria[0]!.inputs, { extensionYears: 2 })
  t.same(criteriaOf(person({ convictedOfRefusal: true })), ['L3.convicted'])
  t.equal(gradeOf(person({ convictedOfRefusal: true })), 'L3')
  t.same(criteriaOf(entity({ amountOutstanding: 10_000_001 })), ['L2.overCap', 'L3.aggravatedAmount'])
  t.equal(gradeOf(entity({ amountOutstanding: 10_000_001 })), 'L3')
  t.equal(gradeOf(entity({ amountOutstanding: 10_000_000 })), 'L2', 'exactly ¥10m stays L2')
  // requiresGrade: without the cap criterion a large G1 amount is L1, so the ¥10m aggravation does not apply.
  const noCap = compiledWith((rs) => { rs.grading.criteria = rs.grading.criteria.filter((c) => c.id !== 'L2.overCap') })
  t.equal(run('pboc', [person({ amountOutstanding: 20_000_000 })], {}, noCap).grade, 'L1')
  t.equal(run('pboc', [person({ grounds: ['G3'], amountOutstanding: 20_000_000 })], {}, noCap).grade, 'L3')
})

t.test('partial performance of at least half lowers the grade by one, never below L1', async (t) => {
  const g3 = (over: Record<string, unknown>) => person({ grounds: ['G3'], performance: 'partial', ...over })
  const r = run('pboc', [g3({ performedPart: 60_000, amountOutstanding: 40_000 })], { explain: true })
  t.equal(r.grade, 'L1')
  t.same(r.explain!.hits[0]!.modifiers, [{
    id: 'M.partialPerformance', from: 'L2', to: 'L1',
    inputs: { performance: 'partial', performedPart: 60_000, amountOutstanding: 40_000, share: 0.6 },
  }])
  t.equal(gradeOf(g3({ performedPart: 50_000, amountOutstanding: 50_000 })), 'L1', 'exactly 50%')
  t.equal(gradeOf(g3({ performedPart: 40_000, amountOutstanding: 60_000 })), 'L2', '40% is not enough')
  t.equal(gradeOf(g3({})), 'L2', 'performance "partial" without performedPart: the share is unknown, nothing changes')
  t.equal(gradeOf(g3({ performance: 'none', performedPart: 90_000, amountOutstanding: 10_000 })), 'L2', 'performance must be partial')
  t.equal(gradeOf(person({ grounds: ['G2'], performance: 'partial', performedPart: 90_000, amountOutstanding: 10_000 })), 'L2', 'L3 → L2')
  const l1 = run('pboc', [person({ performance: 'partial', performedPart: 90_000, amountOutstanding: 10_000 })], { explain: true })
  t.same([l1.grade, l1.explain!.hits[0]!.modifiers], ['L1', []], 'L1 stays L1 while active: the modifier does not apply')
})

t.test('officers of a listed entity get EP measures only: CAAC-AIR but not MOF-PROC', async (t) => {
  t.same([roleClassOf('debtor', 'person'), roleClassOf('debtor', 'entity'), roleClassOf('legalRepresentative', 'entity'), roleClassOf('restrictedPerson', 'entity')], ['P', 'E', 'EP', 'EP'])
  for (const role of ['legalRepresentative', 'restrictedPerson'] as const) {
    const hit = officer({}, { role })
    t.same([run('caac', [hit]).decision, codes(run('caac', [hit]))], ['deny', ['CAAC-AIR']], `${role}: CAAC-AIR`)
    t.same([run('mof', [hit]).decision, codes(run('mof', [hit]))], ['allow', []], `${role}: no MOF-PROC`)
    t.same(codes(run('samr', [hit])), ['SAMR-INSPECT'], `${role}: not the SAMR-OFFICER bar, which binds listed persons`)
    t.same(codes(run('nfra', [hit])), ['NFRA-CREDIT', 'NFRA-INS'], `${role}: EP rows of nfra only`)
    t.same(codes(run('ndrc', [hit])), ['NDRC-POLICY'], `${role}: NDRC-POLICY names officers`)
  }
  const listedEntity = entity()
  t.same(codes(run('mof', [listedEntity])), ['MOF-PROC'], 'the entity itself is excluded from procurement')
  t.same(codes(run('caac', [listedEntity])), [], 'an entity buys no air tickets')
  const officerOfRestricted = restricted('entity', 'restrictedPerson')
  t.same(codes(run('caac', [officerOfRestricted])), ['CAAC-AIR'], 'officer of a restricted entity: the consumption ban')
  t.same(codes(run('nfra', [officerOfRestricted])), ['NFRA-INS'], 'but no agency measure')
})

t.test('a scenario narrows the measures to it; no scenario means all of the agency', async (t) => {
  t.same(codes(run('rail', [person()], { scenario: 'TICKET_SHIP' })), ['RAIL-TKT'])
  t.same(codes(run('rail', [person()], { scenario: 'TICKET_RAIL' })), ['RAIL-TKT'])
  t.same(codes(run('ndrc', [entity()], { scenario: 'BOND_ISSUANCE' })), ['NDRC-EBOND'])
  t.same(codes(run('pboc', [entity()], { scenario: 'BOND_ISSUANCE' })), ['PBOC-IBBOND'], 'a scenario name shared by agencies stays per agency')
  t.same(run('ndrc', [person()], { scenario: 'BOND_ISSUANCE' }).measures, [], 'enterprise bonds: entities only')
  t.same(codes(run('ndrc', [entity()])), ['NDRC-GOVINV', 'NDRC-EBOND', 'NDRC-TENDER', 'NDRC-SUBSIDY', 'NDRC-POLICY'])
  t.same(codes(run('ndrc', [person()])), ['NDRC-GOVINV', 'NDRC-TENDER', 'NDRC-SUBSIDY'])
  t.same(run('ndrc', [entity()], { scenario: 'TICKET_AIR' }), { decision: 'allow', grade: 'L1', measures: [], ruleSetVersion: 7 }, "another agency's scenario")
  t.same(run('unknown-agency', [entity()]), { decision: 'allow', grade: 'L1', measures: [], ruleSetVersion: 7 }, 'an agency without measures')
})

t.test('the strongest decision wins: deny > review > allow', async (t) => {
  t.same(DECISIONS, ['allow', 'review', 'deny'])
  const samr = run('samr', [person()])
  t.same([samr.decision, samr.measures.map((m) => [m.code, m.decision])], ['deny', [['SAMR-OFFICER', 'deny'], ['SAMR-INSPECT', 'allow']]])
  const inspect = run('samr', [person()], { scenario: 'ROUTINE_INSPECTION' })
  t.same([inspect.decision, inspect.measures[0]!.notice], ['allow', ruleSet.decisions.effects.FLAG.notice], 'FLAG: allow with a notice')
  const pboc = run('pboc', [entity({ grounds: ['G3'] })])
  t.same([pboc.decision, pboc.measures.map((m) => [m.code, m.decision])], ['review', [['PBOC-CRR', 'allow'], ['PBOC-IBBOND', 'review']]])
  t.match(pboc.measures[0]!.notice, /recorded/, 'RECORD: allow with a notice')
  t.equal(run('pboc', [person()]).decision, 'allow', 'RECORD alone allows')
  // Two hits: the union of the measures, each at its strongest; the grade is the highest.
  const both = run('nfra', [person(), officer({ grounds: ['G2'] })], { scenario: 'CREDIT_LENDING' })
  t.same([both.grade, both.decision, both.measures.map((m) => [m.code, m.decision])], ['L3', 'deny', [['NFRA-CREDIT', 'deny']]])
  const union = run('nfra', [restricted(), officer({ grounds: ['G2'] })])
  t.same([union.grade, codes(union)], ['L3', ['NFRA-CREDIT', 'NFRA-INS']], 'in catalogue order, each once')
})

t.test('a REVIEW measure follows the grade; a statutory measure never weakens', async (t) => {
  const ibbond = (hit: RuleHit) => run('pboc', [hit], { scenario: 'BOND_ISSUANCE' }).measures[0]!
  t.same(ibbond(entity()), { code: 'PBOC-IBBOND', title: 'Strict review of interbank-market bond issuance', basis: 'O16-I [C]', effect: 'REVIEW', decision: 'allow', notice: ruleSet.decisions.reviewByGrade.L1!.notice })
  t.same([ibbond(entity({ grounds: ['G3'] })).decision, ibbond(entity({ grounds: ['G3'] })).notice], ['review', ruleSet.decisions.reviewByGrade.L2!.notice])
  t.same([ibbond(entity({ grounds: ['G2'] })).decision, ibbond(entity({ grounds: ['G2'] })).notice], ['deny', ruleSet.decisions.reviewByGrade.L3!.notice])
  const byGrade: Record<string, RuleHit> = {
    L0: person({ publishedOn: '2026-05-20', graceUntil: '2026-07-01' }), L1: person(), L2: person({ grounds: ['G3'] }), L3: person({ grounds: ['G2'] }),
  }
  for (const grade of GRADES) {
    const r = run('caac', [byGrade[grade]!])
    t.same([r.grade, r.decision, codes(r)], [grade, 'deny', ['CAAC-AIR']], `CAAC-AIR blocks at ${grade}`)
  }
  for (const grade of ['L1', 'L2', 'L3']) t.equal(run('mof', [byGrade[grade]!]).decision, 'deny', `MOF-PROC refuses at ${grade}`)
  const statutoryReview = compiledWith((rs) => { rs.measures.find((m) => m.code === 'PBOC-IBBOND')!.statutory = true })
  t.equal(run('pboc', [entity()], { scenario: 'BOND_ISSUANCE' }, statutoryReview).measures[0]!.decision, 'review', 'a statutory REVIEW is not made advisory at L1')
  const blockToReview = raw()
  blockToReview.decisions.effects.BLOCK.decision = 'review'
  t.same(errorsOf(blockToReview).filter(([, code]) => code === 'rules.statutory_weakened'), [['decisions.effects.BLOCK.decision', 'rules.statutory_weakened']],
    'mapping BLOCK below deny is refused while statutory BLOCK measures exist')
})

t.test('a pending appeal changes nothing by default (SPC-List Art. 12: the decision stays in force)', async (t) => {
  const hit = person({}, { appealPending: true })
  t.same(run('ndrc', [hit]), run('ndrc', [person()]))
  t.equal(run('ndrc', [hit]).decision, 'deny')
})

t.test('appeal policy "review": a non-statutory refusal becomes review, a statutory one stays', async (t) => {
  const reviewing = compiledWith((rs) => { rs.policy.appealPending = 'review' })
  const hit = person({}, { appealPending: true })
  const ndrc = run('ndrc', [hit], { scenario: 'GOV_INVEST_PROJECT' }, reviewing)
  t.same([ndrc.decision, ndrc.measures[0]!.decision, ndrc.measures[0]!.notice], ['review', 'review', ruleSet.policy.appealNotice])
  t.equal(run('ndrc', [person()], { scenario: 'GOV_INVEST_PROJECT' }, reviewing).decision, 'deny', 'no appeal: deny')
  t.same(run('mof', [hit], {}, reviewing).measures.map((m) => m.decision), ['deny'], 'MOF-PROC is statutory')
  t.equal(run('caac', [hit], {}, reviewing).decision, 'deny', 'CAAC-AIR is a court order')
  t.equal(run('pboc', [entity({ grounds: ['G2'] }, { appealPending: true })], { scenario: 'BOND_ISSUANCE' }, reviewing).decision, 'review', 'an L3 presumptive refusal too')
  const mixed = run('ndrc', [hit, person({ caseNumber: 'other' })], { scenario: 'GOV_INVEST_PROJECT' }, reviewing)
  t.equal(mixed.decision, 'deny', 'a second listing without an appeal still refuses')
})

t.test('explain: the grade per hit with the criteria and inputs, and why each rule fired', async (t) => {
  const hit = entity({ grounds: ['G1', 'G3'], amountOutstanding: 20_000_000, performance: 'partial', performedPart: 30_000_000 })
  const r = run('pboc', [hit], { explain: true })
  const h = r.explain!.hits[0]!
  t.same([h.hit, h.role, h.roleClass, h.listKind, h.grade], [0, 'debtor', 'E', 'dishonest', 'L2'])
  t.same(h.criteria.map((c) => [c.id, c.grade]), [['L2.grounds', 'L2'], ['L2.overCap', 'L2'], ['L2.multipleGrounds', 'L2'], ['L3.aggravatedAmount', 'L3']])
  t.same(h.criteria[0]!.inputs, { grounds: ['G1', 'G3'] })
  t.same(h.criteria[3]!.inputs, { amountOutstanding: 20_000_000, subjectKind: 'entity', threshold: 10_000_000 })
  t.same(h.modifiers.map((m) => [m.id, m.from, m.to, m.inputs.share]), [['M.partialPerformance', 'L3', 'L2', 0.6]])
  t.same(r.explain!.rules.map((x) => [x.hit, x.code, x.decision]), [[0, 'PBOC-CRR', 'allow'], [0, 'PBOC-IBBOND', 'review']])
  t.match(r.explain!.rules[0]!.why, /role E ∈ P,E.*grade L2 ≥ L1.*statutory/)
  t.match(r.explain!.rules[1]!.why, /REVIEW at L2 → review \(decisions\.reviewByGrade\.L2\)/)
  t.notOk('explain' in run('pboc', [hit]), 'no explanation unless asked')
  const officerWhy = run('caac', [officer()], { explain: true }).explain!
  t.same([officerWhy.hits[0]!.roleClass, officerWhy.rules[0]!.code], ['EP', 'CAAC-AIR'])
  t.match(officerWhy.rules[0]!.why, /role EP ∈ P,EP/)
})

t.test('a broken document is rejected with every error listed', async (t) => {
  const doc = raw()
  doc.measures[1]!.code = 'MOF-PROC'
  ;(doc.measures[2] as { effect: string }).effect = 'BAN'
  delete (doc.measures[3] as { basis?: string }).basis
  ;(doc.measures[4] as { minGrade: string }).minGrade = 'L4'
  const result = validateRuleSet(doc)
  t.equal(result.ok, false)
  if (result.ok) return
  t.same(result.errors.map((e) => [e.field, e.code]).sort(), [
    ['measures.1.code', 'rules.duplicate_measure'],
    ['measures.2.effect', 'rules.schema'],
    ['measures.3.basis', 'rules.schema'],
    ['measures.4.minGrade', 'rules.unknown_grade'],
  ])
  t.ok(result.errors.every((e) => e.message.length > 0))
  t.match(result.errors.find((e) => e.code === 'rules.duplicate_measure')!.message, /measures\.0/)
})

t.test('the semantic and schema checks, one by one', async (t) => {
  type Doc = RuleSet & Record<string, unknown>
  const cases: [string, (d: Doc) => void, string[][]][] = [
    ['not an object', () => {}, []],
    ['an extra top-level field', (d) => { d.extra = 1 }, [['extra', 'rules.schema']]],
    ['an empty scenario list', (d) => { d.measures[0]!.scenarios = [] }, [['measures.0.scenarios', 'rules.schema']]],
    ['a lowercase scenario', (d) => { d.measures[0]!.scenarios = ['procurement'] }, [['measures.0.scenarios.0', 'rules.schema']]],
    ['an unknown role class', (d) => { (d.measures[0]!.appliesTo as string[]) = ['P', 'X'] }, [['measures.0.appliesTo.1', 'rules.schema']]],
    ['a measure of an agency not in agencies', (d) => { d.measures[0]!.agency = 'nobody' }, [['measures.0.agency', 'rules.unknown_agency']]],
    ['an agency defined twice', (d) => { d.agencies.push({ code: 'caac', name: '又一个' }) }, [[`agencies.${raw().agencies.length}.code`, 'rules.duplicate_agency']]],
    ['a measure without legal basis', (d) => { d.measures[0]!.basis = '' }, [['measures.0.basis', 'rules.schema']]],
    ['a duplicate criterion id', (d) => { d.grading.criteria[3]!.id = 'L2.grounds' }, [['grading.criteria.3.id', 'rules.duplicate_criterion']]],
    ['an unknown default grade', (d) => { (d.grading as { defaultGrade: string }).defaultGrade = 'L9' }, [['grading.defaultGrade', 'rules.unknown_grade']]],
    ['an unknown grade in reviewByGrade', (d) => { (d.decisions.reviewByGrade as Record<string, unknown>).L5 = { decision: 'deny' } }, [['decisions.reviewByGrade.L5', 'rules.unknown_grade']]],
    ['a BLOCK row in reviewByGrade keys', (d) => { (d.decisions.reviewByGrade as Record<string, unknown>).block = { decision: 'deny' } }, [['decisions.reviewByGrade.block', 'rules.schema']]],
    ['a missing effect mapping', (d) => { delete (d.decisions.effects as Partial<RuleSet['decisions']['effects']>).FLAG }, [['decisions.effects.FLAG', 'rules.schema']]],
    ['an unknown appeal policy', (d) => { (d.policy as { appealPending: string }).appealPending = 'suspend' }, [['policy.appealPending', 'rules.schema']]],
    ['a parameter another kind takes', (d) => { d.grading.criteria[8]!.min = 2 }, [['grading.criteria.8.min', 'rules.schema']]],
    ['a parameter its kind needs is missing', (d) => { delete d.grading.criteria[2]!.grounds }, [['grading.criteria.2.grounds', 'rules.schema']]],
    ['an unknown criterion kind', (d) => { (d.grading.criteria[8] as { kind: string }).kind = 'bankrupt' }, [['grading.criteria.8.kind', 'rules.schema']]],
    ['an exclusive criterion requiring a grade', (d) => { d.grading.criteria[0]!.requiresGrade = 'L1' }, [['grading.criteria.0.requiresGrade', 'rules.exclusive_requires_grade']]],
    ['a decision that is not its effect\'s', (d) => { d.measures[1]!.decision = 'review' }, [['measures.1.decision', 'rules.decision_mismatch']]],
    ['a statutory row that allows', (d) => { d.measures[0]!.decision = 'allow' }, [['measures.0.decision', 'rules.statutory_weakened']]],
    ['a statutory row that needs L2', (d) => { d.measures[0]!.minGrade = 'L2' }, [['measures.0.minGrade', 'rules.statutory_weakened']]],
    ['a modifier that lowers to L0', (d) => { d.grading.modifiers[0]!.floor = 'L0' }, [['grading.modifiers.0.floor', 'rules.statutory_weakened']]],
    ['BLOCK mapped to allow', (d) => { d.decisions.effects.BLOCK.decision = 'allow' }, [
      ['decisions.effects.BLOCK.decision', 'rules.statutory_weakened'],
      ...raw().measures.flatMap((m, i) => (m.effect === 'BLOCK' && !m.statutory ? [[`measures.${i}.decision`, 'rules.decision_mismatch']] : [])),
    ]],
  ]
  for (const [what, spoil, expected] of cases) {
    const doc = raw() as Doc
    spoil(doc)
    const input = what === 'not an object' ? ['a', 'list'] : doc
    const errors = errorsOf(input)
    if (what === 'not an object') t.same(errors, [['/', 'rules.schema']], what)
    else t.same(errors.sort(), expected.sort(), what)
  }
})

t.test('compiled rules are fixed at compile time and their results frozen', async (t) => {
  const doc = raw()
  const compiled = compileRules(doc, 42)
  t.same([compiled.version, compiled.ruleSetId], [42, 'default'])
  doc.measures.find((m) => m.code === 'CAAC-AIR')!.title = 'changed'
  doc.decisions.effects.BLOCK.decision = 'allow'
  doc.grading.modifiers[0]!.minShare = 0.01
  const r = run('caac', [person()], {}, compiled)
  t.same([r.ruleSetVersion, r.decision, r.measures[0]!.title], [42, 'deny', ruleSet.measures.find((m) => m.code === 'CAAC-AIR')!.title])
  t.equal(run('pboc', [person({ grounds: ['G3'], performance: 'partial', performedPart: 10, amountOutstanding: 90 })], {}, compiled).grade, 'L2')
  t.ok(Object.isFrozen(r.measures) && Object.isFrozen(r.measures[0]), 'shared results cannot be changed by a caller')
  t.same(run('caac', [person()]), run('caac', [person()]), 'deterministic')
})

t.test('a rule-set file that fails validation is refused with every error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rules-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bad = raw()
  bad.measures[1]!.code = 'MOF-PROC'
  ;(bad.measures[4] as { minGrade: string }).minGrade = 'L4'
  writeFileSync(join(dir, 'bad.json'), JSON.stringify(bad))
  writeFileSync(join(dir, 'broken.json'), '{ "id": ')
  writeFileSync(join(dir, 'good.json'), JSON.stringify(raw()))
  t.throws(() => loadRuleSetFile(join(dir, 'bad.json')), { code: 'rules.invalid_rule_set', status: 500, extra: { errors: [{ code: 'rules.duplicate_measure' }, { code: 'rules.unknown_grade' }] } })
  try {
    loadRuleSetFile(join(dir, 'bad.json'))
  } catch (err) {
    t.type(err, AppError)
    t.equal((err as AppError).extra.errors?.length, 2)
  }
  t.throws(() => loadRuleSetFile(join(dir, 'broken.json')), { code: 'rules.invalid_rule_set', message: /not readable JSON/ })
  t.same(loadRuleSetFile(join(dir, 'good.json')), raw())
})
