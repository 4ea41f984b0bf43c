import { createHash } from 'node:crypto'
import type { Database } from '../../infra/db.js'
import { canonicalJson } from '../audit/audit.models.js'
import { compileRules, loadDefaultRuleSet, rulesError, validateRuleSet, type CompiledRules, type RuleSet } from './rules.models.js'
import { createRulesRepository, RULES_CHANNEL } from './rules.repository.js'
import type { RuleSetRow } from './rules.table.js'

/** Polling fallback for a lost NOTIFY: a new version is in force everywhere within 1 s (issue 5). */
const POLL_MS = 500

export interface RulesInForce { compiled: CompiledRules; row: Omit<RuleSetRow, 'document'> }

/** sha256 of the canonical document: the same rule set, however formatted, has one hash. */
export function ruleSetHash(document: unknown): string {
  return createHash('sha256').update(canonicalJson(document)).digest('hex')
}

/**
 * The rule set in force in this process, compiled once per version, and its publication. At start
 * the highest stored version is loaded (an empty table gets the shipped rules/default.json as
 * version 1); afterwards a NOTIFY from any process, or the poll, switches to a newer version.
 */
export function createRulesService(database: Database, log: { warn(obj: unknown, msg?: string): void; info(obj: unknown, msg?: string): void }) {
  const repo = createRulesRepository(database.db)
  let inForce: RulesInForce | undefined
  let timer: NodeJS.Timeout | undefined
  let unlisten: (() => Promise<void>) | undefined
  let refreshing: Promise<void> | undefined
  let stopped = false

  function use(row: RuleSetRow) {
    if (inForce && inForce.row.version >= row.version) return
    // Stored documents were validated when published; a row that fails now is refused, not guessed at.
    const checked = validateRuleSet(row.document)
    if (!checked.ok) throw rulesError('invalid_rule_set', 500, `rule set version ${row.version} in the database does not validate (${checked.errors.length} error(s))`, { errors: checked.errors })
    const { document: _document, ...meta } = row
    inForce = { compiled: compileRules(checked.ruleSet, row.version), row: meta }
    log.info({ version: row.version, ruleSet: checked.ruleSet.id }, 'rule set in force')
  }

  async function refresh(): Promise<void> {
    const latest = await repo.latestVersion()
    if (inForce && latest <= inForce.row.version) return
    const row = await repo.latest()
    if (row) use(row)
  }

  /** One refresh at a time; a NOTIFY during one is covered by the next poll. */
  function refreshSoon() {
    refreshing ??= refresh().catch((err: unknown) => log.warn({ err }, 'rule set refresh failed; retrying')).finally(() => { refreshing = undefined })
    return refreshing
  }

  return {
    async start() {
      // A database that is down (or not migrated) at boot must not stop the process: /readyz says
      // "loading" and matching answers 503 until the rules are in force; loading is retried.
      const attempt = async () => {
        try {
          if (!(await repo.latest())) {
            const document = loadDefaultRuleSet() as unknown as Record<string, unknown>
            await repo.publish({ document, contentHash: ruleSetHash(document), publishedBy: 'system', requestId: null })
          }
          await refresh()
          unlisten ??= await database.listen(RULES_CHANNEL, () => { void refreshSoon() }, () => { void refreshSoon() })
          if (!stopped) { timer = setInterval(() => { void refreshSoon() }, POLL_MS); timer.unref() }
        } catch (err) {
          log.warn({ err }, 'loading the rule set failed; retrying')
          if (!stopped) { timer = setTimeout(() => void attempt(), 1000); timer.unref() }
        }
      }
      await attempt()
    },

    get ready() { return inForce !== undefined },

    async stop() {
      stopped = true
      clearTimeout(timer)
      await unlisten?.()
      await refreshing
    },

    /** The compiled rules in force; 503 until they are loaded. */
    current(): RulesInForce {
      if (!inForce) throw rulesError('not_loaded', 503, 'the rule set is not loaded yet; retry shortly', { headers: { 'retry-after': '1' } })
      return inForce
    },

    /**
     * Validates and publishes a rule set as the next version; this process switches at once, the
     * others on the NOTIFY. Refused with every error listed; the version in force stays.
     */
    async publish(document: unknown, actor: string, requestId: string): Promise<{ row: RuleSetRow; created: boolean }> {
      const checked = validateRuleSet(document)
      if (!checked.ok) {
        throw rulesError('invalid', 400, `the rule set has ${checked.errors.length} error(s); the version in force is unchanged`, { field: checked.errors[0]!.field, errors: checked.errors })
      }
      const doc = checked.ruleSet as RuleSet & Record<string, unknown>
      const result = await repo.publish({ document: doc, contentHash: ruleSetHash(doc), publishedBy: actor, requestId })
      use(result.row)
      return result
    },

    byVersion: (version: number) => repo.byVersion(version),
    latest: () => repo.latest(),
    listVersions: () => repo.listVersions(),
  }
}

export type RulesService = ReturnType<typeof createRulesService>
