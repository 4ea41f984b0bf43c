/**
 * bench/rules-cost: what the graded-punishment rules add to matching, measured in-process so the
 * figure does not drown in the noise of a shared 2-core machine. The same matching service runs
 * 1 000-subject batches (HITS% listed, default 10) twice in the same process, alternating: with the
 * rule set in force (rules/default.json compiled) and with a stub that answers "allow, no measures"
 * for every subject (the baseline). Reported: CPU µs per subject for each, and the difference.
 * Run: `npx tsx bench/rules-cost.ts` (TEST_DATABASE_URL for PostgreSQL, else embedded PGlite).
 */
import { createMatchingService, type RulesSource } from '../src/modules/matching/matching.service.js'
import { compileRules, loadDefaultRuleSet, type CompiledRules } from '../src/modules/rules/rules.models.js'
import { buildTestGateway } from '../test/helper.js'
import { entityListing, personId, personListing } from '../test/factories.js'

const HITS = Number(process.env.HITS ?? 10)
const ROUNDS = 6
const BATCHES_PER_ROUND = 30

const teardowns: (() => unknown)[] = []
const gw = await buildTestGateway({ teardown: (f: () => unknown) => teardowns.push(f) } as never)
try {
  gw.clock.set(Date.parse('2026-03-02T04:00:00Z'))
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const items = Array.from({ length: 200 }, (_, i) => (i % 5 === 4 ? entityListing(i + 1) : personListing(i + 1, { grounds: i % 3 === 0 ? ['G2'] : ['G4'] })))
  const push = await gw.signed(court, 'POST', '/v1/listings', { items })
  if (push.json().summary.created !== items.length) throw new Error(push.body)
  await gw.app.matchSync.catchUp()

  const agency = { id: 'caac', kind: 'agency', name: 'caac', scopes: ['match'], profile: { lists: ['dishonest', 'restricted'], fields: ['name', 'caseNumber'], scenarios: ['TICKET_AIR'] } } as never
  const subjects = Array.from({ length: 1000 }, (_, i) => ({ idNumber: i % Math.round(100 / HITS) === 0 ? personId((i % 200) + 1) : personId(i, '19900101') }))
  const compiled = compileRules(loadDefaultRuleSet(), 1)
  const allow: CompiledRules = { ...compiled, evaluate: () => ({ decision: 'allow', grade: null, measures: [], ruleSetVersion: 1 }) }
  const withRules: RulesSource = { current: () => ({ compiled }) }
  const stub: RulesSource = { current: () => ({ compiled: allow }) }
  const audit = gw.app.audit
  const service = (rules: RulesSource) => createMatchingService({ db: gw.database.db, index: gw.app.matchIndex, audit, hash: gw.app.identifierHash, rules, clock: gw.clock })
  const variants = { rules: service(withRules), stub: service(stub) }

  const first = await variants.rules.match(agency, subjects, { scenario: 'TICKET_AIR', requestId: 'bench', operationId: 'match.batch', single: false })
  const listed = first.filter((r) => 'matched' in r && r.matched).length
  const denied = first.filter((r) => 'decision' in r && r.decision === 'deny').length
  const cpu: Record<keyof typeof variants, number[]> = { rules: [], stub: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of (round % 2 === 0 ? ['rules', 'stub'] : ['stub', 'rules']) as (keyof typeof variants)[]) {
      const c0 = process.cpuUsage()
      for (let b = 0; b < BATCHES_PER_ROUND; b++) await variants[name].match(agency, subjects, { scenario: 'TICKET_AIR', requestId: 'bench', operationId: 'match.batch', single: false })
      const c = process.cpuUsage(c0)
      if (round > 0) cpu[name].push((c.user + c.system) / BATCHES_PER_ROUND / subjects.length)
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const r = median(cpu.rules)
  const s = median(cpu.stub)
  console.log(`match service, ${gw.database.engine}, 1 000-subject batches, ${listed} listed (${denied} denied by the rules), ${ROUNDS - 1} rounds × ${BATCHES_PER_ROUND} batches each, alternating:`)
  console.log(`  with the default rule set: ${r.toFixed(2)} µs CPU per subject (rounds: ${cpu.rules.map((x) => x.toFixed(2)).join(' ')})`)
  console.log(`  rules stubbed to "allow":  ${s.toFixed(2)} µs CPU per subject (rounds: ${cpu.stub.map((x) => x.toFixed(2)).join(' ')})`)
  console.log(`  rules add ${(r - s).toFixed(2)} µs per subject, ${((r / s - 1) * 100).toFixed(1)}%, same process and data`)
} finally {
  for (const f of teardowns.reverse()) await f()
}
