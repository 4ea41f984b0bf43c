import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from './config.js'
import { openDatabase, type Database } from './infra/db.js'
import { loadGatewayKeys, type GatewayKeys } from './infra/gateway-keys.js'
import { migrate } from './infra/migrate.js'

/** Opens the configured database (PostgreSQL, or PGlite under DATA_DIR) and applies migrations. */
export async function openConfiguredDatabase(config: Config): Promise<Database> {
  const database = await openDatabase({ url: config.databaseUrl, pgliteDir: join(config.dataDir, 'pgdata'), poolSize: config.databasePoolSize })
  await migrate(database)
  return database
}

export function configuredGatewayKeys(config: Config): GatewayKeys {
  return loadGatewayKeys({
    keyText: config.signingKey,
    keyFile: config.signingKeyFile,
    // Only the embedded demo may generate its own key.
    demoKeyFile: config.databaseUrl ? undefined : join(config.dataDir, 'gateway-key.json'),
  })
}

/** The identifier-hash secret from config; the embedded demo generates one once under DATA_DIR. */
export function configuredIdentifierHashSecret(config: Config): string {
  if (config.identifierHashSecret) return config.identifierHashSecret
  const file = join(config.dataDir, 'identifier-hash-secret')
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true })
    writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600 })
  }
  return readFileSync(file, 'utf8').trim()
}
