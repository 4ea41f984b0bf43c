import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { openDatabase, type Database } from '../src/infra/db.js'
import { AppError } from '../src/infra/errors.js'
import { canonicalEntry, canonicalEntryTail, canonicalJson, GENESIS_HASH, prepareEntry, type AuditEntryInput, newReceiptBase, receiptIdAt, splitReceiptId } from '../src/modules/audit/audit.models.js'
import { createAuditRepository } from '../src/modules/audit/audit.repository.js'
import { auditRoutes, receiptsRoutes } from '../src/modules/audit/audit.routes.js'
import { verifyAuditChain } from '../src/modules/audit/audit.verify.js'
import { createAuditWriter, type AuditFlush } from '../src/modules/audit/audit.writer.js'
import { ADMIN_SCOPES, buildTestGateway, createTestDatabase } from './helper.js'

function entry(i: number, extra: Partial<AuditEntryInput> = {}): AuditEntryInput {
  return {
    principalId: 'samr', action: 'match', operationId: 'match.single', requestId: `req-${i}`,
    subjectHash: `h${i.toString(16).padStart(8, '0')}`, scenario: 'COMPANY_OFFICER_REG', receiptId: randomUUID(),
    result: { matched: i % 3 === 0, decision: i % 3 === 0 ? 'review' : 'allow', listingIds: i % 3 === 0 ? [randomUUID()] : [], grade: null, nested: { z: 1, a: [1.5, 'x', true] } },
    ...extra,
  }
}

async function seqs(database: Database, writerId: string) {
  return (await database.query<{ seq: number }>('SELECT writer_seq::int AS seq FROM audit_entries WHERE writer_id = $1 ORDER BY writer_seq', [writerId])).map((r) => r.seq)
}

/** Another connection to the same database where there is one (PostgreSQL); PGlite has a single one. */
async function observer(t: Test, database: Database & { url?: string }): Promise<Database> {
  if (!database.url) return database
  const other = await openDatabase({ url: database.url, poolSize: 2 })
  t.teardown(() => other.close())
  return other
}

t.test('canonical JSON sorts keys at every depth; an appended entry encodes to exactly what the verifier recomputes', async (t) => {
  t.equal(canonicalJson({ b: [{ y: 1, x: null }], a: 'é', c: undefined, d: new Date(0) }), '{"a":"é","b":[{"x":null,"y":1}],"d":"1970-01-01T00:00:00.000Z"}')
  t.throws(() => canonicalJson({ n: Number.NaN }))
  const input = entry(7, { receiptId: 'AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE', scenario: null })
  const at = '2025-01-02T03:04:05.678Z'
  t.equal(prepareEntry(input, at).head + canonicalEntryTail(JSON.stringify('w"1'), 42), canonicalEntry({
    writerId: 'w"1', writerSeq: 42, at, principalId: input.principalId, action: input.action, operationId: input.operationId, requestId: input.requestId,
    subjectHash: input.subjectHash!, scenario: null, receiptId: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', resultJson: canonicalJson(input.result),
  }))
})

t.test('200 simultaneous callers share a few INSERTs, and each resolves only once its row is committed', async (t) => {
  const database = await createTestDatabase(t)
  const other = await observer(t, database)
  const flushes: AuditFlush[] = []
  const writer = createAuditWriter(database, { onFlush: (f) => flushes.push(f) })
  t.teardown(() => writer.close())
  const invisible: number[] = []
  // Callers arrive over ~20 ms, so batches form while an INSERT is in flight.
  await Promise.all(Array.from({ length: 200 }, (_, i) => new Promise<void>((resolve, reject) => {
    setTimeout(() => {
      writer.append([entry(i)]).then(async () => {
        const rows = await other.query('SELECT 1 FROM audit_entries WHERE request_id = $1', [`req-${i}`])
        if (rows.length !== 1) invisible.push(i)
      }).then(resolve, reject)
    }, Math.floor(Math.random() * 20))
  })))
  t.same(invisible, [], 'every row is visible from another connection when its promise resolves')
  t.ok(flushes.every((f) => f.ok))
  t.equal(flushes.reduce((n, f) => n + f.entries, 0), 200)
  t.ok(flushes.length < 50, `200 callers in ${flushes.length} INSERTs`)
  t.equal(writer.stats.flushes, flushes.length)
  t.same(await seqs(database, writer.writerId), Array.from({ length: 200 }, (_, i) => i + 1), 'writer_seq 1..200 without gaps')
  const [first] = await database.query<{ prev_hash: string }>('SELECT prev_hash FROM audit_entries WHERE writer_id = $1 AND writer_seq = 1', [writer.writerId])
  t.equal(first!.prev_hash, GENESIS_HASH)
  const verified = await verifyAuditChain(database, { pageSize: 37 })
  t.same(verified, { ok: true, entries: 200, writers: 1, heads: [{ writerId: writer.writerId, writerSeq: 200, hash: verified.ok ? verified.heads[0]!.hash : '' }] })
})

t.test('one append of many entries (a batch match) goes in one INSERT; maxBatch splits between appends', async (t) => {
  const database = await createTestDatabase(t)
  const flushes: AuditFlush[] = []
  const writer = createAuditWriter(database, { maxBatch: 10, onFlush: (f) => flushes.push(f) })
  await Promise.all([writer.append(Array.from({ length: 25 }, (_, i) => entry(i))), writer.append([entry(100)]), writer.append([entry(101)])])
  t.same(flushes.map((f) => f.entries), [25, 2], 'an append is never split; later appends form the next batch')
  await writer.append([])
  await writer.close()
  t.same((await verifyAuditChain(database)).ok, true)
  await t.rejects(writer.append([entry(1)]), { code: 'service.unavailable', status: 503 }, 'a closed writer refuses')
})

async function tamperFixture(t: Test) {
  const database = await createTestDatabase(t)
  const writers = await Promise.all(['a-edit', 'b-delete', 'c-swap', 'd-at', 'e-first', 'f-unlink'].map(async (writerId) => {
    const writer = createAuditWriter(database, { writerId })
    await Promise.all(Array.from({ length: 10 }, (_, i) => writer.append([entry(i)])))
    await writer.close()
    return writerId
  }))
  t.match(await verifyAuditChain(database), { ok: true, entries: 60, writers: 6 })
  return { database, writers }
}

t.test('the verifier names the first broken link: an edit, a deletion, a swap', async (t) => {
  const { database } = await tamperFixture(t)
  const check = (writerId: string) => verifyAuditChain(database, { writerId, pageSize: 3 })

  await database.query(`UPDATE audit_entries SET result = jsonb_set(result, '{decision}', '"allow"') WHERE writer_id = 'a-edit' AND writer_seq = 4`)
  t.match(await check('a-edit'), { ok: false, writerId: 'a-edit', writerSeq: 4, reason: 'changed', entries: 3 }, 'an edited result')

  await database.query(`DELETE FROM audit_entries WHERE writer_id = 'b-delete' AND writer_seq = 5`)
  t.match(await check('b-delete'), { ok: false, writerId: 'b-delete', writerSeq: 5, reason: 'missing' }, 'a deleted row')

  // PostgreSQL checks a unique key row by row, so the swap goes through a free number.
  await database.query(`UPDATE audit_entries SET writer_seq = 1000 WHERE writer_id = 'c-swap' AND writer_seq = 6`)
  await database.query(`UPDATE audit_entries SET writer_seq = 6 WHERE writer_id = 'c-swap' AND writer_seq = 7`)
  await database.query(`UPDATE audit_entries SET writer_seq = 7 WHERE writer_id = 'c-swap' AND writer_seq = 1000`)
  t.match(await check('c-swap'), { ok: false, writerId: 'c-swap', writerSeq: 6, reason: 'reordered' }, 'two rows swapped')

  await database.query(`UPDATE audit_entries SET at = at + interval '1 microsecond' WHERE writer_id = 'd-at' AND writer_seq = 9`)
  t.match(await check('d-at'), { ok: false, writerSeq: 9, reason: 'changed' }, 'a time moved by a microsecond')

  await database.query(`DELETE FROM audit_entries WHERE writer_id = 'e-first' AND writer_seq = 1`)
  t.match(await check('e-first'), { ok: false, writerSeq: 1, reason: 'missing' }, 'the first row deleted')

  await database.query(`UPDATE audit_entries SET prev_hash = repeat('1', 64) WHERE writer_id = 'f-unlink' AND writer_seq = 3`)
  t.match(await check('f-unlink'), { ok: false, writerSeq: 3, reason: 'changed' }, 'a rewritten prev_hash (it is hashed too)')

  t.match(await verifyAuditChain(database), { ok: false, writerId: 'a-edit', writerSeq: 4 }, 'the whole walk stops at the first break')
})

t.test('a restart with the same writer id continues the chain', async (t) => {
  const database = await createTestDatabase(t)
  const first = createAuditWriter(database, { writerId: 'gw-1' })
  await Promise.all(Array.from({ length: 5 }, (_, i) => first.append([entry(i)])))
  await first.close()
  const second = createAuditWriter(database, { writerId: 'gw-1' })
  await second.append([entry(5), entry(6)])
  await second.close()
  t.same(await seqs(database, 'gw-1'), [1, 2, 3, 4, 5, 6, 7])
  const rows = await database.query<{ writer_seq: number; prev_hash: string; hash: string }>(
    "SELECT writer_seq::int AS writer_seq, prev_hash, hash FROM audit_entries WHERE writer_id = 'gw-1' AND writer_seq IN (5, 6) ORDER BY writer_seq")
  t.equal(rows[1]!.prev_hash, rows[0]!.hash, 'seq 6 links to seq 5 written before the restart')
  t.match(await verifyAuditChain(database), { ok: true, entries: 7, writers: 1 })
})

t.test('two live writers with one id (a misconfiguration) still keep one consistent chain', async (t) => {
  const database = await createTestDatabase(t)
  const a = createAuditWriter(database, { writerId: 'shared' })
  const b = createAuditWriter(database, { writerId: 'shared' })
  await a.append([entry(1)])
  await b.append([entry(2)]) // b reads the head a left
  await a.append([entry(3)]) // a's head is stale: the seq conflict makes it re-read and retry once
  t.same(await seqs(database, 'shared'), [1, 2, 3])
  t.match(await verifyAuditChain(database), { ok: true, entries: 3 })
  await Promise.all([a.close(), b.close()])
})

t.test('a database failure rejects every waiter of the batch with 503 and leaves the chain whole', async (t) => {
  const database = await createTestDatabase(t)
  const flushes: AuditFlush[] = []
  const writer = createAuditWriter(database, { writerId: 'gw-fail', onFlush: (f) => flushes.push(f) })
  t.teardown(() => writer.close())
  await Promise.all(Array.from({ length: 5 }, (_, i) => writer.append([entry(i)])))

  await database.query('ALTER TABLE audit_entries RENAME TO audit_entries_away')
  const failed = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => writer.append([entry(10 + i)])))
  await database.query('ALTER TABLE audit_entries_away RENAME TO audit_entries')
  t.equal(failed.length, 20)
  for (const r of failed) {
    t.equal(r.status, 'rejected')
    const err = (r as PromiseRejectedResult).reason as AppError
    t.ok(err instanceof AppError)
    t.equal(err.code, 'service.unavailable')
    t.equal(err.status, 503)
    t.equal(err.extra.headers?.['retry-after'], '1')
  }
  t.ok(flushes.some((f) => !f.ok))

  await Promise.all(Array.from({ length: 5 }, (_, i) => writer.append([entry(100 + i)])))
  t.same(await seqs(database, 'gw-fail'), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'the failed batch consumed no sequence numbers')
  t.match(await verifyAuditChain(database), { ok: true, entries: 10 })
})

t.test('a closed database connection gives 503, not a hang or a crash', async (t) => {
  const database = await createTestDatabase(t)
  // A second handle on the same database that can be closed under the writer (PostgreSQL only).
  const handle = database.url ? await openDatabase({ url: database.url, poolSize: 1 }) : undefined
  if (!handle) { t.pass('PGlite has one connection, owned by the test database'); return }
  const writer = createAuditWriter(handle, { writerId: 'gw-closed' })
  await writer.append([entry(1)])
  await handle.close()
  await t.rejects(writer.append([entry(2)]), { code: 'service.unavailable', status: 503 })
  const resumed = createAuditWriter(database, { writerId: 'gw-closed' })
  await resumed.append([entry(3)])
  t.same(await seqs(database, 'gw-closed'), [1, 2])
  t.match(await verifyAuditChain(database), { ok: true, entries: 2 })
  await resumed.close()
})

t.test('an entry the database refuses fails alone; the rest of its batch commits', async (t) => {
  const database = await createTestDatabase(t)
  const writer = createAuditWriter(database)
  t.teardown(() => writer.close())
  const taken = randomUUID()
  await writer.append([entry(0, { receiptId: taken })])
  const settled = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => writer.append([entry(i + 1, i === 17 ? { receiptId: taken } : {})])))
  t.same(settled.map((s) => s.status).filter((s) => s === 'rejected').length, 1)
  t.match((settled[17] as PromiseRejectedResult).reason, { code: 'audit.entry_rejected', status: 500 })
  t.same(await seqs(database, writer.writerId), Array.from({ length: 30 }, (_, i) => i + 1))
  t.match(await verifyAuditChain(database), { ok: true, entries: 30 })

  await t.rejects(writer.append([entry(99, { subjectHash: 'a\u0000b' })]), { code: 'audit.invalid_entry' }, 'NUL is refused before it can poison a batch')
  await t.rejects(writer.append([entry(99, { result: { s: '\ud800' } })]), { code: 'audit.invalid_entry' }, 'so is a lone surrogate')
  await t.rejects(writer.append([entry(99, { receiptId: 'not-a-uuid' })]), { code: 'audit.invalid_entry' })
  await writer.append([entry(99, { result: { s: 'a\\u0000 is text here', emoji: '😀', n: 1e21, f: 1e-7, big: 12345678901234567890 } })])
  t.match(await verifyAuditChain(database), { ok: true, entries: 31 }, 'escapes, astral characters and odd numbers survive jsonb unchanged')
})

t.test('receipts and the audit listing', async (t) => {
  const gw = await buildTestGateway(t)
  const repository = createAuditRepository(gw.database.db)
  // Until src/app.ts mounts the audit routes, mount them here as app.ts mounts its signed routes.
  if (!gw.app.hasRoute({ method: 'GET', url: '/v1/audit' })) {
    await gw.app.register(async (signed) => {
      signed.addHook('onRequest', signed.gw1Authenticate)
      signed.addHook('preValidation', signed.gw1Authorize)
      await signed.register(receiptsRoutes, { prefix: '/v1/receipts', repository })
      await signed.register(auditRoutes, { prefix: '/v1/audit', repository })
    })
  }
  const samr = await gw.addPrincipal({ id: 'samr', kind: 'agency', scopes: ['match'] })
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['match'] })
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const admin = await gw.addPrincipal({ id: 'admin-1', kind: 'admin', scopes: ADMIN_SCOPES })
  const writer = createAuditWriter(gw.database)
  t.teardown(() => writer.close())
  // Receipts as the match service makes them: the entry's id, item 0 of result.items.
  const mine = newReceiptBase()
  const theirs = newReceiptBase()
  const items = (decision: string) => ({ summary: { subjects: 1 }, items: [{ subjectHash: 'h1', matched: false, decision }], nested: { z: 1, a: [1.5, 'x', true] } })
  await Promise.all([
    writer.append([entry(1, { receiptId: mine, result: items('allow') })]),
    writer.append([entry(2, { principalId: 'caac', receiptId: theirs, result: items('review') })]),
    writer.append([entry(3, { principalId: 'caac', action: 'listing.read', operationId: 'listings.get', receiptId: null, subjectHash: null, scenario: null })]),
    writer.append([entry(4), entry(5)]),
  ])

  const own = await gw.signed(samr, 'GET', `/v1/receipts/${mine}`)
  t.equal(own.statusCode, 200)
  t.match(own.json(), { receiptId: mine, principalId: 'samr', requestId: 'req-1', action: 'match', scenario: 'COMPANY_OFFICER_REG', result: { nested: { a: [1.5, 'x', true] } }, item: { index: 0, decision: 'allow', receiptId: mine } })
  t.ok(own.headers['x-gw-signature'], 'the answer is signed like every signed response')
  t.equal((await gw.signed(samr, 'GET', `/v1/receipts/${mine.toUpperCase()}`)).statusCode, 200, 'a receipt id in capitals is the same receipt')

  const other = await gw.signed(samr, 'GET', `/v1/receipts/${theirs}`)
  const unknown = await gw.signed(samr, 'GET', `/v1/receipts/${randomUUID()}`)
  t.equal(other.statusCode, 404)
  t.equal(other.json().code, 'audit.receipt_not_found')
  t.same({ ...other.json(), instance: null }, { ...unknown.json(), instance: null }, 'another agency’s receipt looks exactly like no receipt')
  t.equal((await gw.signed(caac, 'GET', `/v1/receipts/${theirs}`)).statusCode, 200)

  t.equal((await gw.signed(admin, 'GET', `/v1/receipts/${theirs}`)).json().principalId, 'caac', 'audit:read reads any receipt')
  const byCourt = await gw.signed(court, 'GET', `/v1/receipts/${mine}`)
  t.equal(byCourt.statusCode, 403)
  t.equal(byCourt.json().code, 'auth.insufficient_scope')
  t.equal((await gw.signed(samr, 'GET', '/v1/receipts/not-a-uuid')).statusCode, 400)

  const page1 = await gw.signed(admin, 'GET', '/v1/audit?limit=2')
  t.equal(page1.statusCode, 200)
  t.equal(page1.json().items.length, 2)
  const page2 = await gw.signed(admin, 'GET', `/v1/audit?after=${page1.json().next}&limit=10`)
  t.equal(page2.json().items.length, 4, 'the five entries written and the court’s refused call')
  const all = [...page1.json().items, ...page2.json().items] as { id: number; requestId: string; action: string; principalId: string; hash: string; prevHash: string }[]
  t.same(all.map((i) => i.id), [...all.map((i) => i.id)].sort((x, y) => x - y), 'in id order')
  t.same(all.filter((i) => i.action !== 'auth.refused').map((i) => i.requestId).sort(), ['req-1', 'req-2', 'req-3', 'req-4', 'req-5'])
  t.same(all.filter((i) => i.action === 'auth.refused').map((i) => i.principalId), ['court-bj-0105'], 'the 403 is audited with the court that tried')
  const end = await gw.signed(admin, 'GET', `/v1/audit?after=${page2.json().next}`)
  t.same(end.json(), { items: [], next: page2.json().next }, 'past the end: nothing, same cursor')
  const caacOnly = await gw.signed(admin, 'GET', '/v1/audit?principal=caac')
  t.same(caacOnly.json().items.map((i: { requestId: string }) => i.requestId).sort(), ['req-2', 'req-3'])
  t.equal((await gw.signed(samr, 'GET', '/v1/audit')).statusCode, 403, 'agencies cannot list the trail')
  t.equal((await gw.signed(admin, 'GET', '/v1/audit?limit=0')).statusCode, 400)

  const doc = (await gw.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { operationId?: string }>> }
  t.equal(doc.paths['/v1/receipts/{receiptId}']?.get?.operationId, 'audit.receipt')
  t.equal(doc.paths['/v1/audit']?.get?.operationId, 'audit.list')
})

t.test('receipt ids: an entry id with the item index in its low 14 bits', async (t) => {
  const base = newReceiptBase()
  t.match(base, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'still a v4 uuid')
  t.equal(Number.parseInt(base.slice(-4), 16) & 0x3fff, 0, 'item 0 is the entry itself')
  for (const i of [0, 1, 4242, 9_999, 16_383]) {
    const id = receiptIdAt(base, i)
    t.same(splitReceiptId(id.toUpperCase()), { base, index: i })
  }
  t.throws(() => receiptIdAt(base, 16_384))
  t.not(newReceiptBase(), base)
})
