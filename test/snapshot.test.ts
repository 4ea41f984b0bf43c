import { createHash } from 'node:crypto'
import { gunzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { buildTestGateway } from './helper.js'
import { caseNumber, entityListing, personListing } from './factories.js'

const NOON_2026_03_02 = Date.parse('2026-03-02T04:00:00Z')

async function setup(t: Test) {
  const gw = await buildTestGateway(t)
  gw.clock.set(NOON_2026_03_02)
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['changes:read'], profile: { lists: ['dishonest', 'restricted'], fields: ['name'] } })
  const samr = await gw.addPrincipal({ id: 'samr', kind: 'agency', scopes: ['changes:read'], profile: { lists: ['dishonest'], fields: ['name'] } })
  return { gw, court, caac, samr }
}

function parsePage(body: string) {
  const lines = body.trimEnd().split('\n')
  const manifest = JSON.parse(lines.pop()!).manifest
  return { listings: lines.map((l) => JSON.parse(l) as { id: string; version: number; listKind: string }), manifest, linesText: lines.map((l) => `${l}\n`).join('') }
}

t.test('a snapshot taken while listings change, followed by the change feed from its sequence, equals the active set', async (t) => {
  const { gw, court, caac } = await setup(t)
  const first = await gw.signed(court, 'POST', '/v1/listings', { items: Array.from({ length: 30 }, (_, i) => personListing(i + 1)) })
  const ids = first.json().results.map((r: { listingId: string }) => r.listingId) as string[]

  const copy = new Map<string, { version: number }>()
  const page1 = await gw.signed(caac, 'GET', '/v1/snapshot?limit=10')
  t.equal(page1.statusCode, 200, page1.body)
  t.match(page1.headers['content-type'], /^application\/x-ndjson/)
  t.ok(page1.headers['x-gw-signature'], 'the page is signed like every answer')
  const seq = Number(page1.headers['x-snapshot-seq'])
  let page = parsePage(page1.body)
  t.equal(page.manifest.rows, 10)
  t.equal(page.manifest.seq, seq)
  t.equal(page.manifest.sha256, createHash('sha256').update(page.linesText).digest('hex'), 'the manifest hashes the lines before it')
  t.notOk('idNumber' in (page.listings[0] as unknown as { subject: object }).subject, 'projected to the agency fields')
  for (const l of page.listings) copy.set(l.id, { version: l.version })

  // While the partner is between pages: new listings, removals and a correction.
  await gw.signed(court, 'POST', '/v1/listings', { items: [...Array.from({ length: 10 }, (_, i) => personListing(100 + i)), entityListing(200, { caseNumber: caseNumber(200) })] })
  for (const id of [ids[0], ids[15], ids[29]]) await gw.signed(court, 'POST', `/v1/listings/${id}/removal`, { reason: 'performed' })
  await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(20, { amountOutstanding: 1 })] })

  let cursor = page.manifest.next as string | null
  let pages = 1
  while (cursor) {
    const res = await gw.signed(caac, 'GET', `/v1/snapshot?limit=10&cursor=${encodeURIComponent(cursor)}`)
    t.equal(res.statusCode, 200, res.body)
    t.equal(Number(res.headers['x-snapshot-seq']), seq, 'every page names the first page’s sequence')
    page = parsePage(res.body)
    for (const l of page.listings) copy.set(l.id, { version: l.version })
    cursor = page.manifest.next
    pages++
  }
  t.equal(page.manifest.done, true)
  t.ok(pages >= 4, `${pages} pages`)

  // Then the change feed from the snapshot's sequence, applied by version.
  let after = seq
  for (;;) {
    const feed = (await gw.signed(caac, 'GET', `/v1/changes?after=${after}&limit=7`)).json()
    for (const e of feed.events) {
      const known = copy.get(e.listingId)
      if (e.kind === 'removed' || e.kind === 'expired') copy.delete(e.listingId)
      else if (!known || known.version < e.version) copy.set(e.listingId, { version: e.version })
    }
    if (feed.events.length === 0) break
    after = feed.next
  }
  const active = await gw.database.query<{ id: string; version: number }>("SELECT id, version FROM listings WHERE status = 'published' ORDER BY id")
  t.same([...copy].map(([id, v]) => [id, v.version]).sort(), active.map((r) => [r.id, r.version]).sort(), 'the local copy equals the active set')
  t.equal(active.length, 30 + 11 - 3)
})

t.test('gzip on request, and bad cursors', async (t) => {
  const { gw, court, caac, samr } = await setup(t)
  await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), personListing(2), entityListing(3)] })
  const plain = await gw.signed(caac, 'GET', '/v1/snapshot?limit=1')
  const zipped = await gw.signed(caac, 'GET', '/v1/snapshot?limit=1', undefined, { headers: { 'accept-encoding': 'gzip' } })
  t.equal(zipped.headers['content-encoding'], 'gzip')
  const unzipped = gunzipSync(zipped.rawPayload).toString('utf8')
  t.same(parsePage(unzipped).listings, parsePage(plain.body).listings, 'the same page, compressed')
  t.same(parsePage((await gw.signed(samr, 'GET', '/v1/snapshot')).body).listings.map((l) => l.listKind), ['dishonest', 'dishonest'], 'only the lists in the profile')

  const cursor = parsePage(plain.body).manifest.next as string
  const [body, tag] = cursor.split('.')
  const forged = `${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), after: '00000000-0000-0000-0000-000000000000' })).toString('base64url')}.${tag}`
  for (const [who, c, status, code] of [
    [caac, forged, 400, 'snapshot.bad_cursor'],
    [caac, 'garbage', 400, 'snapshot.bad_cursor'],
    [samr, cursor, 400, 'snapshot.bad_cursor'],
  ] as const) {
    const res = await gw.signed(who, 'GET', `/v1/snapshot?cursor=${encodeURIComponent(c)}`)
    t.equal(res.statusCode, status, c)
    t.equal(res.json().code, code)
  }
  gw.clock.advance(25 * 3600)
  const stale = await gw.signed(caac, 'GET', `/v1/snapshot?cursor=${encodeURIComponent(cursor)}`)
  t.equal(stale.statusCode, 410)
  t.equal(stale.json().code, 'snapshot.cursor_expired')
})

t.test('the change feed filters by event kind and list, and long-polls', async (t) => {
  const { gw, court, caac, samr } = await setup(t)
  const pushed = await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), personListing(2), entityListing(3)] })
  await gw.signed(court, 'POST', `/v1/listings/${pushed.json().results[0].listingId}/removal`, { reason: 'performed' })
  const removed = (await gw.signed(caac, 'GET', '/v1/changes?kinds=removed')).json()
  t.same(removed.events.map((e: { kind: string }) => e.kind), ['removed'])
  const restricted = (await gw.signed(caac, 'GET', '/v1/changes?list=restricted')).json()
  t.same(restricted.events.map((e: { listing: { listKind: string } }) => e.listing.listKind), ['restricted'])
  t.same((await gw.signed(samr, 'GET', '/v1/changes?list=restricted')).json().events, [], 'a list outside the profile stays empty')
  for (const q of ['kinds=deleted', 'kinds=removed,', 'list=other', 'wait=31']) {
    const res = await gw.signed(caac, 'GET', `/v1/changes?${q}`)
    t.equal(res.statusCode, 400, q)
    t.equal(res.json().code, 'request.validation', q)
  }

  const next = (await gw.signed(caac, 'GET', '/v1/changes?limit=1000')).json().next
  let started = Date.now()
  const empty = (await gw.signed(caac, 'GET', `/v1/changes?after=${next}&wait=1`)).json()
  t.same(empty.events, [])
  t.ok(Date.now() - started >= 900, `an empty feed waited ${Date.now() - started} ms`)
  started = Date.now()
  const waiting = gw.signed(caac, 'GET', `/v1/changes?after=${next}&wait=10`)
  await new Promise((r) => setTimeout(r, 300))
  await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(4)] })
  const arrived = (await waiting).json()
  t.equal(arrived.events.length, 1, 'the waiting request answers with the new event')
  t.ok(Date.now() - started < 5000, `well before the 10 s were up (${Date.now() - started} ms)`)
})
