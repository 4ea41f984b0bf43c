import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Database } from './db.js'
import { projectPath } from './paths.js'

const MIGRATIONS_DIR = projectPath('migrations')
/** Any constant; every gateway process takes this lock so only one migrates at a time. */
const MIGRATION_LOCK = 7_210_001

export function migrationFiles(): string[] {
  return readdirSync(MIGRATIONS_DIR).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort()
}

/**
 * Applies migrations/NNNN_name.sql in order, each in its own transaction under an advisory lock,
 * recording them in schema_migrations. Safe to run from several processes at once.
 */
export async function migrate(database: Database): Promise<string[]> {
  const applied: string[] = []
  for (const file of migrationFiles()) {
    await database.runScriptInTransaction(async (exec, query) => {
      await query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
      await exec('CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())')
      const done = await query('SELECT 1 FROM schema_migrations WHERE version = $1', [file])
      if (done.length > 0) return
      await exec(readFileSync(join(MIGRATIONS_DIR, file), 'utf8'))
      await query('INSERT INTO schema_migrations (version) VALUES ($1)', [file])
      applied.push(file)
    })
  }
  return applied
}

/** The migrations on disk that the database has not applied (readiness check). */
export async function pendingMigrations(database: Database): Promise<string[]> {
  const rows = await database.query<{ version: string }>(
    "SELECT version FROM schema_migrations",
  ).catch(() => []) // no table yet: everything is pending
  const done = new Set(rows.map((r) => r.version))
  return migrationFiles().filter((f) => !done.has(f))
}
