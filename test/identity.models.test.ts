import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { projectPath } from '../src/infra/paths.js'
import {
  CASE_NUMBER_PATTERN,
  DEFAULT_MIN_BIRTH_YEAR,
  ENFORCEMENT_CASE_TYPES,
  IDENTITY_ERROR_CODES as E,
  IDENTITY_WARNING_CODES as W,
  InvalidIdentifierError,
  ORG_CODE_WEIGHTS,
  PROVINCE_CODES,
  RESIDENT_ID_WEIGHTS,
  USCC_ALPHABET,
  USCC_WEIGHTS,
  createIdentifierHasher,
  creditCodeCheckChar,
  maskCreditCode,
  maskName,
  maskResidentId,
  matchKeyForOrgCode,
  matchKeysForCreditCode,
  orgCodeCheckChar,
  parseCaseNumber,
  parseCreditCode,
  parseOrgCode,
  parseResidentId,
  residentIdCheckChar,
} from '../src/modules/identity/identity.models.js'

/** A fixed "today" so the not-in-the-future rule is deterministic. */
const TODAY = '2025-06-01'

interface Vectors {
  residentId: { valid: string[]; invalid: { value: string; why: string }[]; from15: { from: string; to: string }[] }
  uscc: { valid: { value: string; orgCode: string }[]; invalid: { value: string; why: string }[] }
}
const vectors = JSON.parse(readFileSync(projectPath('..', 'shared', 'vectors', 'identifiers.json'), 'utf8')) as Vectors

/** Deterministic PRNG (mulberry32) for the property checks. */
function mulberry32(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

// ---------------------------------------------------------------------------------------------
// The algorithms' constants, against their defining formulas (domain.md §6.1, §6.2)
// ---------------------------------------------------------------------------------------------

t.test('weights follow their defining formulas', async (t) => {
  t.same([...RESIDENT_ID_WEIGHTS], Array.from({ length: 17 }, (_, i) => 2 ** (17 - i) % 11), 'GB 11643: 2^(18−i) mod 11')
  t.same([...USCC_WEIGHTS], Array.from({ length: 17 }, (_, i) => Number(3n ** BigInt(i) % 31n)), 'GB 32100: 3^(i−1) mod 31')
  t.same([...ORG_CODE_WEIGHTS], [3, 7, 9, 10, 5, 8, 4, 2], 'GB 11714')
  t.equal(USCC_ALPHABET.length, 31)
  for (const c of 'IOSVZ') t.notOk(USCC_ALPHABET.includes(c), `${c} is not in the GB 32100 alphabet`)
  t.equal(PROVINCE_CODES.size, 34)
})

// ---------------------------------------------------------------------------------------------
// ../shared/vectors/identifiers.json
// ---------------------------------------------------------------------------------------------

/** The reason each invalid vector fails, as an error code; every vector in the file must be listed. */
const RESIDENT_INVALID_CODES: Record<string, string> = {
  '110101199003071230': E.idCheckDigit, // wrong check character
  '110101199002301236': E.idBirthDate, // 1990-02-30
  '420106190002290016': E.idBirthDate, // 1900-02-29 (1900 not a leap year)
  '990101199003071237': E.idRegion, // prefix 99
  '1101051949123100': E.idLength, // length 16
  '11010519491231002Y': E.idCharset, // check character Y
}
const USCC_INVALID_CODES: Record<string, string> = {
  '911100008021004330': E.usccCheckDigit,
  '91350100M000100Y4I': E.usccCharset,
  '91350100M000100Y4': E.usccLength,
  '9135010OM000100Y4Z': E.usccCharset,
}

t.test('vectors: valid resident identity numbers', async (t) => {
  t.ok(vectors.residentId.valid.length > 0)
  for (const v of vectors.residentId.valid) {
    const r = parseResidentId(v, { today: TODAY })
    t.ok(r.ok, `${v} is valid`)
    if (!r.ok) continue
    t.equal(r.value, v)
    t.equal(r.convertedFrom15, undefined)
    t.equal(residentIdCheckChar(v.slice(0, 17)), v[17], `${v}: check character`)
    t.equal(r.birthDate, `${v.slice(6, 10)}-${v.slice(10, 12)}-${v.slice(12, 14)}`)
    t.equal(r.sex, Number(v[16]) % 2 === 1 ? 'male' : 'female')
    t.equal(r.regionCode, v.slice(0, 6))
  }
})

t.test('vectors: invalid resident identity numbers fail for the stated reason', async (t) => {
  for (const { value, why } of vectors.residentId.invalid) {
    const expected = RESIDENT_INVALID_CODES[value]
    t.ok(expected, `vector ${value} (${why}) has an expected code in this test`)
    const r = parseResidentId(value, { today: TODAY })
    t.equal(r.ok, false, `${value} is refused`)
    if (!r.ok) t.equal(r.code, expected, `${value}: ${why}`)
    if (/check character correct/.test(why)) {
      t.equal(residentIdCheckChar(value.slice(0, 17)), value[17], `${value}: the vector's check character is indeed correct`)
    }
  }
})

t.test('vectors: 15-digit numbers convert to 18', async (t) => {
  for (const { from, to } of vectors.residentId.from15) {
    const r = parseResidentId(from, { today: TODAY })
    t.ok(r.ok, from)
    if (!r.ok) continue
    t.equal(r.value, to)
    t.equal(r.convertedFrom15, true)
    t.equal(parseResidentId(to, { today: TODAY }).ok, true, `${to} is itself valid`)
  }
})

t.test('vectors: valid credit codes, their organisation codes and match keys', async (t) => {
  t.ok(vectors.uscc.valid.length > 0)
  for (const { value, orgCode } of vectors.uscc.valid) {
    const r = parseCreditCode(value)
    t.ok(r.ok, `${value} is valid`)
    if (!r.ok) continue
    t.equal(r.value, value)
    t.equal(r.orgCode, orgCode, `${value}: org code at positions 9–17`)
    t.same(r.warnings, [], `${value}: no warnings`)
    t.equal(r.registrationAuthority, value[0])
    t.equal(r.entityType, value[1])
    t.equal(r.regionCode, value.slice(2, 8))
    t.equal(creditCodeCheckChar(value.slice(0, 17)), value[17])
    t.equal(orgCodeCheckChar(orgCode.slice(0, 8)), orgCode[8], `${orgCode}: GB 11714 check`)
    t.same(matchKeysForCreditCode(value), [value, `org:${orgCode}`])
    t.equal(matchKeyForOrgCode(orgCode), `org:${orgCode}`)
    t.equal(matchKeyForOrgCode(`${orgCode.slice(0, 8)}-${orgCode[8]}`), `org:${orgCode}`, 'hyphenated legacy form, same key')
    t.equal(matchKeyForOrgCode(orgCode.toLowerCase()), `org:${orgCode}`, 'lower case, same key')
  }
})

t.test('vectors: invalid credit codes fail for the stated reason', async (t) => {
  for (const { value, why } of vectors.uscc.invalid) {
    const expected = USCC_INVALID_CODES[value]
    t.ok(expected, `vector ${value} (${why}) has an expected code in this test`)
    const r = parseCreditCode(value)
    t.equal(r.ok, false, `${value} is refused`)
    if (!r.ok) t.equal(r.code, expected, `${value}: ${why}`)
  }
  const i = parseCreditCode('91350100M000100Y4I')
  t.match(i, { ok: false, message: /"I" at position 18/ }, 'the bad character is named')
  const oz = parseCreditCode('9135010OM000100Y4Z')
  t.match(oz, { ok: false, message: /"O" at position 8.*"Z" at position 18/ }, 'every bad character is named')
  t.match(parseCreditCode('911100008021004330'), { ok: false, message: /expected B/ })
})

// ---------------------------------------------------------------------------------------------
// domain.md §6 tables
// ---------------------------------------------------------------------------------------------

t.test('domain.md §6.1: valid examples', async (t) => {
  const cases: [string, string, 'male' | 'female'][] = [
    ['11010519491231002X', '1949-12-31', 'female'],
    ['440524188001010014', '1880-01-01', 'male'],
    ['310104198506151237', '1985-06-15', 'male'],
    ['420106200002290469', '2000-02-29', 'female'],
  ]
  for (const [id, birthDate, sex] of cases) {
    t.match(parseResidentId(id, { today: TODAY }), { ok: true, value: id, birthDate, sex, regionCode: id.slice(0, 6) }, id)
  }
})

t.test('domain.md §6.1: invalid examples', async (t) => {
  const cases: [string, string][] = [
    ['110105194912310021', E.idCheckDigit], // check character should be X
    ['11010519490231002X', E.idBirthDate], // 31 February
    ['44052418800101001A', E.idCharset], // illegal final character
    ['4405241880010100', E.idLength], // 16 digits
  ]
  for (const [id, code] of cases) t.match(parseResidentId(id, { today: TODAY }), { ok: false, code }, id)
  t.match(parseResidentId('110105194912310021', { today: TODAY }), { message: /expected X/ })
})

t.test('domain.md §6.2: valid and invalid examples', async (t) => {
  t.match(parseCreditCode('91350100M000100Y43'), { ok: true, orgCode: 'M000100Y4', registrationAuthority: '9', entityType: '1', regionCode: '350100', warnings: [] })
  t.match(parseCreditCode('91110105MA01ABCD5F'), { ok: true, orgCode: 'MA01ABCD5', regionCode: '110105', warnings: [] })
  t.match(parseCreditCode('52310000MJ000000XA'), { ok: true, orgCode: 'MJ000000X', registrationAuthority: '5', warnings: [] })
  t.equal(orgCodeCheckChar('MJ000000'), 'X', 'organisation-code check = X')
  t.match(parseCreditCode('91350100M000100Y44'), { ok: false, code: E.usccCheckDigit, message: /expected 3/ })
  t.match(parseCreditCode('91350100M000100Y4I'), { ok: false, code: E.usccCharset, message: /"I"/ })
  t.match(parseCreditCode('9135010OM000100Y43'), { ok: false, code: E.usccCharset, message: /"O" at position 8/ })
  // Legacy organisation code from §6.2, printed with its hyphen.
  t.same(parseOrgCode('M000100Y-4'), { ok: true, value: 'M000100Y4', warnings: [] })
  t.equal(matchKeyForOrgCode('M000100Y-4'), matchKeysForCreditCode('91350100M000100Y43')[1], 'the old code finds the listing under the new one')
})

t.test('domain.md §6.3: case numbers', async (t) => {
  t.same(parseCaseNumber('（2019）京0105执1234号'), {
    ok: true, legacy: false, value: '（2019）京0105执1234号', year: 2019, courtCode: '京0105', courtLevel: 'basic', caseType: '执', sequence: 1234,
  })
  t.same(parseCaseNumber('（2020）沪01执恢12号'), {
    ok: true, legacy: false, value: '（2020）沪01执恢12号', year: 2020, courtCode: '沪01', courtLevel: 'intermediate', caseType: '执恢', sequence: 12,
  })
  t.same(parseCaseNumber('（2021）最高法执监5号'), {
    ok: true, legacy: false, value: '（2021）最高法执监5号', year: 2021, courtCode: '最高法', courtLevel: 'supreme', caseType: '执监', sequence: 5,
  })
  t.match(parseCaseNumber('(2019)皖1122执1194号'), { ok: true, value: '（2019）皖1122执1194号', courtCode: '皖1122', sequence: 1194 }, 'the feed\'s ASCII brackets, normalised to full width')
  for (const bad of ['（2019）京0105民初1234号', '（19）京0105执1234号', '（2019）京105执1234号']) {
    t.match(parseCaseNumber(bad), { ok: false, code: E.caseNumber }, bad)
  }
  t.same(parseCaseNumber('(2014)朝执字第12345号'), { ok: true, legacy: true, value: '（2014）朝执字第12345号', year: 2014 }, 'legacy, not rejected')
})

// ---------------------------------------------------------------------------------------------
// Resident identity number: own cases
// ---------------------------------------------------------------------------------------------

t.test('resident id: normalisation and the 15-digit form', async (t) => {
  t.match(parseResidentId('  11010519491231002x\n', { today: TODAY }), { ok: true, value: '11010519491231002X' }, 'trimmed, x → X')
  t.match(parseResidentId('65010219780615887x', { today: TODAY }), { ok: true, value: '65010219780615887X' })
  t.match(parseResidentId(' 440524800101001 ', { today: TODAY }), { ok: true, value: '440524198001010013', birthDate: '1980-01-01', sex: 'male', convertedFrom15: true })
  t.match(parseResidentId('11010549123100X', { today: TODAY }), { ok: false, code: E.idCharset }, 'no X in the 15-digit form')
  t.match(parseResidentId('990101800101001', { today: TODAY }), { ok: false, code: E.idRegion })
  t.match(parseResidentId('110105490231002', { today: TODAY }), { ok: false, code: E.idBirthDate }, '15-digit 1949-02-31')
  t.match(parseResidentId('110105000229002', { today: TODAY }), { ok: false, code: E.idBirthDate }, '15-digit 00 means 1900, and 1900-02-29 does not exist')
  t.match(parseResidentId('110105960229002', { today: TODAY }), { ok: true, value: '11010519960229002X', birthDate: '1996-02-29' })
})

t.test('resident id: own computed vectors', async (t) => {
  // Computed with residentIdCheckChar after the standard vectors above passed.
  const valid: [string, string, 'male' | 'female'][] = [
    ['50010120040229001X', '2004-02-29', 'male'], // Chongqing, leap day
    ['110101199602291238', '1996-02-29', 'male'],
    ['810000199001011230', '1990-01-01', 'male'], // 81 Hong Kong
    ['710000198005150002', '1980-05-15', 'female'], // 71 Taiwan
    ['460100202312310099', '2023-12-31', 'male'], // Hainan
    ['110105194912310011', '1949-12-31', 'male'],
  ]
  for (const [id, birthDate, sex] of valid) t.match(parseResidentId(id, { today: TODAY }), { ok: true, value: id, birthDate, sex }, id)
})

t.test('resident id: every non-province prefix is refused, even with a correct check character', async (t) => {
  const cases = ['100101199003071231', '160101199003071232', '200101199003071235', '240101199003071232', '300101199003071239',
    '380101199003071233', '470101199003071235', '550101199003071235', '60010119900307123X', '660101199003071230',
    '700101199003071233', '720101199003071237', '800101199003071237', '830101199003071232', '900101199003071230']
  for (const id of cases) {
    t.equal(residentIdCheckChar(id.slice(0, 17)), id[17], `${id}: check character correct`)
    t.match(parseResidentId(id, { today: TODAY }), { ok: false, code: E.idRegion }, id)
  }
  for (let p = 0; p < 100; p++) {
    const prefix = String(p).padStart(2, '0')
    const first17 = prefix + '0101199003071' + '23'
    const r = parseResidentId(first17 + residentIdCheckChar(first17), { today: TODAY })
    t.equal(r.ok, PROVINCE_CODES.has(prefix), `prefix ${prefix}`)
  }
})

t.test('resident id: birth dates', async (t) => {
  const impossible = [
    '110101199000011235', // month 00
    '110101199013011234', // month 13
    '110101199001001231', // day 00
    '110101199004311235', // 31 April
    '110101202302291230', // 2023 is not a leap year
  ]
  for (const id of impossible) {
    t.equal(residentIdCheckChar(id.slice(0, 17)), id[17], `${id}: check character correct`)
    t.match(parseResidentId(id, { today: TODAY }), { ok: false, code: E.idBirthDate }, id)
  }
  t.match(parseResidentId('110101200402291239', { today: TODAY }), { ok: true, birthDate: '2004-02-29' }, '2004 is a leap year')
  t.match(parseResidentId('420106200002290012', { today: TODAY }), { ok: true }, '2000 is a leap year (divisible by 400)')
  t.match(parseResidentId('110101210001011231', { today: TODAY }), { ok: false, code: E.idBirthDate, message: /future/ }, '2100')
  t.match(parseResidentId('110101202506011245', { today: TODAY }), { ok: true, birthDate: '2025-06-01' }, 'born today')
  t.match(parseResidentId('110101202506021240', { today: TODAY }), { ok: false, code: E.idBirthDate, message: /future/ }, 'born tomorrow')
  // A Date is read in China Standard Time: 2025-05-31T16:30Z is already 2025-06-01 in Beijing.
  t.match(parseResidentId('110101202506011245', { today: new Date('2025-05-31T16:30:00Z') }), { ok: true })
  t.match(parseResidentId('110101202506011245', { today: new Date('2025-05-31T15:30:00Z') }), { ok: false, code: E.idBirthDate })
  t.match(parseResidentId('110101202506011245'), { ok: true }, 'default today is the current date (past 2025-06-01)')
  t.throws(() => parseResidentId('110101202506011245', { today: '1 June 2025' }), RangeError)
  // The year floor: the standard's own 1880 example is valid by default (see DEFAULT_MIN_BIRTH_YEAR).
  t.equal(DEFAULT_MIN_BIRTH_YEAR, 1800)
  t.match(parseResidentId('440524188001010014', { today: TODAY, minBirthYear: 1900 }), { ok: false, code: E.idBirthDate, message: /before 1900/ })
  const y1799 = '11010517991231001'
  t.match(parseResidentId(y1799 + residentIdCheckChar(y1799), { today: TODAY }), { ok: false, code: E.idBirthDate })
})

t.test('resident id: length and charset come first, masked numbers are refused', async (t) => {
  t.match(parseResidentId('', { today: TODAY }), { ok: false, code: E.idLength })
  t.match(parseResidentId('11010519491231002XX', { today: TODAY }), { ok: false, code: E.idLength })
  t.match(parseResidentId('3423011964****3224', { today: TODAY }), { ok: false, code: E.idCharset, message: /"\*" at position 11/ })
  t.match(parseResidentId('1101051949123100X2', { today: TODAY }), { ok: false, code: E.idCharset, message: /position 17/ })
  t.match(parseResidentId('１１０１０５１９４９１２３１００２Ｘ', { today: TODAY }), { ok: false, code: E.idCharset }, 'full-width digits are not silently accepted')
  t.throws(() => residentIdCheckChar('1101051949123100'), InvalidIdentifierError)
  t.throws(() => residentIdCheckChar('1101051949123100A'), InvalidIdentifierError)
})

t.test('resident id check character matches an independent implementation of ISO 7064 MOD 11-2', async (t) => {
  // ISO 7064 MOD 11-2 as the pure recursive system: p = (p + d) * 2 mod 11, check = (12 − p) mod 11.
  const reference = (first17: string) => {
    let p = 0
    for (const c of first17) p = ((p + Number(c)) * 2) % 11
    const v = (12 - p) % 11
    return v === 10 ? 'X' : String(v)
  }
  const rnd = mulberry32(7)
  const mismatches: string[] = []
  for (let n = 0; n < 5000; n++) {
    const s = Array.from({ length: 17 }, () => String(Math.floor(rnd() * 10))).join('')
    if (residentIdCheckChar(s) !== reference(s)) mismatches.push(s)
  }
  t.same(mismatches, [])
})

t.test('property: 1000 random valid numbers; every single-digit change and adjacent swap is caught', async (t) => {
  const rnd = mulberry32(20250601)
  const provinces = [...PROVINCE_CODES]
  const start = Date.UTC(1900, 0, 1)
  const end = Date.UTC(2025, 5, 1)
  const pad = (n: number, w: number) => String(n).padStart(w, '0')
  const failures: string[] = []
  let mutations = 0
  for (let n = 0; n < 1000; n++) {
    const prov = provinces[Math.floor(rnd() * provinces.length)]!
    const region = prov + pad(Math.floor(rnd() * 10000), 4)
    const birth = new Date(start + Math.floor(rnd() * ((end - start) / 86400000 + 1)) * 86400000).toISOString().slice(0, 10)
    const seq = pad(Math.floor(rnd() * 1000), 3)
    const first17 = region + birth.replaceAll('-', '') + seq
    const id = first17 + residentIdCheckChar(first17)
    const r = parseResidentId(id, { today: TODAY })
    if (!r.ok || r.value !== id || r.birthDate !== birth || r.sex !== (Number(seq[2]) % 2 ? 'male' : 'female') || r.regionCode !== region) {
      failures.push(`valid ${id}: ${JSON.stringify(r)}`)
      continue
    }
    for (let i = 0; i < 18; i++) {
      const alternatives = i === 17 ? '0123456789X' : '0123456789'
      for (const c of alternatives) {
        if (c === id[i]) continue
        const mutated = id.slice(0, i) + c + id.slice(i + 1)
        mutations++
        const m = parseResidentId(mutated, { today: TODAY })
        if (m.ok) failures.push(`${id} → ${mutated} accepted`)
        // Outside the province and date digits only the check character can catch it.
        else if ((i >= 2 && i <= 5) || i >= 14) {
          if (m.code !== E.idCheckDigit) failures.push(`${id} → ${mutated}: ${m.code}`)
        }
      }
    }
    for (let i = 0; i < 16; i++) {
      if (id[i] === id[i + 1]) continue
      const swapped = id.slice(0, i) + id[i + 1] + id[i] + id.slice(i + 2)
      mutations++
      if (parseResidentId(swapped, { today: TODAY }).ok) failures.push(`${id} → ${swapped} (swap) accepted`)
    }
  }
  t.same(failures, [], 'no counterexamples')
  t.ok(mutations > 150000, `${mutations} mutations checked`)
})

// ---------------------------------------------------------------------------------------------
// Credit codes and organisation codes: own cases
// ---------------------------------------------------------------------------------------------

t.test('credit code: normalisation, own vectors, warnings', async (t) => {
  t.match(parseCreditCode(' 91350100m000100y43 '), { ok: true, value: '91350100M000100Y43' }, 'trimmed and upper-cased')
  // Own vectors, computed with creditCodeCheckChar after the standard vectors passed.
  // The warning case: MOD 31 check right, embedded GB 11714 check wrong (M000100Y5, should be 4).
  t.same(parseCreditCode('91350100M000100Y56'), {
    ok: true, value: '91350100M000100Y56', orgCode: 'M000100Y5', registrationAuthority: '9', entityType: '1', regionCode: '350100',
    warnings: [W.usccOrgCodeCheckDigit],
  })
  t.same(matchKeysForCreditCode('91350100M000100Y56'), ['91350100M000100Y56', 'org:M000100Y5'], 'still matchable by its embedded code')
  t.match(parseCreditCode('B11100008021004339'), { ok: true, registrationAuthority: 'B', warnings: [W.usccUnknownAuthority] })
  t.match(parseCreditCode('911A0000802100433G'), { ok: true, regionCode: '1A0000', warnings: [W.usccRegionFormat] })
  t.match(parseCreditCode(''), { ok: false, code: E.usccLength })
  t.match(parseCreditCode('91350100M000100Y430'), { ok: false, code: E.usccLength })
  t.match(parseCreditCode('91350100M000100-43'), { ok: false, code: E.usccCharset, message: /"-" at position 16/ })
  t.throws(() => creditCodeCheckChar('91350100M000100Y'), InvalidIdentifierError)
  t.throws(() => creditCodeCheckChar('9135010OM000100Y4'), InvalidIdentifierError)
  t.throws(() => matchKeysForCreditCode('91350100M000100Y44'), { code: E.usccCheckDigit })
})

t.test('organisation codes: both printed forms, check character as a warning', async (t) => {
  t.equal(orgCodeCheckChar('M000100Y'), '4')
  t.equal(orgCodeCheckChar('80210043'), '3')
  t.same(parseOrgCode('m000100y-4'), { ok: true, value: 'M000100Y4', warnings: [] })
  t.same(parseOrgCode(' 802100433 '), { ok: true, value: '802100433', warnings: [] })
  t.same(parseOrgCode('M000100Y-5'), { ok: true, value: 'M000100Y5', warnings: [W.orgCodeCheckDigit] })
  t.match(parseOrgCode('M000100Y4-'), { ok: false, code: E.orgCodeLength })
  t.match(parseOrgCode('M00010'), { ok: false, code: E.orgCodeLength })
  t.match(parseOrgCode('M000100Y_'), { ok: false, code: E.orgCodeCharset, message: /"_" at position 9/ })
  t.throws(() => matchKeyForOrgCode('M0001'), { code: E.orgCodeLength })
  t.throws(() => orgCodeCheckChar('M000100'), InvalidIdentifierError)
  // 11 − (S mod 11) = 11 is written 0, = 10 is written X.
  const rnd = mulberry32(11714)
  const seen = new Set<string>()
  for (let n = 0; n < 2000; n++) {
    const body = Array.from({ length: 8 }, () => '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'[Math.floor(rnd() * 36)]).join('')
    let s = 0
    for (let i = 0; i < 8; i++) s += parseInt(body[i]!, 36) * ORG_CODE_WEIGHTS[i]!
    const c = 11 - (s % 11)
    t.equal(orgCodeCheckChar(body), c === 10 ? 'X' : c === 11 ? '0' : String(c))
    seen.add(orgCodeCheckChar(body))
  }
  t.same([...seen].sort(), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'X'], 'all 11 check characters occur')
})

t.test('property: 1000 random credit codes; every single-character change is caught', async (t) => {
  const rnd = mulberry32(32100)
  const failures: string[] = []
  let mutations = 0
  for (let n = 0; n < 1000; n++) {
    const first17 = Array.from({ length: 17 }, () => USCC_ALPHABET[Math.floor(rnd() * 31)]).join('')
    const code = first17 + creditCodeCheckChar(first17)
    const r = parseCreditCode(code)
    if (!r.ok || r.value !== code || r.orgCode !== code.slice(8, 17)) {
      failures.push(`valid ${code}: ${JSON.stringify(r)}`)
      continue
    }
    const keys = matchKeysForCreditCode(code)
    if (keys[1] !== matchKeyForOrgCode(r.orgCode)) failures.push(`${code}: org key differs`)
    for (let i = 0; i < 18; i++) {
      for (const c of USCC_ALPHABET) {
        if (c === code[i]) continue
        mutations++
        const m = parseCreditCode(code.slice(0, i) + c + code.slice(i + 1))
        if (m.ok || m.code !== E.usccCheckDigit) failures.push(`${code}: position ${i + 1} → ${c} not caught`)
      }
    }
  }
  t.same(failures, [])
  t.equal(mutations, 1000 * 18 * 30)
})

t.test('a resident number and a credit code can be the same string: keys alone do not tell the subject kind', async (t) => {
  // Found by search with the functions above: valid under both GB 11643 and GB 32100.
  const both = '110105198001010518'
  t.match(parseResidentId(both, { today: TODAY }), { ok: true, birthDate: '1980-01-01' })
  t.match(parseCreditCode(both), { ok: true, registrationAuthority: '1', warnings: [W.usccOrgCodeCheckDigit] })
})

// ---------------------------------------------------------------------------------------------
// Case numbers: own cases
// ---------------------------------------------------------------------------------------------

t.test('case numbers: brackets, types, courts, sequences, legacy', async (t) => {
  t.equal(CASE_NUMBER_PATTERN.source.includes('(执恢|执保|执异|执复|执监|执协|执他|执)'), true, 'domain.md §6.3 regex, longer codes first')
  for (const type of ENFORCEMENT_CASE_TYPES) {
    t.match(parseCaseNumber(`（2022）粤03${type}7号`), { ok: true, caseType: type, courtCode: '粤03', sequence: 7 }, type)
  }
  t.match(parseCaseNumber('（2020）粤执5号'), { ok: true, courtCode: '粤', courtLevel: 'high' })
  t.match(parseCaseNumber('（2020）兵执5号'), { ok: true, courtCode: '兵', courtLevel: 'high' })
  t.match(parseCaseNumber('（2020）内0102执恢88号'), { ok: true, courtCode: '内0102', courtLevel: 'basic', caseType: '执恢' })
  t.match(parseCaseNumber('(2020）沪01执恢12号'), { ok: true, value: '（2020）沪01执恢12号' }, 'mixed brackets')
  t.match(parseCaseNumber('（2020)沪01执恢12号'), { ok: true, value: '（2020）沪01执恢12号' })
  t.match(parseCaseNumber('  （2019）京0105执1234号\t'), { ok: true, value: '（2019）京0105执1234号' }, 'trimmed')
  const bad = [
    '（2019）京0105执0号', // sequence starts at 1
    '（2019）京0105执012号', // no leading zero
    '（2019）京0105执1234', // no 号
    '2019京0105执1234号', // no brackets
    '【2019】京0105执1234号', // wrong brackets
    '（2019）京0105执 1234号', // inner space
    '（2019）京01050执1234号', // five-digit court code
    '（2019）港0105执1234号', // not a court abbreviation
    '（2019）京0105刑初1234号', // criminal
    '（2019）京0105执一千号',
    '',
    '（2019）京0105执99999999999999999999号', // beyond a safe integer
  ]
  for (const s of bad) t.match(parseCaseNumber(s), { ok: false, code: E.caseNumber }, s)
  t.same(parseCaseNumber('（2015）京二中执字第12号'), { ok: true, legacy: true, value: '（2015）京二中执字第12号', year: 2015 })
  t.match(parseCaseNumber('(2016)朝执字第12345号'), { ok: false, code: E.caseNumber, message: /predate 2016/ }, 'the old form after the rules took effect')
})

// ---------------------------------------------------------------------------------------------
// Masking (domain.md §7.1, §11)
// ---------------------------------------------------------------------------------------------

t.test('masking', async (t) => {
  t.equal(maskResidentId('342301196405153224'), '3423011964****3224', 'domain.md §7.1 example shape')
  t.equal(maskResidentId('11010519491231002x'), '1101051949****002X')
  t.equal(maskResidentId('110105491231002'), '11010549****002', '15-digit: month and day')
  t.equal(maskResidentId('not-an-id'), '*********', 'malformed values are masked entirely')
  t.equal(maskCreditCode('91350100M000100Y43'), '91350100M000100Y43', 'shown in full by default (domain.md §11)')
  t.equal(maskCreditCode('91350100m000100y43', { mask: false }), '91350100M000100Y43')
  t.equal(maskCreditCode('91350100M000100Y43', { mask: true }), '91350100********43')
  t.equal(maskCreditCode('short', { mask: true }), '*****')
  t.equal(maskName('张三'), '张*')
  t.equal(maskName('欧阳娜娜'), '欧***', 'first character only; compound surnames not recognised')
  t.equal(maskName('买买提·艾力'), '买**·**', 'the separator stays')
  t.equal(maskName('张𠈌'), '张*', 'a character outside the BMP counts once')
  t.equal(maskName('李'), '*', 'a one-character name is masked entirely')
  t.equal(maskName(''), '')
})

// ---------------------------------------------------------------------------------------------
// Keyed hash
// ---------------------------------------------------------------------------------------------

t.test('identifier hasher', async (t) => {
  t.throws(() => createIdentifierHasher('a'.repeat(31)), RangeError)
  t.throws(() => createIdentifierHasher(Buffer.alloc(31)), RangeError)
  t.throws(() => createIdentifierHasher(''), RangeError)
  t.doesNotThrow(() => createIdentifierHasher('密'.repeat(11)), 'a string secret is measured in UTF-8 bytes (33)')
  // RFC 4231 test case 6 (131-byte key), an independent HMAC-SHA-256 vector.
  const rfc = createIdentifierHasher(Buffer.alloc(131, 0xaa))
  t.equal(rfc('Test Using Larger Than Block-Size Key - Hash Key First'), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54')

  const secret = Buffer.from('0123456789abcdef0123456789abcdef')
  const hash = createIdentifierHasher(secret)
  const h = hash('11010519491231002X')
  t.match(h, /^[0-9a-f]{64}$/)
  t.equal(h, createHmac('sha256', '0123456789abcdef0123456789abcdef').update('11010519491231002X').digest('hex'))
  t.equal(hash('11010519491231002X'), h, 'deterministic, so log entries correlate')
  t.not(hash('11010519491231002x'), h, 'callers pass the normalised form')
  t.not(createIdentifierHasher('0123456789abcdef0123456789abcdeF')('11010519491231002X'), h, 'keyed')
  t.notOk(h.includes('11010519491231002X'))
  secret.fill(0)
  t.equal(hash('11010519491231002X'), h, 'later changes to the caller\'s buffer do not change the key')
})
