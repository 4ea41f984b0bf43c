/**
 * The in-memory match index: every active listing, keyed by normalized identifier (a resident id,
 * a credit code, an `org:` organisation code), held in every gateway process so a match never
 * waits on PostgreSQL.
 *
 * Why typed arrays. The index must hold 10 million listings with the whole process under 1 GB of
 * RSS (issue 4). A JS `Map` of 10 M 18-character string keys alone costs ~985 MB; per-listing
 * objects cost more again and give the garbage collector tens of millions of objects to trace
 * (bench/index-memory.ts --map: 1 M listings as a Map of hit arrays, 436 MB of heap). So the bulk
 * lives in four Int32Arrays (no per-listing JS objects, no strings kept), and the collector sees
 * a handful of objects whatever the size:
 *
 * - **Slots**, one record per listing (6 words, 24 B): the uuid (4 words), the version, and a word
 *   with the slot's state (list kind, free, removed) in 3 bits and a link above them (for an active
 *   listing, its first entry).
 * - **Id table**: uuid → slot. Open addressing, linear probing, power-of-two capacity, grown at
 *   0.7 load, backward-shift deletion (no tombstones to pile up). 4 B per bucket: (slot + 1) × 8 +
 *   3 more bits of the hash as a tag, so a probe skips most wrong slots without reading them.
 * - **Entries**, one record per (identifier, listing, role) (3 words, 12 B): the identifier's 64-bit
 *   hash, and a link word: the role in 2 bits and the next entry of the same listing, or, for the
 *   listing's last entry, its slot. A hit walks to the end of its listing's list (entries of one
 *   listing are allocated together: one cache line) to find the slot; so there is no per-entry
 *   owner word.
 * - **Key table**: identifier hash → entries, open addressing as above, and a *multimap*: each bucket
 *   holds one entry ((entry + 1) × 8 + tag), and a person listed in several cases has several
 *   entries in the same probe run. Keeping the 64-bit hash in the entry, not the bucket, keeps a
 *   bucket at 4 B: 15 M entries need 2^25 buckets, 128 MiB; 12-byte buckets would be 384 MiB.
 *
 * So 24 B + 5.7–11.4 B (id bucket, load 0.7–0.35) per listing and 12 B + 5.7–11.4 B per entry.
 * Measured (bench/index-memory.ts, 10 M listings, a quarter of them entities with three keys:
 * 15 M entries): 593 MiB of typed arrays when sized up front (`listings`/`entries` options or
 * `reserve()`), 630 MiB when grown from the defaults; process RSS ~750–775 MiB after the build,
 * ~80 MiB of it Node and tsx. Slots and entries grow by 1.5× (the untouched tail of a fresh
 * zero-filled array costs no RSS); a growth step holds the old and new array side by side for a
 * moment, which is why a boot that can count its listings should `reserve()` first.
 *
 * Freed slots and entries go on free lists and are reused, so a process that applies millions of
 * updates over months stays at the size of what is listed, not of what ever was.
 *
 * What it defends against:
 * - **A removal stops matching at once.** `remove` unlinks the listing's entries from the key table
 *   before it returns; there is no lazy deletion, no "removed" flag a look-up could miss, and a
 *   look-up that runs after `remove` cannot return the listing.
 * - **Events applied twice or out of order** (a replay after a lost connection, a snapshot row
 *   older than an event already applied). Every listing carries its version: an upsert with a
 *   version lower than the one held is ignored, and so is a versioned removal older than the
 *   listing it would remove. A removed listing is remembered (its uuid and removal version, not its
 *   keys) among the last `rememberRemoved` removals (default 65 536, ~2 MiB), so an older upsert
 *   re-applied after the removal cannot bring it back; a newer one (re-listing) does.
 * - **Hash collisions.** Identifiers are stored as 64-bit FNV-1a hashes of `type + ':' + key`, never
 *   as strings. The same identifier always has the same hash, so `lookup` never misses a true match;
 *   two different identifiers sharing a 64-bit hash would make `lookup` return the other's listing
 *   too (among 15 M identifiers the chance that any two share one is ~6 × 10^-6; that a given
 *   look-up meets a stranger's hash, ~10^-12). **The caller verifies every hit** against the
 *   listing's stored match keys before reporting it (the matching service does, and in the same
 *   step drops a hit whose listing was removed after the look-up).
 *
 * Not thread-safe, not shared between processes: each gateway process builds its own from
 * PostgreSQL and the change log (matching.sync.ts). Pure: no I/O.
 */
import { Buffer } from 'node:buffer'
import type { ListKind, MatchKey, MatchRole } from '../listings/listings.models.js'

export type MatchKeyType = MatchKey['type']
/** One identifier of a listing, as the index needs it (a full `MatchKey` with its name is accepted). */
export interface IndexKey { type: MatchKeyType; key: string; role: MatchRole }
export interface IndexListing { id: string; listKind: ListKind; version: number; keys: readonly IndexKey[] }
export interface MatchHit { listingId: string; listKind: ListKind; role: MatchRole; version: number }

export interface MatchIndexOptions {
  /** Expected number of listings: sizes the slot arrays and the id table up front (default 1 024). */
  listings?: number
  /** Expected number of (identifier, listing) entries (default 2 × listings). */
  entries?: number
  /**
   * How many removed listings to remember (uuid and removal version) so a re-applied older upsert
   * cannot bring them back; the oldest is forgotten first. Default 65 536; 0 forgets at once.
   */
  rememberRemoved?: number
  /**
   * For tests only: keep just the low `hashBits` bits (1–64) of each identifier's hash, to force
   * collisions and long probe runs. Default 64.
   */
  hashBits?: number
}

export interface MatchIndexStats {
  listings: number
  removedRemembered: number
  keys: number
  entries: number
  slotCapacity: number
  entryCapacity: number
  idBuckets: number
  keyBuckets: number
  memoryBytes: number
}

// ---------------------------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------------------------

/** Scratch outputs of the hash and uuid helpers (single-threaded; avoids allocating per call). */
let HLO = 0
let HHI = 0
let W0 = 0
let W1 = 0
let W2 = 0
let W3 = 0

const FNV_OFFSET_HI = 0xcbf29ce4 | 0
const FNV_OFFSET_LO = 0x84222325 | 0

/**
 * FNV-1a 64 over a string's code units (below 256 as one byte, as in Latin-1; others as two, low
 * then high), continuing from the state (hi, lo); the result goes to HHI/HLO. The multiply by the
 * prime 2^40 + 0x1b3 is done in 32-bit halves with 16-bit limbs: int32 arithmetic only.
 */
function fnvString(s: string, hi: number, lo: number): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff) return fnvWide(s, i, hi, lo)
    lo ^= c
    const a = (lo & 0xffff) * 0x1b3
    const b = (lo >>> 16) * 0x1b3 + (a >>> 16)
    hi = (Math.imul(hi, 0x1b3) + (lo << 8) + (b >>> 16)) | 0
    lo = (b << 16) | (a & 0xffff)
  }
  HHI = hi
  HLO = lo
}

/** fnvString's slow path, from the first code unit above 255 (never, for normalized identifiers). */
function fnvWide(s: string, from: number, hi: number, lo: number): void {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i)
    for (const byte of c > 0xff ? [c & 0xff, c >>> 8] : [c]) {
      lo ^= byte
      const a = (lo & 0xffff) * 0x1b3
      const b = (lo >>> 16) * 0x1b3 + (a >>> 16)
      hi = (Math.imul(hi, 0x1b3) + (lo << 8) + (b >>> 16)) | 0
      lo = (b << 16) | (a & 0xffff)
    }
  }
  HHI = hi
  HLO = lo
}

function prefixState(type: string): [number, number] {
  fnvString(type + ':', FNV_OFFSET_HI, FNV_OFFSET_LO)
  return [HHI, HLO]
}
const [ID_HI, ID_LO] = prefixState('idNumber')
const [CC_HI, CC_LO] = prefixState('creditCode')
const [OC_HI, OC_LO] = prefixState('orgCode')

/** Sets HHI/HLO to the hash of `type + ':' + key`; throws on an unknown type. */
function hashKey(type: string, key: string): void {
  if (typeof key !== 'string') throw new TypeError('a match key must be a string')
  if (type === 'idNumber') fnvString(key, ID_HI, ID_LO)
  else if (type === 'creditCode') fnvString(key, CC_HI, CC_LO)
  else if (type === 'orgCode') fnvString(key, OC_HI, OC_LO)
  else throw new TypeError(`unknown match key type: ${String(type)}`)
}

/** 64-bit FNV-1a of a string (as the index hashes `type + ':' + key`), as two unsigned 32-bit halves. */
export function fnv1a64(text: string): { hi: number; lo: number } {
  fnvString(text, FNV_OFFSET_HI, FNV_OFFSET_LO)
  return { hi: HHI >>> 0, lo: HLO >>> 0 }
}

/** murmur3's 32-bit finalizer: spreads every input bit over the bucket index. */
function mix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}

// ---------------------------------------------------------------------------------------------
// Uuids: 36 characters, any case, in; lower-case canonical out
// ---------------------------------------------------------------------------------------------

const NIBBLE = new Int8Array(128).fill(16)
for (let i = 0; i < 10; i++) NIBBLE[48 + i] = i
for (let i = 0; i < 6; i++) { NIBBLE[65 + i] = 10 + i; NIBBLE[97 + i] = 10 + i }
const HEX_CODE = new Uint8Array([48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102])
/** Scratch for formatting a uuid: 36 ASCII bytes, dashes in place. */
const ID_CHARS = Buffer.alloc(36, 45)

/** Writes the low `digits` hex digits of w (lower case) at out[at..]. */
function hexInto(out: Uint8Array, at: number, w: number, digits = 8): void {
  for (let k = at + digits - 1; k >= at; k--) { out[k] = HEX_CODE[w & 15]!; w >>>= 4 }
}

/** A hex digit's value, or 16 (not a hex digit): `acc |= n` collects a "bad" bit above the nibble. */
function nibble(c: number): number {
  return c < 128 ? NIBBLE[c]! & 31 : 16
}

/** Parses a uuid (36 characters, either case) into W0..W3; throws a TypeError if it is not one. */
function parseUuid(id: string): void {
  if (typeof id !== 'string' || id.length !== 36 || id.charCodeAt(8) !== 45 || id.charCodeAt(13) !== 45 || id.charCodeAt(18) !== 45 || id.charCodeAt(23) !== 45) {
    throw new TypeError(`not a uuid: ${String(id)}`)
  }
  let bad = 0, w0 = 0, w1 = 0, w2 = 0, w3 = 0
  for (let i = 0; i < 8; i++) { const n = nibble(id.charCodeAt(i)); bad |= n; w0 = (w0 << 4) | (n & 15) }
  for (let i = 9; i < 18; i++) { if (i === 13) continue; const n = nibble(id.charCodeAt(i)); bad |= n; w1 = (w1 << 4) | (n & 15) }
  for (let i = 19; i < 28; i++) { if (i === 23) continue; const n = nibble(id.charCodeAt(i)); bad |= n; w2 = (w2 << 4) | (n & 15) }
  for (let i = 28; i < 36; i++) { const n = nibble(id.charCodeAt(i)); bad |= n; w3 = (w3 << 4) | (n & 15) }
  if (bad & 16) throw new TypeError(`not a uuid: ${id}`)
  W0 = w0; W1 = w1; W2 = w2; W3 = w3
}

// ---------------------------------------------------------------------------------------------
// The index
// ---------------------------------------------------------------------------------------------

/** Slot states: the list kinds of an active listing, a free slot, a remembered removal, a superseded one. */
const FREE = 0
const DISHONEST = 1
const RESTRICTED = 2
const REMOVED = 3
const DEAD = 4
const KIND_NAMES: readonly ListKind[] = ['dishonest', 'dishonest', 'restricted']
const ROLE_NAMES: readonly MatchRole[] = ['debtor', 'legalRepresentative', 'restrictedPerson']

/** A slot record, 6 words: uuid (4), version, link × 8 + state. */
const SW = 6
const S_VER = 4
const S_LINK = 5
/**
 * An entry record, 3 words: hash low, hash high, and a link word holding the entry's role (0–2) in
 * its low 2 bits and, above them, the next entry of the same listing + 1; the listing's last entry
 * holds -((slot + 1) × 4 + role) instead, so a hit finds its listing by walking its own list (the
 * entries of one listing are allocated together: usually the same cache line). A free entry holds
 * (next free entry + 1) × 4 + 3.
 */
const EW = 3
const E_LO = 0
const E_HI = 1
const E_LINK = 2
const FREE_ROLE = 3

const MAX_LOAD = 0.7
/** Links share a word with a 3-bit state or tag (slot + 1, entry + 1: 29 bits) or a 2-bit role (entry + 1: 28 bits after the sign). */
const MAX_SLOTS = 2 ** 29 - 2
const MAX_ENTRIES = 2 ** 28 - 2

function kindCode(k: unknown): number {
  if (k === 'dishonest') return DISHONEST
  if (k === 'restricted') return RESTRICTED
  throw new TypeError(`unknown list kind: ${String(k)}`)
}

function roleCode(r: unknown): number {
  if (r === 'debtor') return 0
  if (r === 'legalRepresentative') return 1
  if (r === 'restrictedPerson') return 2
  throw new TypeError(`unknown match role: ${String(r)}`)
}

function checkVersion(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`a listing version must be an integer in 0..2^32-1, got ${String(v)}`)
  return v
}

function tableSize(items: number): number {
  let n = 16
  while (n * MAX_LOAD < items) n *= 2
  return n
}

function grown(old: Int32Array, length: number): Int32Array {
  const next = new Int32Array(length)
  next.set(old)
  return next
}

export class MatchIndex {
  private readonly hintListings: number
  private readonly hintEntries: number
  private readonly removedLimit: number
  private readonly loMask: number
  private readonly hiMask: number

  /** Slot records (SW words each). The link is, by state: active, first entry + 1 (0: none); free, next free slot + 1; removed/dead, next in the removal queue + 1. */
  private slots!: Int32Array
  private slotCap = 0
  private slotTop = 0
  private freeSlot = 0
  private active = 0
  /** Removal queue (oldest first) of remembered (REMOVED) and superseded (DEAD) slots, as slot + 1. */
  private removedHead = 0
  private removedTail = 0
  private removedCount = 0

  /** Uuid → (slot + 1) × 8 + tag (0: empty); the tag, 3 more bits of the hash, skips most wrong slots unread. */
  private idTable!: Int32Array
  private idMask = 0
  /** Slots in idTable: active and remembered-removed. */
  private idUsed = 0

  /** Entry records (EW words each). */
  private ents!: Int32Array
  private entryCap = 0
  private entryTop = 0
  private freeEntry = 0
  private freeEntries = 0
  private liveEntries = 0
  private distinctKeys = 0

  /** Identifier hash → (entry + 1) × 8 + tag (0: empty); a multimap. The tag saves reading most non-matching entries. */
  private keyTable!: Int32Array
  private keyMask = 0

  // Per-upsert scratch: the new keys' hashes and roles, computed (and validated) before any change.
  private sLo = new Int32Array(16)
  private sHi = new Int32Array(16)
  private sRole = new Uint8Array(16)

  constructor(options: MatchIndexOptions = {}) {
    this.hintListings = Math.min(MAX_SLOTS, Math.max(16, Math.ceil(options.listings ?? 1024)))
    this.hintEntries = Math.min(MAX_ENTRIES, Math.max(16, Math.ceil(options.entries ?? this.hintListings * 2)))
    this.removedLimit = Math.max(0, Math.floor(options.rememberRemoved ?? 65_536))
    const bits = options.hashBits ?? 64
    if (!Number.isInteger(bits) || bits < 1 || bits > 64) throw new RangeError('hashBits must be an integer in 1..64')
    this.loMask = bits >= 32 ? -1 : (2 ** bits - 1) | 0
    this.hiMask = bits >= 64 ? -1 : bits <= 32 ? 0 : (2 ** (bits - 32) - 1) | 0
    this.init()
  }

  private init(): void {
    this.slotCap = this.hintListings
    this.slots = new Int32Array(this.slotCap * SW)
    this.slotTop = this.freeSlot = this.active = 0
    this.removedHead = this.removedTail = this.removedCount = 0
    this.idTable = new Int32Array(tableSize(this.slotCap))
    this.idMask = this.idTable.length - 1
    this.idUsed = 0
    this.entryCap = this.hintEntries
    this.ents = new Int32Array(this.entryCap * EW)
    this.entryTop = this.freeEntry = this.freeEntries = this.liveEntries = this.distinctKeys = 0
    this.keyTable = new Int32Array(tableSize(this.entryCap))
    this.keyMask = this.keyTable.length - 1
  }

  /** Active listings. */
  get size(): number { return this.active }
  /** Distinct identifiers (by hash) with at least one active listing. */
  get keyCount(): number { return this.distinctKeys }
  /** (identifier, listing, role) entries. */
  get entryCount(): number { return this.liveEntries }

  /** Bytes held in typed arrays (capacity, not use: an array's untouched tail costs no RSS). */
  memoryBytes(): number {
    return this.slots.byteLength + this.idTable.byteLength + this.ents.byteLength + this.keyTable.byteLength +
      this.sLo.byteLength + this.sHi.byteLength + this.sRole.byteLength
  }

  stats(): MatchIndexStats {
    return {
      listings: this.active, removedRemembered: this.removedCount, keys: this.distinctKeys, entries: this.liveEntries,
      slotCapacity: this.slotCap, entryCapacity: this.entryCap, idBuckets: this.idTable.length, keyBuckets: this.keyTable.length,
      memoryBytes: this.memoryBytes(),
    }
  }

  /**
   * Grows the arrays and tables now for this many listings and entries (never shrinks): a boot
   * that counts its listings first builds without a single copy or rehash, and without the
   * transient peak of RSS a growth step costs (old and new array side by side).
   */
  reserve(listings: number, entries = listings * 2): void {
    const slots = Math.min(MAX_SLOTS, Math.ceil(listings))
    if (slots > this.slotCap) {
      this.slotCap = slots
      this.slots = grown(this.slots, slots * SW)
    }
    if (tableSize(slots) > this.idTable.length) this.rehashIds(tableSize(slots))
    const ents = Math.min(MAX_ENTRIES, Math.ceil(entries))
    if (ents > this.entryCap) {
      this.entryCap = ents
      this.ents = grown(this.ents, ents * EW)
    }
    if (tableSize(ents) > this.keyTable.length) this.rehashKeys(tableSize(ents))
  }

  /** Drops everything (and the memory, back to the constructor's sizes). */
  clear(): void { this.init() }

  /**
   * Adds a listing, or replaces the one held under its id (its old keys stop matching). Ignored,
   * returning false, when the version is lower than the one held, or not higher than the version
   * of a remembered removal. Duplicate (type, key, role) triples are indexed once. Throws
   * (TypeError/RangeError) on a malformed listing, before changing anything.
   */
  upsert(listing: IndexListing): boolean {
    parseUuid(listing.id)
    const w0 = W0, w1 = W1, w2 = W2, w3 = W3
    const kind = kindCode(listing.listKind)
    const version = checkVersion(listing.version) | 0
    const keys = listing.keys
    if (!Array.isArray(keys)) throw new TypeError('listing.keys must be an array')
    const n = keys.length
    if (this.sLo.length < n) {
      const cap = Math.max(n, this.sLo.length * 2)
      this.sLo = new Int32Array(cap); this.sHi = new Int32Array(cap); this.sRole = new Uint8Array(cap)
    }
    const sLo = this.sLo, sHi = this.sHi, sRole = this.sRole
    for (let i = 0; i < n; i++) {
      const k = keys[i] as IndexKey
      sRole[i] = roleCode(k.role)
      hashKey(k.type, k.key)
      sLo[i] = HLO & this.loMask
      sHi[i] = HHI & this.hiMask
    }

    let slot = this.findSlot(w0, w1, w2, w3)
    let state = slot >= 0 ? this.state(slot) : FREE
    if (slot >= 0) {
      const held = this.slots[slot * SW + S_VER]! >>> 0
      if (state === REMOVED ? version >>> 0 <= held : version >>> 0 < held) return false
    }
    // Reserve first: an allocation failure leaves the index as it was. A replaced listing's
    // entries are freed before the new ones are taken.
    this.reserveEntries(n - (state === DISHONEST || state === RESTRICTED ? this.entriesOf(slot) : 0))
    if (slot < 0 || state === REMOVED) this.reserveSlot()

    if (state === REMOVED) {
      // Re-listed after a removal: the remembered slot stays in the removal queue as DEAD (freed
      // when it reaches the front), and the listing takes a fresh slot.
      this.idDelete(slot)
      this.setState(slot, DEAD)
      slot = -1
    }
    const S = this.slots
    if (slot < 0) {
      slot = this.allocSlot()
      const b = slot * SW
      S[b] = w0; S[b + 1] = w1; S[b + 2] = w2; S[b + 3] = w3
      this.idInsert(slot)
      this.active++
    } else {
      this.unlinkEntries(slot)
    }

    let head = 0
    const E = this.ents // reserveEntries ran: no growth below
    for (let i = 0; i < n; i++) {
      const lo = sLo[i]!, hi = sHi[i]!, role = sRole[i]!
      let dup = false
      for (let j = 0; j < i; j++) if (sLo[j] === lo && sHi[j] === hi && sRole[j] === role) { dup = true; break }
      if (dup) continue
      const e = this.allocEntry()
      const b = e * EW
      E[b + E_LO] = lo
      E[b + E_HI] = hi
      // Built back to front: the first key's entry ends the list and names the slot.
      E[b + E_LINK] = head === 0 ? -(((slot + 1) << 2) | role) : (head << 2) | role
      head = e + 1
      this.keyInsert(e)
    }
    S[slot * SW + S_VER] = version
    S[slot * SW + S_LINK] = (head << 3) | kind
    return true
  }

  /**
   * The listing stops matching, at once. With a version, a removal older than the listing held
   * is ignored (returns false); a versioned removal of an unknown id is remembered, so an older
   * upsert arriving later is ignored. Returns true if a listing stopped matching.
   */
  remove(id: string, version?: number): boolean {
    parseUuid(id)
    const v = version === undefined ? -1 : checkVersion(version)
    const slot = this.findSlot(W0, W1, W2, W3)
    if (slot < 0) {
      if (v >= 0 && this.removedLimit > 0) {
        this.reserveSlot()
        const S = this.slots
        const s = this.allocSlot()
        const b = s * SW
        S[b] = W0; S[b + 1] = W1; S[b + 2] = W2; S[b + 3] = W3
        S[b + S_VER] = v | 0
        this.idInsert(s)
        this.remember(s)
      }
      return false
    }
    const S = this.slots
    const held = S[slot * SW + S_VER]! >>> 0
    if (this.state(slot) === REMOVED) {
      if (v > held) S[slot * SW + S_VER] = v | 0
      return false
    }
    if (v >= 0 && v < held) return false
    this.unlinkEntries(slot)
    this.active--
    if (v >= 0) S[slot * SW + S_VER] = v | 0
    if (this.removedLimit > 0) {
      this.remember(slot)
    } else {
      this.idDelete(slot)
      this.freeSlotAt(slot)
    }
    return true
  }

  /**
   * Every active listing indexed under this identifier, one hit per (listing, role), in no
   * particular order. Never misses a true match; may (with odds ~10^-12) include a listing
   * under another identifier with the same 64-bit hash: verify hits against the stored keys.
   */
  lookup(type: MatchKeyType, key: string): MatchHit[] {
    hashKey(type, key)
    const lo = HLO & this.loMask, hi = HHI & this.hiMask
    const out: MatchHit[] = []
    const t = this.keyTable, m = this.keyMask, E = this.ents
    const h = mix(lo ^ hi), tag = h >>> 29
    for (let i = h & m; ; i = (i + 1) & m) {
      const v = t[i]!
      if (v === 0) return out
      if ((v & 7) !== tag) continue
      const b = ((v >>> 3) - 1) * EW
      if (E[b + E_LO] === lo && E[b + E_HI] === hi) {
        let l = E[b + E_LINK]!
        const role = (l < 0 ? -l : l) & 3
        while (l > 0) l = E[((l >>> 2) - 1) * EW + E_LINK]!
        const s = (-l >>> 2) - 1
        const sb = s * SW
        out.push({ listingId: this.idString(s), listKind: KIND_NAMES[this.slots[sb + S_LINK]! & 7]!, role: ROLE_NAMES[role]!, version: this.slots[sb + S_VER]! >>> 0 })
      }
    }
  }

  /** True if any active listing is indexed under this identifier (same caveat on collisions). */
  has(type: MatchKeyType, key: string): boolean {
    hashKey(type, key)
    const lo = HLO & this.loMask, hi = HHI & this.hiMask
    const t = this.keyTable, m = this.keyMask, E = this.ents
    const h = mix(lo ^ hi), tag = h >>> 29
    for (let i = h & m; ; i = (i + 1) & m) {
      const v = t[i]!
      if (v === 0) return false
      if ((v & 7) !== tag) continue
      const b = ((v >>> 3) - 1) * EW
      if (E[b + E_LO] === lo && E[b + E_HI] === hi) return true
    }
  }

  /** The active listing's kind and version, or undefined (also for a removed one). */
  get(id: string): { listKind: ListKind; version: number } | undefined {
    parseUuid(id)
    const slot = this.findSlot(W0, W1, W2, W3)
    if (slot < 0) return undefined
    const k = this.state(slot)
    return k === DISHONEST || k === RESTRICTED ? { listKind: KIND_NAMES[k]!, version: this.slots[slot * SW + S_VER]! >>> 0 } : undefined
  }

  // ----- slots ---------------------------------------------------------------------------------

  private state(s: number): number { return this.slots[s * SW + S_LINK]! & 7 }
  private setState(s: number, state: number): void { const i = s * SW + S_LINK; this.slots[i] = (this.slots[i]! & ~7) | state }
  private link(s: number): number { return this.slots[s * SW + S_LINK]! >>> 3 }
  private setLink(s: number, link: number): void { const i = s * SW + S_LINK; this.slots[i] = (link << 3) | (this.slots[i]! & 7) }

  /** The slot's uuid, canonical lower case (written as ASCII into a scratch buffer: one flat string). */
  private idString(s: number): string {
    const b = s * SW, S = this.slots, o = ID_CHARS
    hexInto(o, 0, S[b]!)
    const c = S[b + 1]!, d = S[b + 2]!
    hexInto(o, 9, c >>> 16, 4)
    hexInto(o, 14, c, 4)
    hexInto(o, 19, d >>> 16, 4)
    hexInto(o, 24, d, 4)
    hexInto(o, 28, S[b + 3]!)
    return o.toString('latin1', 0, 36)
  }

  private reserveSlot(): void {
    if (this.freeSlot === 0 && this.slotTop === this.slotCap) {
      if (this.slotTop >= MAX_SLOTS) throw new RangeError('match index: too many listings')
      this.slotCap = Math.min(MAX_SLOTS, Math.max(this.slotTop + 16, Math.ceil(this.slotTop * 1.5)))
      this.slots = grown(this.slots, this.slotCap * SW)
    }
    if (this.idUsed + 1 > this.idTable.length * MAX_LOAD) this.rehashIds(this.idTable.length * 2)
  }

  /** A slot (after reserveSlot). */
  private allocSlot(): number {
    if (this.freeSlot !== 0) {
      const s = this.freeSlot - 1
      this.freeSlot = this.link(s)
      return s
    }
    return this.slotTop++
  }

  private freeSlotAt(s: number): void {
    const b = s * SW
    this.slots.fill(0, b, b + SW)
    this.slots[b + S_LINK] = (this.freeSlot << 3) | FREE
    this.freeSlot = s + 1
  }

  /** Puts a slot (without entries, in idTable) at the end of the removal queue; forgets the oldest beyond the limit. */
  private remember(s: number): void {
    this.slots[s * SW + S_LINK] = REMOVED
    if (this.removedTail === 0) this.removedHead = s + 1
    else this.setLink(this.removedTail - 1, s + 1)
    this.removedTail = s + 1
    this.removedCount++
    while (this.removedCount > this.removedLimit) {
      const old = this.removedHead - 1
      this.removedHead = this.link(old)
      if (this.removedHead === 0) this.removedTail = 0
      this.removedCount--
      if (this.state(old) === REMOVED) this.idDelete(old)
      this.freeSlotAt(old)
    }
  }

  private idHome(s: number): number {
    const b = s * SW, S = this.slots
    return mix(S[b]! ^ mix(S[b + 1]! ^ mix(S[b + 2]! ^ mix(S[b + 3]!))))
  }

  private findSlot(w0: number, w1: number, w2: number, w3: number): number {
    const t = this.idTable, m = this.idMask, S = this.slots
    const h = mix(w0 ^ mix(w1 ^ mix(w2 ^ mix(w3)))), tag = h >>> 29
    for (let i = h & m; ; i = (i + 1) & m) {
      const v = t[i]!
      if (v === 0) return -1
      if ((v & 7) !== tag) continue
      const s = (v >>> 3) - 1, b = s * SW
      if (S[b] === w0 && S[b + 1] === w1 && S[b + 2] === w2 && S[b + 3] === w3) return s
    }
  }

  private idInsert(s: number): void {
    const t = this.idTable, m = this.idMask, h = this.idHome(s)
    let i = h & m
    while (t[i] !== 0) i = (i + 1) & m
    t[i] = ((s + 1) << 3) | (h >>> 29)
    this.idUsed++
  }

  private idDelete(s: number): void {
    const t = this.idTable, m = this.idMask, h = this.idHome(s), v0 = ((s + 1) << 3) | (h >>> 29)
    let i = h & m
    while (t[i] !== v0) i = (i + 1) & m
    // Backward-shift deletion: pull later members of the run back over the hole.
    for (let j = (i + 1) & m; ; j = (j + 1) & m) {
      const v = t[j]!
      if (v === 0) break
      const home = this.idHome((v >>> 3) - 1) & m
      if (((j - home) & m) >= ((j - i) & m)) { t[i] = v; i = j }
    }
    t[i] = 0
    this.idUsed--
  }

  private rehashIds(buckets: number): void {
    const old = this.idTable
    this.idTable = new Int32Array(buckets)
    this.idMask = buckets - 1
    this.idUsed = 0
    // Walk the slots, not the old table: sequential reads instead of one cache miss per listing.
    for (let s = 0; s < this.slotTop; s++) {
      const state = this.state(s)
      if (state === DISHONEST || state === RESTRICTED || state === REMOVED) this.idInsert(s)
    }
    if (this.idUsed !== this.active + this.removedInTable()) throw new Error('match index corrupt: id table rebuilt with a wrong count')
  }

  /** Remembered removals still in the id table (the queue also holds superseded DEAD slots). */
  private removedInTable(): number {
    let n = 0
    for (let s = this.removedHead; s !== 0; s = this.link(s - 1)) if (this.state(s - 1) === REMOVED) n++
    return n
  }

  // ----- entries -------------------------------------------------------------------------------

  /** How many entries a slot has. */
  private entriesOf(s: number): number {
    const E = this.ents
    let n = 0
    for (let e = this.link(s) - 1; e >= 0; n++) {
      const l = E[e * EW + E_LINK]!
      e = l > 0 ? (l >>> 2) - 1 : -1
    }
    return n
  }

  /** Room for n more live entries (n may be negative), in the entry records and the key table. */
  private reserveEntries(n: number): void {
    if (this.freeEntries + this.entryCap - this.entryTop < n) {
      const need = this.entryTop + n - this.freeEntries
      if (need > MAX_ENTRIES) throw new RangeError('match index: too many entries')
      this.entryCap = Math.min(MAX_ENTRIES, Math.max(need, Math.ceil(this.entryCap * 1.5)))
      this.ents = grown(this.ents, this.entryCap * EW)
    }
    if (this.liveEntries + n > this.keyTable.length * MAX_LOAD) this.rehashKeys(tableSize(this.liveEntries + n))
  }

  private allocEntry(): number {
    if (this.freeEntry !== 0) {
      const e = this.freeEntry - 1
      this.freeEntry = this.ents[e * EW + E_LINK]! >>> 2
      this.freeEntries--
      return e
    }
    return this.entryTop++
  }

  /** Removes all of a slot's entries from the key table and frees them. */
  private unlinkEntries(s: number): void {
    const E = this.ents
    let e = this.link(s) - 1
    while (e >= 0) {
      const l = E[e * EW + E_LINK]!
      this.keyDelete(e)
      E[e * EW + E_LINK] = (this.freeEntry << 2) | FREE_ROLE
      this.freeEntry = e + 1
      this.freeEntries++
      e = l > 0 ? (l >>> 2) - 1 : -1
    }
    this.setLink(s, 0)
  }

  private keyInsert(e: number): void {
    const t = this.keyTable, m = this.keyMask, E = this.ents
    const lo = E[e * EW + E_LO]!, hi = E[e * EW + E_HI]!
    const h = mix(lo ^ hi), tag = h >>> 29
    let seen = false
    let i = h & m
    for (let v = t[i]!; v !== 0; v = t[i]!) {
      if (!seen && (v & 7) === tag) {
        const b = ((v >>> 3) - 1) * EW
        if (E[b + E_LO] === lo && E[b + E_HI] === hi) seen = true
      }
      i = (i + 1) & m
    }
    t[i] = ((e + 1) << 3) | tag
    this.liveEntries++
    if (!seen) this.distinctKeys++
  }

  private keyDelete(e: number): void {
    const t = this.keyTable, m = this.keyMask, E = this.ents
    const lo = E[e * EW + E_LO]!, hi = E[e * EW + E_HI]!
    // Every entry with this hash is in the run from its home bucket to the next empty one.
    const h = mix(lo ^ hi), tag = h >>> 29, mine = ((e + 1) << 3) | tag
    let at = -1
    let others = false
    for (let i = h & m; ; i = (i + 1) & m) {
      const v = t[i]!
      if (v === 0) break
      if (v === mine) at = i
      else if (!others && (v & 7) === tag) {
        const b = ((v >>> 3) - 1) * EW
        if (E[b + E_LO] === lo && E[b + E_HI] === hi) others = true
      }
    }
    if (at < 0) throw new Error('match index corrupt: entry not in key table')
    let i = at
    for (let j = (i + 1) & m; ; j = (j + 1) & m) {
      const v = t[j]!
      if (v === 0) break
      const b = ((v >>> 3) - 1) * EW
      const home = mix(E[b + E_LO]! ^ E[b + E_HI]!) & m
      if (((j - home) & m) >= ((j - i) & m)) { t[i] = v; i = j }
    }
    t[i] = 0
    this.liveEntries--
    if (!others) this.distinctKeys--
  }

  private rehashKeys(buckets: number): void {
    const E = this.ents
    this.keyTable = new Int32Array(buckets)
    this.keyMask = buckets - 1
    const t = this.keyTable, m = this.keyMask
    // Walk the entries, not the old table: sequential reads.
    for (let e = 0; e < this.entryTop; e++) {
      const b = e * EW
      const l = E[b + E_LINK]!
      if (l > 0 && (l & 3) === FREE_ROLE) continue
      const h = mix(E[b + E_LO]! ^ E[b + E_HI]!)
      let i = h & m
      while (t[i] !== 0) i = (i + 1) & m
      t[i] = ((e + 1) << 3) | (h >>> 29)
    }
  }
}
