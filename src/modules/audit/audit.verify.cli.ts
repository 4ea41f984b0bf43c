#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../../config.js'
import { configuredGatewayKeys, openConfiguredDatabase } from '../../runtime.js'
import { formatAuditReport, verifyAuditTrail } from './audit.verify.js'

const USAGE = `usage: npm run audit:verify [-- --writer WRITER_ID] [--jwks FILE|URL ...] [--checkpoints FILE] [--json]

Checks the audit trail on the configured database (DATABASE_URL, or the embedded one under
DATA_DIR): every writer's hash chain (edited, deleted, unlinked or reordered entries), every signed
checkpoint in audit_checkpoints (its signature by kid against the gateway's keys, and that the chain
still has that hash at that writer_seq), and that no chain ends before its latest checkpoint
(entries cut from the end). Lists every problem found.

  --jwks FILE|URL    more public keys: a JWKS file, or a URL such as https://GATEWAY/.well-known/jwks.json;
                     repeatable. The configured gateway key's JWKS is always used when it can be loaded;
                     keep retired public keys after a rotation and pass them here.
  --checkpoints FILE checkpoints kept outside the database: one JWS per line, or the gateway's JSON log
                     lines (their auditCheckpoint.jws); other lines are skipped.

Exit 0: intact; 1: a problem found; 2: error.`

type Jwks = { keys: Record<string, unknown>[] }

async function readJwks(source: string): Promise<Jwks> {
  const text = /^https?:\/\//.test(source) ? await (await fetch(source)).text() : readFileSync(source, 'utf8')
  const parsed = JSON.parse(text) as Partial<Jwks> & Record<string, unknown>
  // A JWKS, or a single JWK; private parts are ignored (only the public members are used to verify).
  return { keys: Array.isArray(parsed.keys) ? parsed.keys : [parsed] }
}

function readCheckpointFile(file: string): { source: string; jws: string }[] {
  const out: { source: string; jws: string }[] = []
  readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    const text = line.trim()
    let jws: unknown = text
    if (text.startsWith('{')) {
      try { jws = (JSON.parse(text) as { auditCheckpoint?: { jws?: unknown } }).auditCheckpoint?.jws } catch { jws = undefined }
    }
    if (typeof jws === 'string' && /^[\w-]+\.[\w-]+\.[\w-]+$/.test(jws)) out.push({ source: `${file}:${i + 1}`, jws })
  })
  return out
}

async function main(argv: string[]): Promise<number> {
  let values: { writer?: string; json?: boolean; help?: boolean; jwks?: string[]; checkpoints?: string }
  try {
    ({ values } = parseArgs({ args: argv, options: {
      writer: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      jwks: { type: 'string', multiple: true }, checkpoints: { type: 'string' },
    } }))
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  if (values.help) { console.log(USAGE); return 0 }
  const config = loadConfig()
  const jwks: Jwks = { keys: [] }
  try {
    jwks.keys.push(...configuredGatewayKeys(config).jwks.keys)
  } catch (err) {
    // Verifying needs only public keys: without the configured key, --jwks must supply them.
    if (!values.jwks?.length) throw err
  }
  for (const source of values.jwks ?? []) jwks.keys.push(...(await readJwks(source)).keys)
  const externalCheckpoints = values.checkpoints ? readCheckpointFile(values.checkpoints) : undefined
  const database = await openConfiguredDatabase(config)
  try {
    const report = await verifyAuditTrail(database, { writerId: values.writer, jwks, externalCheckpoints })
    console.log(values.json ? JSON.stringify(report, null, 2) : formatAuditReport(report))
    return report.ok ? 0 : 1
  } finally {
    await database.close()
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: Error) => {
  console.error(err instanceof ConfigError ? err.message : `error: ${err.message}`)
  process.exitCode = 2
})
