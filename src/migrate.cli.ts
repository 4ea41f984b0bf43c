#!/usr/bin/env node
import { loadConfig } from './config.js'
import { openDatabase } from './infra/db.js'
import { migrate } from './infra/migrate.js'
import { join } from 'node:path'

/** `npm run migrate`: applies pending migrations to the configured database and lists them. */
const config = loadConfig()
const database = await openDatabase({ url: config.databaseUrl, pgliteDir: join(config.dataDir, 'pgdata') })
try {
  const applied = await migrate(database)
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'up to date')
} finally {
  await database.close()
}
