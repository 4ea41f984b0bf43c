import { desc, eq, sql } from 'drizzle-orm'
import type { Db } from '../../infra/db.js'
import { ruleSets, type RuleSetRow } from './rules.table.js'

/** NOTIFY channel: a new rule-set version was published (payload: the version). */
export const RULES_CHANNEL = 'rules_published'

/** The rule_sets table: versions are only ever added. */
export function createRulesRepository(db: Db) {
  return {
    async latest(): Promise<RuleSetRow | undefined> {
      return (await db.select().from(ruleSets).orderBy(desc(ruleSets.version)).limit(1))[0]
    },

    async latestVersion(): Promise<number> {
      const [row] = await db.select({ v: sql<number>`coalesce(max(${ruleSets.version}), 0)::int` }).from(ruleSets)
      return Number(row?.v ?? 0)
    },

    async byVersion(version: number): Promise<RuleSetRow | undefined> {
      return (await db.select().from(ruleSets).where(eq(ruleSets.version, version)))[0]
    },

    async listVersions(): Promise<Omit<RuleSetRow, 'document'>[]> {
      return db.select({ version: ruleSets.version, contentHash: ruleSets.contentHash, publishedBy: ruleSets.publishedBy, publishedAt: ruleSets.publishedAt, requestId: ruleSets.requestId })
        .from(ruleSets).orderBy(desc(ruleSets.version))
    },

    /**
     * Publishes `document` as the next version, atomically: serialized by a transaction-scoped
     * advisory lock, and announced on commit. A document equal to the version in force (same
     * content hash) is not published again: the version in force is returned with `created: false`.
     */
    async publish(p: { document: Record<string, unknown>; contentHash: string; publishedBy: string; requestId: string | null }): Promise<{ row: RuleSetRow; created: boolean }> {
      return db.transaction(async (tx) => {
        await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext('rule_sets.publish'))`)
        const [current] = await tx.select().from(ruleSets).orderBy(desc(ruleSets.version)).limit(1)
        if (current && current.contentHash === p.contentHash) return { row: current, created: false }
        const [row] = await tx.insert(ruleSets).values({ version: (current?.version ?? 0) + 1, ...p }).returning()
        await tx.execute(sql`SELECT pg_notify(${RULES_CHANNEL}, ${String(row!.version)})`)
        return { row: row!, created: true }
      })
    },
  }
}

export type RulesRepository = ReturnType<typeof createRulesRepository>
