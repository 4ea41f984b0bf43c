#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../../config.js'
import { openConfiguredDatabase } from '../../runtime.js'
import { verifyAuditChain } from './audit.verify.js'

const USAGE = `usage: npm run audit:verify [-- --writer WRITER_ID] [--json]

Walks every writer's hash chain in audit_entries on the configured database (DATABASE_URL, or the
embedded one under DATA_DIR) and reports the first broken link. Exit 0: intact; 1: broken; 2: error.`

async function main(argv: string[]): Promise<number> {
  let values: { writer?: string; json?: boolean; help?: boolean }
  try {
    ({ values } = parseArgs({ args: argv, options: { writer: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }))
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  if (values.help) { console.log(USAGE); return 0 }
  const database = await openConfiguredDatabase(loadConfig())
  try {
    const result = await verifyAuditChain(database, { writerId: values.writer })
    if (values.json) console.log(JSON.stringify(result, null, 2))
    else if (result.ok) {
      console.log(`audit chain intact: ${result.entries} entries from ${result.writers} writer(s)`)
      for (const h of result.heads) console.log(`  ${h.writerId}  seq ${h.writerSeq}  ${h.hash}`)
    } else {
      console.log(`audit chain BROKEN at writer ${result.writerId}, writer_seq ${result.writerSeq} (row id ${result.id}): ${result.reason} — ${result.detail}`)
    }
    return result.ok ? 0 : 1
  } finally {
    await database.close()
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: Error) => {
  console.error(err instanceof ConfigError ? err.message : `error: ${err.message}`)
  process.exitCode = 2
})
