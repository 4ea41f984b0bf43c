import t from 'tap'
import type { ListKind, MatchRole } from '../src/modules/listings/listings.models.js'
import { fnv1a64, MatchIndex, type IndexKey, type IndexListing, type MatchHit, type MatchIndexOptions, type MatchKeyType } from '../src/modules/matching/matching.index.js'

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  const uuid = () => {
    const hex = Array.from({ length: 32 }, () => int(16).toString(16)).join('')
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`
  }
  return { next, int, pick, uuid }
}

/** Index-shaped test keys (not valid check digits: the index only sees strings). */
const person = (i: number) => `110105${19500101 + (i % 9000)}${String(i % 1000).padStart(3, '0')}${i % 10}`
const idKey = (i: number): IndexKey => ({ type: 'idNumber', key: `${String(i).padStart(17, '0')}X`, role: 'debtor' })
const creditKey = (i: number): IndexKey => ({ type: 'creditCode', key: `91${String(i).padStart(15, '0')}A`, role: 'debtor' })
const orgKey = (i: number): IndexKey => ({ type: 'orgCode', key: `org:${String(i).padStart(8, '0')}X`, role: 'debtor' })
const uuidOf = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`
const sortHits = (hits: MatchHit[]) => hits.map((h) => `${h.listingId}|${h.role}|${h.listKind}|${h.version}`).sort()

const A = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'
const B = 'b1ffcd00-ad1c-4f09-8c7e-7cc0ce491b22'
const C = 'c2000000-0000-4000-9000-000000000003'
const ID1 = '11010519491231002X'
const ID2 = '440305198001010011'

t.test('fnv1a64 matches the 64-bit FNV-1a reference', async (t) => {
  // Bytes: code units below 256 as one byte (Latin-1), others as two, low then high.
  const ref = (s: string) => {
    let h = 0xcbf29ce484222325n
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      for (const b of c < 256 ? [c] : [c & 255, c >>> 8]) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn
    }
    return h
  }
  const r = prng(7)
  const samples = ['', 'a', 'foobar', `idNumber:${ID1}`, 'orgCode:org:12345678X', 'é', '张三', '\u{1f600}x', ...Array.from({ length: 200 }, () => Array.from({ length: r.int(40) }, () => String.fromCharCode(32 + r.int(95))).join(''))]
  for (const s of samples) {
    const { hi, lo } = fnv1a64(s)
    t.equal((BigInt(hi) << 32n) | BigInt(lo), ref(s), JSON.stringify(s))
  }
  t.same(fnv1a64('foobar'), { hi: 0x85944171, lo: 0xf73967e8 }, 'published test vector')
})

t.test('upsert, lookup, has, get, remove', async (t) => {
  const ix = new MatchIndex()
  t.same(ix.lookup('idNumber', ID1), [], 'empty index')
  t.equal(ix.upsert({ id: A, listKind: 'dishonest', version: 1, keys: [{ type: 'idNumber', key: ID1, role: 'debtor' }] }), true)
  t.same(ix.lookup('idNumber', ID1), [{ listingId: A, listKind: 'dishonest', role: 'debtor', version: 1 }])
  t.equal(ix.has('idNumber', ID1), true)
  t.equal(ix.has('idNumber', ID2), false)
  t.same(ix.get(A), { listKind: 'dishonest', version: 1 })
  t.equal(ix.size, 1)
  t.equal(ix.keyCount, 1)
  t.equal(ix.entryCount, 1)
  t.same(ix.lookup('idNumber', ID2), [], 'another identifier')
  t.same(ix.lookup('creditCode', ID1), [], 'the type is part of the key: the same 18 characters as a credit code do not match')

  t.equal(ix.remove(A), true, 'removed')
  t.same(ix.lookup('idNumber', ID1), [], 'a removed listing stops matching at once')
  t.equal(ix.has('idNumber', ID1), false)
  t.equal(ix.get(A), undefined)
  t.equal(ix.size, 0)
  t.equal(ix.keyCount, 0)
  t.equal(ix.entryCount, 0)
  t.equal(ix.remove(A), false, 'removing twice is a no-op')
  t.equal(ix.remove(B), false, 'removing an unknown id is a no-op')

  ix.upsert({ id: B, listKind: 'restricted', version: 4, keys: [] })
  t.equal(ix.size, 1, 'a listing without keys counts, and matches nothing')
  t.equal(ix.keyCount, 0)
  t.ok(ix.memoryBytes() > 0)
  ix.clear()
  t.equal(ix.size, 0)
  t.equal(ix.get(B), undefined, 'clear() forgets everything')
  t.throws(() => ix.lookup('passport' as MatchKeyType, ID1), TypeError, 'unknown key type')
})

t.test('several listings per identifier, and roles', async (t) => {
  const ix = new MatchIndex()
  // The person is debtor in case A, legal representative of the entity listed in B, and a
  // restricted person of the entity restricted in C.
  ix.upsert({ id: A, listKind: 'dishonest', version: 1, keys: [{ type: 'idNumber', key: ID1, role: 'debtor' }] })
  ix.upsert({ id: B, listKind: 'dishonest', version: 2, keys: [creditKey(1), orgKey(1), { type: 'idNumber', key: ID1, role: 'legalRepresentative' }] })
  ix.upsert({ id: C, listKind: 'restricted', version: 3, keys: [creditKey(2), { type: 'idNumber', key: ID1, role: 'restrictedPerson' }, { type: 'idNumber', key: ID2, role: 'legalRepresentative' }] })
  t.same(sortHits(ix.lookup('idNumber', ID1)), [`${A}|debtor|dishonest|1`, `${B}|legalRepresentative|dishonest|2`, `${C}|restrictedPerson|restricted|3`])
  t.same(sortHits(ix.lookup('creditCode', creditKey(1).key)), [`${B}|debtor|dishonest|2`])
  t.same(sortHits(ix.lookup('orgCode', orgKey(1).key)), [`${B}|debtor|dishonest|2`])
  t.same(sortHits(ix.lookup('idNumber', ID2)), [`${C}|legalRepresentative|restricted|3`])
  t.equal(ix.keyCount, 5)
  t.equal(ix.entryCount, 7)

  ix.remove(B)
  t.same(sortHits(ix.lookup('idNumber', ID1)), [`${A}|debtor|dishonest|1`, `${C}|restrictedPerson|restricted|3`], "removing B leaves the person's other listings")
  t.same(ix.lookup('creditCode', creditKey(1).key), [])
  t.equal(ix.keyCount, 3)

  // One listing, one person in two roles: two hits; the same (key, role) twice: one.
  ix.upsert({ id: B, listKind: 'dishonest', version: 5, keys: [
    { type: 'idNumber', key: ID2, role: 'legalRepresentative' }, { type: 'idNumber', key: ID2, role: 'restrictedPerson' }, { type: 'idNumber', key: ID2, role: 'restrictedPerson' },
  ] })
  t.same(sortHits(ix.lookup('idNumber', ID2)), [`${B}|legalRepresentative|dishonest|5`, `${B}|restrictedPerson|dishonest|5`, `${C}|legalRepresentative|restricted|3`])
  t.equal(ix.entryCount, 2 + 2 + 2, 'A: 1 + C: 3 + B: 2 (duplicate dropped)')
})

t.test('an upsert replaces the listing and its keys', async (t) => {
  const ix = new MatchIndex()
  ix.upsert({ id: A, listKind: 'dishonest', version: 1, keys: [{ type: 'idNumber', key: ID1, role: 'debtor' }, orgKey(9)] })
  t.equal(ix.upsert({ id: A.toUpperCase(), listKind: 'restricted', version: 2, keys: [{ type: 'idNumber', key: ID2, role: 'debtor' }] }), true)
  t.same(ix.lookup('idNumber', ID1), [], 'the old key stops matching')
  t.same(ix.lookup('orgCode', orgKey(9).key), [])
  t.same(ix.lookup('idNumber', ID2), [{ listingId: A, listKind: 'restricted', role: 'debtor', version: 2 }], 'the new key, kind and version')
  t.equal(ix.size, 1)
  t.equal(ix.keyCount, 1)
  t.equal(ix.entryCount, 1)
  t.equal(ix.upsert({ id: A, listKind: 'restricted', version: 2, keys: [{ type: 'idNumber', key: ID2, role: 'debtor' }] }), true, 'the same version again is applied (idempotent)')
  t.equal(ix.entryCount, 1)
})

t.test('versions: stale events are ignored, removals are remembered', async (t) => {
  const ix = new MatchIndex()
  const v = (version: number, key = ID1): IndexListing => ({ id: A, listKind: 'dishonest', version, keys: [{ type: 'idNumber', key, role: 'debtor' }] })
  ix.upsert(v(3))
  t.equal(ix.upsert(v(2, ID2)), false, 'an older upsert is ignored')
  t.same(ix.lookup('idNumber', ID2), [])
  t.equal(ix.lookup('idNumber', ID1)[0]?.version, 3)
  t.equal(ix.remove(A, 2), false, 'a removal older than the listing held is ignored')
  t.equal(ix.lookup('idNumber', ID1).length, 1)
  t.equal(ix.remove(A, 4), true)
  t.same(ix.lookup('idNumber', ID1), [])
  t.equal(ix.upsert(v(3)), false, 'the upsert before the removal, re-applied, does not bring the listing back')
  t.equal(ix.upsert(v(4)), false, 'nor one with the removal version')
  t.same(ix.lookup('idNumber', ID1), [])
  t.equal(ix.size, 0)
  t.equal(ix.upsert(v(5, ID2)), true, 'a newer version re-lists it')
  t.same(ix.lookup('idNumber', ID2), [{ listingId: A, listKind: 'dishonest', role: 'debtor', version: 5 }])
  t.equal(ix.size, 1)

  t.equal(ix.remove(B, 7), false, 'a versioned removal of an unknown id…')
  t.equal(ix.upsert({ id: B, listKind: 'restricted', version: 6, keys: [] }), false, '…makes an older upsert arriving later a no-op')
  t.equal(ix.upsert({ id: B, listKind: 'restricted', version: 8, keys: [] }), true)

  t.equal(ix.remove(C), false)
  t.equal(ix.upsert({ id: C, listKind: 'restricted', version: 0, keys: [] }), true, 'an unversioned removal of an unknown id remembers nothing')

  const forgetful = new MatchIndex({ rememberRemoved: 0 })
  forgetful.upsert(v(3))
  forgetful.remove(A, 4)
  t.equal(forgetful.upsert(v(3)), true, 'rememberRemoved: 0 forgets removals (the caller must apply events in order)')

  const small = new MatchIndex({ rememberRemoved: 2 })
  small.upsert(v(1))
  small.remove(A, 2)
  small.remove(B, 1)
  small.remove(C, 1)
  t.equal(small.upsert(v(1)), true, 'beyond rememberRemoved the oldest removal is forgotten')
  t.equal(small.upsert({ id: C, listKind: 'dishonest', version: 1, keys: [] }), false, 'the newest is still remembered')
})

t.test('malformed input throws before changing anything', async (t) => {
  const ix = new MatchIndex()
  ix.upsert({ id: A, listKind: 'dishonest', version: 1, keys: [{ type: 'idNumber', key: ID1, role: 'debtor' }] })
  const before = ix.stats()
  const bad: [string, unknown][] = [
    ['bad id', { id: 'not-a-uuid', listKind: 'dishonest', version: 2, keys: [] }],
    ['bad kind', { id: A, listKind: 'grey', version: 2, keys: [] }],
    ['bad version', { id: A, listKind: 'dishonest', version: 1.5, keys: [] }],
    ['negative version', { id: A, listKind: 'dishonest', version: -1, keys: [] }],
    ['huge version', { id: A, listKind: 'dishonest', version: 2 ** 32, keys: [] }],
    ['bad role (after a good key)', { id: A, listKind: 'dishonest', version: 2, keys: [{ type: 'idNumber', key: ID2, role: 'debtor' }, { type: 'idNumber', key: ID2, role: 'spouse' }] }],
    ['bad type', { id: A, listKind: 'dishonest', version: 2, keys: [{ type: 'passport', key: 'E1234', role: 'debtor' }] }],
    ['key not a string', { id: A, listKind: 'dishonest', version: 2, keys: [{ type: 'idNumber', key: 42, role: 'debtor' }] }],
    ['keys not an array', { id: A, listKind: 'dishonest', version: 2, keys: 'x' }],
  ]
  for (const [what, listing] of bad) t.throws(() => ix.upsert(listing as IndexListing), what)
  t.throws(() => ix.remove(A, -3), RangeError)
  t.same(ix.stats(), before, 'nothing changed')
  t.same(ix.lookup('idNumber', ID1), [{ listingId: A, listKind: 'dishonest', role: 'debtor', version: 1 }])
  t.same(ix.lookup('idNumber', ID2), [])
})

t.test('listing ids: either case in, lower case out; anything else refused', async (t) => {
  const ix = new MatchIndex()
  const upper = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'
  const mixed = 'a0EEbc99-9c0B-4eF8-bB6d-6bb9BD380a11'
  ix.upsert({ id: upper, listKind: 'dishonest', version: 1, keys: [{ type: 'idNumber', key: ID1, role: 'debtor' }] })
  t.equal(ix.lookup('idNumber', ID1)[0]?.listingId, A, 'canonical lower case')
  t.same(ix.get(mixed), { listKind: 'dishonest', version: 1 }, 'the same listing under any case')
  ix.upsert({ id: A, listKind: 'dishonest', version: 2, keys: [{ type: 'idNumber', key: ID1, role: 'debtor' }] })
  t.equal(ix.size, 1, 'lower and upper case are one listing')
  t.equal(ix.remove(mixed), true)
  t.equal(ix.size, 0)
  for (const id of ['ffffffff-ffff-ffff-ffff-ffffffffffff', '00000000-0000-0000-0000-000000000000', '0123abcd-ef01-2345-6789-abcdefABCDEF']) {
    ix.upsert({ id, listKind: 'restricted', version: 1, keys: [{ type: 'orgCode', key: 'org:00000000X', role: 'debtor' }] })
  }
  t.same(ix.lookup('orgCode', 'org:00000000X').map((h) => h.listingId).sort(), ['00000000-0000-0000-0000-000000000000', '0123abcd-ef01-2345-6789-abcdefabcdef', 'ffffffff-ffff-ffff-ffff-ffffffffffff'])
  for (const id of ['', 'a0eebc999c0b4ef8bb6d6bb9bd380a11', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g', 'a0eebc99_9c0b-4ef8-bb6d-6bb9bd380a11',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1\u00e9', ' a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1 ', 'a0eebc99-+c0b-4ef8-bb6d-6bb9bd380a11']) {
    t.throws(() => ix.get(id), TypeError, JSON.stringify(id))
    t.throws(() => ix.remove(id), TypeError)
  }
  t.throws(() => ix.get(undefined as unknown as string), TypeError)
})

t.test('growth across many resizes: every key found, removed keys gone', async (t) => {
  const N = 200_000
  const ix = new MatchIndex({ listings: 16, entries: 16 })
  const first = ix.stats()
  const keysOf = (i: number): IndexKey[] => i % 4 === 3
    ? [creditKey(i), orgKey(i), { ...idKey(N + i), role: 'legalRepresentative' }]
    : [idKey(i)]
  for (let i = 0; i < N; i++) ix.upsert({ id: uuidOf(i), listKind: i % 2 ? 'dishonest' : 'restricted', version: 1, keys: keysOf(i) })
  const grown = ix.stats()
  t.equal(ix.size, N)
  t.equal(ix.entryCount, N * 0.75 + N * 0.25 * 3)
  t.equal(ix.keyCount, ix.entryCount)
  t.ok(grown.slotCapacity >= N && grown.keyBuckets >= 2 ** 19, `grew from ${JSON.stringify(first)} to ${JSON.stringify(grown)}`)
  t.ok(grown.entries <= grown.keyBuckets * 0.7, 'key table load at most 0.7')
  t.ok(grown.listings <= grown.idBuckets * 0.7, 'id table load at most 0.7')

  let missing = 0
  for (let i = 0; i < N; i++) {
    for (const k of keysOf(i)) {
      const hits = ix.lookup(k.type, k.key)
      if (hits.length !== 1 || hits[0]!.listingId !== uuidOf(i) || hits[0]!.role !== k.role) missing++
    }
  }
  t.equal(missing, 0, 'every key of every listing found, once')

  for (let i = 0; i < N; i += 2) ix.remove(uuidOf(i))
  let wrong = 0
  for (let i = 0; i < N; i++) {
    for (const k of keysOf(i)) if (ix.lookup(k.type, k.key).length !== (i % 2 ? 1 : 0)) wrong++
  }
  t.equal(wrong, 0, 'removed listings gone, the others still found (backward-shift deletion keeps probe runs intact)')
  t.equal(ix.size, N / 2)
  t.equal(ix.keyCount, ix.entryCount)
  let kept = 0
  for (let i = 1; i < N; i += 2) kept += keysOf(i).length
  t.equal(ix.entryCount, kept)
  let strays = 0
  for (let i = N; i < N + 20_000; i++) if (ix.lookup('idNumber', idKey(3 * N + i).key).length) strays++
  t.equal(strays, 0, 'identifiers never indexed are not found')
})

t.test('freed slots and entries are reused: churn does not grow the index', async (t) => {
  const churn = (ix: MatchIndex, from: number, to: number) => {
    for (let i = from; i < to; i++) {
      ix.upsert({ id: uuidOf(i), listKind: 'dishonest', version: 1, keys: [idKey(i), creditKey(i)] })
      ix.remove(uuidOf(i), 2)
    }
  }
  // A steady population of 1 000 listings, and 100 000 others listed and removed.
  const ix = new MatchIndex({ rememberRemoved: 1024 })
  for (let i = 0; i < 1000; i++) ix.upsert({ id: uuidOf(10_000_000 + i), listKind: 'restricted', version: 1, keys: [idKey(10_000_000 + i)] })
  churn(ix, 0, 5_000)
  const after5k = ix.memoryBytes()
  churn(ix, 5_000, 100_000)
  t.equal(ix.memoryBytes(), after5k, `memoryBytes constant (${after5k} B) over 100 000 upsert+remove`)
  t.equal(ix.size, 1000)
  t.equal(ix.stats().removedRemembered, 1024)
  t.equal(ix.lookup('idNumber', idKey(10_000_500).key).length, 1)
  t.same(ix.lookup('idNumber', idKey(99_999).key), [])

  const byDefault = new MatchIndex()
  churn(byDefault, 0, 80_000)
  const after80k = byDefault.memoryBytes()
  churn(byDefault, 80_000, 100_000)
  t.equal(byDefault.memoryBytes(), after80k, 'with the default 65 536 remembered removals, bounded too')
  t.ok(after80k < 8 * 1024 * 1024, `${after80k} B`)

  // One listing re-listed and removed over and over (the remembered slot is superseded each time).
  const relist = new MatchIndex({ rememberRemoved: 16 })
  let bytes = 0
  for (let v = 1; v <= 200_000; v += 2) {
    relist.upsert({ id: A, listKind: 'dishonest', version: v, keys: [idKey(v), orgKey(v)] })
    relist.remove(A, v + 1)
    if (v === 1001) bytes = relist.memoryBytes()
  }
  t.equal(relist.memoryBytes(), bytes, 're-listing the same id 100 000 times: bounded')
  t.equal(relist.size, 0)
  t.equal(relist.keyCount, 0)
})

/**
 * The simple truth the index must agree with: Maps of listings and of remembered removals, with
 * the same rules (version order, removal queue of `limit`), looked up by scanning.
 */
class Reference {
  active = new Map<string, { listKind: ListKind; version: number; keys: IndexKey[] }>()
  removed = new Map<string, { version: number; token: number }>()
  queue: { id: string; token: number }[] = []
  token = 0
  constructor(readonly limit: number, readonly bits: number) {}

  hash(type: string, key: string): string {
    const { hi, lo } = fnv1a64(`${type}:${key}`)
    const h = (BigInt(hi) << 32n) | BigInt(lo)
    return (h & ((1n << BigInt(this.bits)) - 1n)).toString(16)
  }
  upsert(l: IndexListing): boolean {
    const id = l.id.toLowerCase()
    const a = this.active.get(id)
    if (a && l.version < a.version) return false
    const r = this.removed.get(id)
    if (r && l.version <= r.version) return false
    this.removed.delete(id)
    this.active.set(id, { listKind: l.listKind, version: l.version, keys: [...l.keys] })
    return true
  }
  remove(rawId: string, version?: number): boolean {
    const id = rawId.toLowerCase()
    const a = this.active.get(id)
    if (!a) {
      const r = this.removed.get(id)
      if (r) { if (version !== undefined && version > r.version) r.version = version; return false }
      if (version !== undefined && this.limit > 0) this.remember(id, version)
      return false
    }
    if (version !== undefined && version < a.version) return false
    this.active.delete(id)
    if (this.limit > 0) this.remember(id, version ?? a.version)
    return true
  }
  remember(id: string, version: number) {
    const token = ++this.token
    this.removed.set(id, { version, token })
    this.queue.push({ id, token })
    while (this.queue.length > this.limit) {
      const q = this.queue.shift()!
      if (this.removed.get(q.id)?.token === q.token) this.removed.delete(q.id)
    }
  }
  clear() { this.active.clear(); this.removed.clear(); this.queue = [] }
  /** What lookup returns: (listing, role) under any key with the same (truncated) hash, once each. */
  lookup(type: MatchKeyType, key: string): string[] {
    const h = this.hash(type, key)
    const out = new Set<string>()
    for (const [id, l] of this.active) {
      for (const k of l.keys) if (this.hash(k.type, k.key) === h) out.add(`${id}|${k.role}|${l.listKind}|${l.version}`)
    }
    return [...out].sort()
  }
  trueMatches(type: MatchKeyType, key: string): string[] {
    const out = new Set<string>()
    for (const [id, l] of this.active) for (const k of l.keys) if (k.type === type && k.key === key) out.add(`${id}|${k.role}|${l.listKind}|${l.version}`)
    return [...out].sort()
  }
  counts() {
    const keys = new Set<string>()
    let entries = 0
    for (const l of this.active.values()) {
      const own = new Set(l.keys.map((k) => `${this.hash(k.type, k.key)}|${k.role}`))
      entries += own.size
      for (const k of l.keys) keys.add(this.hash(k.type, k.key))
    }
    return { size: this.active.size, keys: keys.size, entries }
  }
}

const CONFIGS: { name: string; options: MatchIndexOptions; seed: number }[] = [
  { name: 'defaults', options: {}, seed: 1 },
  { name: 'small removal memory', options: { rememberRemoved: 8, listings: 16, entries: 16 }, seed: 2 },
  { name: 'no removal memory', options: { rememberRemoved: 0 }, seed: 3 },
  { name: '6-bit hashes (collisions everywhere)', options: { hashBits: 6, rememberRemoved: 16, listings: 16 }, seed: 4 },
  { name: '33-bit hashes', options: { hashBits: 33 }, seed: 5 },
]

for (const { name, options, seed } of CONFIGS) {
  t.test(`randomized against a Map-based reference: ${name}`, async (t) => {
    const r = prng(seed)
    const ix = new MatchIndex(options)
    const ref = new Reference(options.rememberRemoved ?? 65_536, options.hashBits ?? 64)
    const ids = Array.from({ length: 150 }, () => r.uuid())
    const same18 = '110105194912310021'
    const pool: { type: MatchKeyType; key: string }[] = [
      ...Array.from({ length: 40 }, (_, i) => ({ type: 'idNumber' as const, key: person(i * 7919) })),
      ...Array.from({ length: 15 }, (_, i) => ({ type: 'creditCode' as const, key: creditKey(i).key })),
      ...Array.from({ length: 15 }, (_, i) => ({ type: 'orgCode' as const, key: orgKey(i).key })),
      { type: 'idNumber', key: same18 }, { type: 'creditCode', key: same18 },
    ]
    const roles: MatchRole[] = ['debtor', 'legalRepresentative', 'restrictedPerson']
    const caseOf = (id: string) => r.pick([id, id.toUpperCase(), id.replace(/[a-f]/g, (c) => (r.int(2) ? c.toUpperCase() : c))])
    const maxVersion = new Map<string, number>()
    const version = (id: string) => {
      const m = maxVersion.get(id) ?? 0
      const v = Math.max(0, m + r.int(6) - 2) // mostly newer, sometimes stale or equal
      maxVersion.set(id, Math.max(m, v))
      return v
    }
    let mismatches = 0
    let checks = 0
    const check = (label: string) => {
      for (const k of pool) {
        checks++
        const got = sortHits(ix.lookup(k.type, k.key))
        const want = ref.lookup(k.type, k.key)
        const truth = ref.trueMatches(k.type, k.key)
        if (JSON.stringify(got) !== JSON.stringify(want) || !truth.every((x) => got.includes(x)) || ix.has(k.type, k.key) !== (want.length > 0)) {
          if (mismatches++ < 5) t.fail(`${label}: ${k.type} ${k.key}`, { got, want, truth })
        }
      }
      const c = ref.counts()
      if (ix.size !== c.size || ix.keyCount !== c.keys || ix.entryCount !== c.entries) {
        if (mismatches++ < 5) t.fail(`${label}: counts`, { got: { size: ix.size, keys: ix.keyCount, entries: ix.entryCount }, want: c })
      }
      for (const id of ids) {
        const a = ref.active.get(id)
        const got = ix.get(id)
        if (JSON.stringify(got) !== JSON.stringify(a ? { listKind: a.listKind, version: a.version } : undefined)) {
          if (mismatches++ < 5) t.fail(`${label}: get ${id}`, { got, want: a })
        }
      }
    }

    const OPS = 6000
    let applied = 0
    let ignored = 0
    for (let op = 0; op < OPS; op++) {
      const x = r.next()
      const id = r.pick(ids)
      if (x < 0.55) {
        const keys: IndexKey[] = Array.from({ length: r.int(5) }, () => ({ ...r.pick(pool), role: r.pick(roles) }))
        if (keys.length && r.int(4) === 0) keys.push({ ...keys[0]! }) // an exact duplicate
        const listing: IndexListing = { id: caseOf(id), listKind: r.int(2) ? 'dishonest' : 'restricted', version: version(id), keys }
        const want = ref.upsert(listing)
        const got = ix.upsert(listing)
        if (got !== want && mismatches++ < 5) t.fail(`op ${op}: upsert returned ${got}, reference ${want}`)
        if (want) applied++; else ignored++
      } else if (x < 0.8) {
        const v = version(id)
        const want = ref.remove(id, v)
        if (ix.remove(caseOf(id), v) !== want && mismatches++ < 5) t.fail(`op ${op}: remove(id, ${v}) disagrees`)
      } else if (x < 0.9) {
        const want = ref.remove(id)
        if (ix.remove(caseOf(id)) !== want && mismatches++ < 5) t.fail(`op ${op}: remove(id) disagrees`)
      } else if (x < 0.999) {
        const k = r.pick(pool)
        checks++
        if (JSON.stringify(sortHits(ix.lookup(k.type, k.key))) !== JSON.stringify(ref.lookup(k.type, k.key)) && mismatches++ < 5) t.fail(`op ${op}: lookup ${k.key}`)
      } else {
        ix.clear()
        ref.clear()
        maxVersion.clear()
      }
      if (op % 200 === 199) check(`after op ${op}`)
    }
    check('at the end')
    t.equal(mismatches, 0, `${OPS} operations (${applied} upserts applied, ${ignored} ignored), ${checks} look-ups compared`)
    t.ok(applied > 1000 && ignored > 50, 'the run exercised both applied and stale upserts')
  })
}

t.test('reserve() sizes the index up front: no growth while it fills', async (t) => {
  const ix = new MatchIndex()
  ix.upsert({ id: A, listKind: 'dishonest', version: 1, keys: [idKey(1)] })
  ix.reserve(50_000, 60_000)
  const reserved = ix.stats()
  t.ok(reserved.slotCapacity >= 50_000 && reserved.entryCapacity >= 60_000 && reserved.idBuckets * 0.7 >= 50_000 && reserved.keyBuckets * 0.7 >= 60_000, JSON.stringify(reserved))
  t.same(ix.lookup('idNumber', idKey(1).key).map((h) => h.listingId), [A], 'what was there is still found')
  for (let i = 0; i < 49_999; i++) ix.upsert({ id: uuidOf(i), listKind: 'restricted', version: 1, keys: i % 5 ? [idKey(i + 10)] : [idKey(i + 10), orgKey(i)] })
  t.equal(ix.memoryBytes(), reserved.memoryBytes, 'no array grew')
  t.same([ix.size, ix.entryCount], [50_000, 60_000], 'full to the reserved sizes')
  for (let i = 0; i < 49_999; i++) ix.upsert({ id: uuidOf(i), listKind: 'dishonest', version: 2, keys: i % 5 ? [idKey(i + 10)] : [idKey(i + 10), orgKey(i)] })
  t.equal(ix.memoryBytes(), reserved.memoryBytes, 'replacing every listing in a full index: its old entries make room for the new ones')
  t.equal(ix.lookup('orgCode', orgKey(49_995).key)[0]?.listingId, uuidOf(49_995))
  ix.reserve(10)
  t.equal(ix.memoryBytes(), reserved.memoryBytes, 'reserve never shrinks')
})
