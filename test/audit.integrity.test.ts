/**
 * Tampering with the audit trail, and the verifier naming each tamper. The attacker is a DBA: full
 * SQL on the database, so any trigger guarding the table can be disabled (we do, as such a DBA
 * would: ALTER TABLE ... DISABLE TRIGGER USER), but no access to the gateway's private key. Each
 * case starts from its own fresh database with real matches and a signed checkpoint.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { openDatabase, type Database } from '../src/infra/db.js'
import { gatewayKeysFromJson, generateGatewayJwk } from '../src/infra/gateway-keys.js'
import { projectPath } from '../src/infra/paths.js'
import { migrate } from '../src/infra/migrate.js'
import { createAuditCheckpointer, signCheckpoint, verifyCheckpoint } from '../src/modules/audit/audit.checkpoints.js'
import { formatAuditReport, verifyAuditChain, verifyAuditTrail, type AuditProblem } from '../src/modules/audit/audit.verify.js'
import { createAuditWriter } from '../src/modules/audit/audit.writer.js'
import { personId, personListing } from './factories.js'
import { buildTestGateway, createTestDatabase } from './helper.js'

const NOON_2026_03_02 = Date.parse('2026-03-02T04:00:00Z')
const MATCHES = 8

/** A gateway with MATCHES match entries on its chain (every other one a hit) and a checkpoint of them. */
async function trail(t: Test) {
  const gw = await buildTestGateway(t)
  gw.clock.set(NOON_2026_03_02)
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const samr = await gw.addPrincipal({ id: 'samr', kind: 'agency', scopes: ['match'], profile: { lists: ['dishonest'], fields: ['name'], scenarios: ['COMPANY_OFFICER_REG'] } })
  t.equal((await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), personListing(3)] })).json().summary.created, 2)
  await gw.app.matchSync.catchUp()
  for (let i = 0; i < MATCHES; i++) {
    const res = await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(i % 4), scenario: 'COMPANY_OFFICER_REG' })
    t.equal(res.statusCode, 200, res.body)
  }
  const writerId = gw.app.audit.writerId
  const checkpoint = await gw.app.auditCheckpoints.checkpoint()
  t.match(checkpoint, { writerId, writerSeq: MATCHES, kid: 'gw-test-1' }, 'the head is signed with the gateway key')
  const verify = () => verifyAuditTrail(gw.database, { jwks: gw.gatewayKeys.jwks })
  t.match(await verify(), { ok: true, problems: [], entries: MATCHES, checkpoints: { total: 1, valid: 1 } }, 'untouched, the trail verifies')
  return { gw, writerId, verify }
}

/** SQL as a DBA runs it: user triggers (an append-only guard, the match roll-up) switched off around it. */
async function asDba(database: Database, ...statements: string[]) {
  await database.query('ALTER TABLE audit_entries DISABLE TRIGGER USER')
  for (const sql of statements) await database.query(sql)
  await database.query('ALTER TABLE audit_entries ENABLE TRIGGER USER')
}

const kinds = (problems: AuditProblem[]) => problems.map((p) => p.kind)

t.test('an untouched trail verifies; the head is checkpointed only when it moved, and once more on close', async (t) => {
  const { gw, writerId, verify } = await trail(t)
  t.equal(await gw.app.auditCheckpoints.checkpoint(), undefined, 'the head did not move: no second checkpoint')
  const samr = await gw.addPrincipal({ id: 'samr-2', kind: 'agency', scopes: ['match'], profile: { lists: ['dishonest'], fields: ['name'], scenarios: ['COMPANY_OFFICER_REG'] } })
  t.equal((await gw.signed(samr, 'POST', '/v1/match', { idNumber: personId(1), scenario: 'COMPANY_OFFICER_REG' })).statusCode, 200)
  await gw.app.close()
  const rows = await gw.database.query<{ writer_seq: number; kid: string }>('SELECT writer_seq::int AS writer_seq, kid FROM audit_checkpoints WHERE writer_id = $1 ORDER BY id', [writerId])
  t.same(rows, [{ writer_seq: MATCHES, kid: 'gw-test-1' }, { writer_seq: MATCHES + 1, kid: 'gw-test-1' }], 'closing signed the last entry')
  const report = await verify()
  t.match(report, { ok: true, entries: MATCHES + 1, writers: 1, checkpoints: { total: 2, valid: 2 }, heads: [{ writerId, writerSeq: MATCHES + 1, checkpointSeq: MATCHES + 1 }] })
  t.match(formatAuditReport(report), /OK: every chain is intact and every checkpoint verifies/)
})

t.test('an entry whose result was edited', async (t) => {
  const { gw, writerId, verify } = await trail(t)
  await asDba(gw.database, `UPDATE audit_entries SET result = jsonb_set(result, '{summary,hits}', '0') WHERE writer_id = '${writerId}' AND writer_seq = 2`)
  const report = await verify()
  t.same(kinds(report.problems), ['changed'])
  t.match(report.problems[0], { writerId, writerSeq: 2 })
  t.match(formatAuditReport(report), new RegExp(`BROKEN: 1 problem\\(s\\)\\n  \\[changed\\] writer ${writerId}, writer_seq 2`))
})

t.test('an entry deleted in the middle', async (t) => {
  const { gw, writerId, verify } = await trail(t)
  await asDba(gw.database, `DELETE FROM audit_entries WHERE writer_id = '${writerId}' AND writer_seq = 5`)
  const report = await verify()
  t.same(kinds(report.problems), ['missing'])
  t.match(report.problems[0], { writerId, writerSeq: 5, detail: /writer_seq 5 is missing/ })
})

t.test('the tail deleted after a checkpoint: the chain alone looks whole, the checkpoint does not', async (t) => {
  const { gw, writerId, verify } = await trail(t)
  await asDba(gw.database, `DELETE FROM audit_entries WHERE writer_id = '${writerId}' AND writer_seq > 5`)
  t.match(await verifyAuditChain(gw.database), { ok: true, entries: 5 }, 'the hash chain by itself cannot see it')
  const report = await verify()
  t.same(kinds(report.problems), ['truncated'])
  t.match(report.problems[0], { writerId, writerSeq: 6, detail: `the chain ends at writer_seq 5 but checkpoint 1` })
  t.match(report.problems[0]!.detail, /entries 6–8 were deleted/)

  await asDba(gw.database, `DELETE FROM audit_entries WHERE writer_id = '${writerId}'`)
  t.match(await verify(), { ok: false, problems: [{ kind: 'truncated', writerId, writerSeq: 1 }] }, 'a whole chain deleted: its checkpoint still names it')
})

t.test('two entries that swapped writer_seq (reordered)', async (t) => {
  const { gw, writerId, verify } = await trail(t)
  // PostgreSQL checks the unique key row by row, so the swap goes through a free number.
  await asDba(gw.database,
    `UPDATE audit_entries SET writer_seq = 1000 WHERE writer_id = '${writerId}' AND writer_seq = 3`,
    `UPDATE audit_entries SET writer_seq = 3 WHERE writer_id = '${writerId}' AND writer_seq = 4`,
    `UPDATE audit_entries SET writer_seq = 4 WHERE writer_id = '${writerId}' AND writer_seq = 1000`)
  const report = await verify()
  t.same(kinds(report.problems), ['reordered'])
  t.match(report.problems[0], { writerId, writerSeq: 3 })
})

t.test('a chain recomputed after an edit verifies as a chain, but not against its checkpoint', async (t) => {
  const { gw, writerId, verify } = await trail(t)
  // The DBA cuts entries 4..8 and appends doctored ones with the same writer id: fresh, valid hashes.
  const [original] = await gw.database.query<{ principal_id: string; scenario: string; result: Record<string, unknown> }>(
    `SELECT principal_id, scenario, result FROM audit_entries WHERE writer_id = '${writerId}' AND writer_seq = 4`)
  await asDba(gw.database, `DELETE FROM audit_entries WHERE writer_id = '${writerId}' AND writer_seq >= 4`)
  const forger = createAuditWriter(gw.database, { writerId })
  for (let i = 4; i <= MATCHES; i++) {
    await forger.append([{ principalId: original!.principal_id, action: 'match', operationId: 'match.single', requestId: `forged-${i}`, scenario: original!.scenario, result: { ...original!.result, forged: true } }])
  }
  await forger.close()
  t.match(await verifyAuditChain(gw.database), { ok: true, entries: MATCHES }, 'the hash chain by itself is fooled')
  const report = await verify()
  t.same(kinds(report.problems), ['checkpoint_mismatch'])
  t.match(report.problems[0], { writerId, writerSeq: MATCHES, checkpoint: 1, kid: 'gw-test-1' })
})

t.test('forged and altered checkpoints', async (t) => {
  const { gw, writerId, verify } = await trail(t)
  // A key of the attacker's own, under the gateway key's kid, vouching for a longer chain.
  const impostor = gatewayKeysFromJson(JSON.stringify(generateGatewayJwk('gw-test-1')))
  const forged = await signCheckpoint(impostor, { writerId, writerSeq: MATCHES + 5, hash: 'f'.repeat(64), at: new Date(NOON_2026_03_02).toISOString() })
  const stranger = await signCheckpoint(gatewayKeysFromJson(JSON.stringify(generateGatewayJwk('gw-unknown'))), { writerId, writerSeq: 2, hash: 'e'.repeat(64), at: forged.at })
  const insert = 'INSERT INTO audit_checkpoints (writer_id, writer_seq, hash, at, kid, jws) VALUES ($1, $2, $3, $4, $5, $6)'
  await gw.database.query(insert, [writerId, forged.writerSeq, forged.hash, forged.at, forged.kid, forged.jws])
  await gw.database.query(insert, [writerId, 2, stranger.hash, stranger.at, stranger.kid, stranger.jws])
  // The genuine checkpoint with its payload edited: the signature no longer covers it.
  const [genuine] = await gw.database.query<{ jws: string }>('SELECT jws FROM audit_checkpoints WHERE id = 1')
  const [h, p, s] = genuine!.jws.split('.')
  const edited = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), writerSeq: 3 })).toString('base64url')
  await gw.database.query(insert, [writerId, 3, 'a'.repeat(64), forged.at, 'gw-test-1', `${h}.${edited}.${s}`])
  await gw.database.query('INSERT INTO audit_checkpoints (writer_id, writer_seq, hash, at, kid, jws) VALUES ($1, 4, $2, $3, $4, $5)', [writerId, 'b'.repeat(64), forged.at, 'gw-test-1', 'not-a-jws'])
  // A genuine checkpoint whose columns were edited: the signed payload is what counts.
  await gw.database.query(`UPDATE audit_checkpoints SET writer_seq = 7 WHERE id = 1`)

  const report = await verify()
  t.same(kinds(report.problems), ['checkpoint_altered', 'checkpoint_bad_signature', 'checkpoint_unknown_key', 'checkpoint_bad_signature', 'checkpoint_malformed'])
  t.match(report.problems, [
    { checkpoint: 1, writerSeq: MATCHES },
    { checkpoint: 2, kid: 'gw-test-1', detail: /does not verify with key gw-test-1/ },
    { checkpoint: 3, kid: 'gw-unknown', detail: /no key gw-unknown in the JWKS/ },
    { checkpoint: 4, kid: 'gw-test-1' },
    { checkpoint: 5 },
  ])
  t.notOk(kinds(report.problems).includes('truncated'), 'a forged checkpoint vouches for nothing (no truncation claimed from it)')
  t.match(report.checkpoints, { total: 5, valid: 1 })
})

t.test('rotation: a checkpoint names its kid and verifies while the retired key is in the JWKS', async (t) => {
  const oldJwk = generateGatewayJwk('gw-2025')
  const newJwk = generateGatewayJwk('gw-2026')
  const before = gatewayKeysFromJson(JSON.stringify(oldJwk))
  const after = gatewayKeysFromJson(JSON.stringify({ keys: [newJwk, oldJwk] })) // the new key signs, the old stays published
  const cp = await signCheckpoint(before, { writerId: 'w', writerSeq: 1, hash: '0'.repeat(64), at: new Date().toISOString() })
  t.match(verifyCheckpoint(cp.jws, after.jwks), { ok: true, kid: 'gw-2025', claims: { writerId: 'w', writerSeq: 1 } })
  t.match(verifyCheckpoint(cp.jws, gatewayKeysFromJson(JSON.stringify(newJwk)).jwks), { ok: false, fault: 'unknown_key', kid: 'gw-2025' }, 'dropped from the JWKS: unverifiable, and said so')
  const detached = await before.signDetached(Buffer.from('{}'), {})
  t.match(verifyCheckpoint(detached.replace('..', '.e30.'), before.jwks), { ok: false, fault: 'malformed', detail: /typ/ }, 'another JWS by the same key (a response signature) is no checkpoint')
})

/** Runs `npm run audit:verify` as the README does. */
async function runCli(env: Record<string, string>, args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'silent', ...env }
  delete childEnv.NODE_OPTIONS
  delete childEnv.NODE_V8_COVERAGE
  if (!env.DATABASE_URL) delete childEnv.DATABASE_URL
  try {
    const { stdout, stderr } = await promisify(execFile)('npm', ['run', '--silent', 'audit:verify', '--', ...args], { cwd: projectPath('.'), env: childEnv, timeout: 60_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

t.test('npm run audit:verify: exit 0 on an intact trail, 1 with the problem named, including checkpoints kept in logs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cgw-audit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const keyJson = JSON.stringify(generateGatewayJwk('gw-cli'))
  const keys = gatewayKeysFromJson(keyJson)
  // PostgreSQL: a test database the CLI reaches by URL; PGlite: a directory it opens after we close it.
  const pg = process.env.TEST_DATABASE_URL ? await createTestDatabase(t) : undefined
  const env: Record<string, string> = pg?.url
    ? { DATABASE_URL: pg.url, GATEWAY_SIGNING_KEY: keyJson, IDENTIFIER_HASH_SECRET: 'x'.repeat(32) }
    : { DATA_DIR: dir, GATEWAY_SIGNING_KEY: keyJson }
  const open = async () => {
    if (pg) return { database: pg as Database, done: async () => {} }
    const database = await openDatabase({ pgliteDir: join(dir, 'pgdata') })
    return { database, done: () => database.close() }
  }

  const logged: unknown[] = []
  {
    const { database, done } = await open()
    await migrate(database)
    const writer = createAuditWriter(database, { writerId: 'gw-cli-writer' })
    const checkpoints = createAuditCheckpointer({ database, writer, keys, intervalSeconds: 60, clock: { nowMs: () => Date.now() }, log: { info: (o) => logged.push(o), warn: () => {} } })
    for (let i = 1; i <= 6; i++) await writer.append([{ principalId: 'samr', action: 'match', operationId: 'match.single', requestId: `r${i}`, result: { i } }])
    await writer.close()
    await checkpoints.stop()
    await done()
  }
  // The shipped log line of that checkpoint, as the gateway's JSON logger writes it.
  const logFile = join(dir, 'gateway.log')
  writeFileSync(logFile, `{"level":30,"msg":"starting"}\n${JSON.stringify({ level: 30, ...(logged[0] as object), msg: 'audit checkpoint' })}\n`)

  const intact = await runCli(env)
  t.equal(intact.code, 0, intact.stderr)
  t.match(intact.stdout, /audit trail: 6 intact entries from 1 writer\(s\); 1 checkpoint\(s\), 1 with a valid signature/)
  t.match(intact.stdout, /gw-cli-writer {2}seq 6 .* checkpointed at seq 6/)

  // The DBA deletes the tail and the checkpoint row with it; the copy in the logs still shows it.
  {
    const { database, done } = await open()
    await asDba(database, "DELETE FROM audit_entries WHERE writer_seq > 4")
    await database.query('DELETE FROM audit_checkpoints')
    await done()
  }
  t.equal((await runCli(env)).code, 0, 'with its checkpoint gone too, the database alone looks intact')
  const broken = await runCli(env, ['--checkpoints', logFile])
  t.equal(broken.code, 1)
  t.match(broken.stdout, /BROKEN: 1 problem\(s\)\n {2}\[truncated\] writer gw-cli-writer, writer_seq 5, checkpoint .*gateway\.log:2: the chain ends at writer_seq 4/)

  const wrongKeys = await runCli({ ...env, GATEWAY_SIGNING_KEY: JSON.stringify(generateGatewayJwk('gw-other')) }, ['--checkpoints', logFile])
  t.equal(wrongKeys.code, 1)
  t.match(wrongKeys.stdout, /\[checkpoint_unknown_key\].*kid gw-cli/, 'a verifier without the signing key says which kid it lacks')
  const jwksFile = join(dir, 'jwks.json')
  writeFileSync(jwksFile, JSON.stringify(keys.jwks))
  const withArchive = await runCli({ ...env, GATEWAY_SIGNING_KEY: JSON.stringify(generateGatewayJwk('gw-other')) }, ['--checkpoints', logFile, '--jwks', jwksFile, '--json'])
  t.equal(withArchive.code, 1)
  t.match(JSON.parse(withArchive.stdout), { ok: false, checkpoints: { valid: 1 }, problems: [{ kind: 'truncated' }] }, '--jwks adds the retired key; --json prints the report')
})
