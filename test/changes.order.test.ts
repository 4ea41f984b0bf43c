import t from 'tap'
import { buildTestGateway } from './helper.js'
import { personListing } from './factories.js'
import { createListingsRepository, type NewEvent } from '../src/modules/listings/listings.repository.js'

// DESIGN.md "One truth": no reader may skip an event, even when transactions commit out of
// sequence order. Two connections are needed to interleave transactions, so this runs on PostgreSQL.
if (!process.env.TEST_DATABASE_URL) {
  t.plan(0, 'TEST_DATABASE_URL is not set: interleaving two transactions needs two connections (PGlite has one)')
} else {
  t.test('a polling reader never misses an event when a later transaction tries to commit first', async (t) => {
    const gw = await buildTestGateway(t)
    gw.clock.set(Date.parse('2026-03-02T04:00:00Z'))
    const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
    const pushed = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), personListing(2)] })
    const [idA, idB] = pushed.json().results.map((r: { listingId: string }) => r.listingId) as [string, string]
    const repo = createListingsRepository(gw.database.db)

    // The reader: polls "seq > cursor" like a partner following /v1/changes, and keeps what it saw.
    const seen: number[] = []
    let cursor = 0
    const poll = async () => {
      for (const e of await repo.changesAfter(cursor, 1000, null)) { seen.push(e.seq); cursor = e.seq }
    }
    await poll()
    const before = seen.length

    const event = (listingId: string): NewEvent => ({ listingId, kind: 'updated', version: 9, courtCode: '京0105', listKind: 'dishonest', listing: { id: listingId }, actor: 'test' })
    let releaseA!: () => void
    const aMayCommit = new Promise<void>((r) => { releaseA = r })
    let aAppended!: () => void
    const aHasAppended = new Promise<void>((r) => { aAppended = r })
    // Transaction A takes its sequence number first, then stays open.
    const txA = repo.inTransaction(async (tx) => {
      await repo.appendEvents(tx, [event(idA)])
      aAppended()
      await aMayCommit
    })
    await aHasAppended
    // Transaction B starts after A's append and tries to append and commit while A is still open.
    let bCommitted = false
    const txB = repo.inTransaction(async (tx) => { await repo.appendEvents(tx, [event(idB)]) }).then(() => { bCommitted = true })

    await new Promise((r) => setTimeout(r, 300))
    await poll()
    t.equal(bCommitted, false, 'B cannot commit a higher sequence number while A (lower) is open')
    t.equal(seen.length, before, 'the reader sees neither while A is open')

    releaseA()
    await txA
    await poll()
    await txB
    await poll()
    const rows = await gw.database.query<{ seq: string; listing_id: string }>('SELECT seq, listing_id FROM listing_events ORDER BY seq')
    t.same(seen, rows.map((r) => Number(r.seq)), 'the reader saw every event, in order')
    t.same(rows.slice(-2).map((r) => r.listing_id), [idA, idB], "A's event precedes B's: sequence order is commit order")
  })
}
