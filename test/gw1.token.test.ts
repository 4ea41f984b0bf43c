import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto'
import t, { type Test } from 'tap'
import {
  AuthError, decodeUnverified, GW1_TYP, MAX_TOKEN_LIFETIME_SECONDS, SHA256_OF_EMPTY, sha256b64url, tokenFromAuthorization,
  verifyGw1Token, verifySignature, type KeyEntry,
} from '../src/infra/gw1/token.js'

// Unit tests of the GW1 token checks (DESIGN.md "Principals and the request-signing protocol"),
// without a server or a database: keys live in a Map, tokens are assembled and signed by hand so
// that every field can be set to exactly what each case needs.

type Alg = 'ES256' | 'EdDSA' | 'RS256'
type Pair = { publicKey: KeyObject; privateKey: KeyObject }

const NOW = 1_800_000_000
const AUDIENCE = 'gw-unit'
const POLICY = { audience: AUDIENCE, clockSkewSeconds: 60 }
const REQUEST = { method: 'POST', url: '/v1/match?x=1', nowSeconds: NOW }
const BODY_HASH = sha256b64url('{"idNumber":"x"}')

const pairs: Record<Alg, Pair> & { otherEs: Pair; otherEd: Pair; otherRs: Pair } = {
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  EdDSA: generateKeyPairSync('ed25519'),
  RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  otherEs: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  otherEd: generateKeyPairSync('ed25519'),
  otherRs: generateKeyPairSync('rsa', { modulusLength: 2048 }),
}

const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

function rawSign(alg: Alg, privateKey: KeyObject, data: Buffer): Buffer {
  if (alg === 'ES256') return sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' })
  if (alg === 'RS256') return sign('sha256', data, privateKey)
  return sign(null, data, privateKey)
}

interface TestPrincipal { id: string }

/** kid → key; each entry also remembers the private half that signs tokens for it. */
const registry = new Map<string, KeyEntry<TestPrincipal> & { pair: Pair }>()
function register(kid: string, alg: Alg, pair: Pair, principalId: string, extra: { status?: 'active' | 'retired'; principalStatus?: 'active' | 'disabled' } = {}) {
  registry.set(kid, {
    kid, alg, pair, keyObject: pair.publicKey, principalId, principal: { id: principalId },
    status: extra.status ?? 'active', principalStatus: extra.principalStatus ?? 'active',
  })
}
register('a-es', 'ES256', pairs.ES256, 'agency-a')
register('a-ed', 'EdDSA', pairs.EdDSA, 'agency-a')
register('a-rs', 'RS256', pairs.RS256, 'agency-a')
register('a-old', 'ES256', pairs.otherEs, 'agency-a', { status: 'retired' })
register('b-es', 'ES256', pairs.otherEs, 'agency-b')
register('d-es', 'ES256', pairs.ES256, 'agency-d', { principalStatus: 'disabled' })

let lookups = 0
const lookupKey = async (kid: string) => { lookups++; return registry.get(kid) }

function claimsFor(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: 'agency-a', aud: AUDIENCE, iat: NOW, exp: NOW + 60, jti: randomUUID(), htm: 'POST', htu: '/v1/match?x=1', bsh: BODY_HASH,
    ...overrides,
  }
}

/**
 * A compact JWS for `kid` (signed with that kid's private key unless `signWith` says otherwise).
 * `undefined` in the overrides removes a member (JSON.stringify drops it).
 */
function token(kid: string, claimOverrides: Record<string, unknown> = {}, headerOverrides: Record<string, unknown> = {}, signWith?: { alg: Alg; pair: Pair }): string {
  const entry = registry.get(kid)
  const header = { alg: entry?.alg ?? 'ES256', kid, typ: GW1_TYP, ...headerOverrides }
  const input = `${b64json(header)}.${b64json(claimsFor(claimOverrides))}`
  const signer = signWith ?? { alg: (entry?.alg ?? 'ES256') as Alg, pair: entry?.pair ?? pairs.otherEs }
  return `${input}.${rawSign(signer.alg, signer.pair.privateKey, Buffer.from(input)).toString('base64url')}`
}

const verify = (tok: string, request = REQUEST) => verifyGw1Token(tok, request, POLICY, lookupKey)

/** Asserts the promise rejects with the AuthError for `code` (401 + WWW-Authenticate: GW1, unless 403). */
async function refused(t: Test, p: Promise<unknown>, code: string, message?: string) {
  try {
    await p
    t.fail(`expected auth.${code}`, { message })
  } catch (err) {
    t.ok(err instanceof AuthError, `${message ?? code}: an AuthError`)
    t.match(err, { code: `auth.${code}`, status: 401, extra: { headers: { 'www-authenticate': 'GW1' } } }, message ?? `auth.${code}`)
  }
}

function flipByte(b64: string, index = 0): string {
  const bytes = Buffer.from(b64, 'base64url')
  bytes[index] = bytes[index]! ^ 0x01
  return bytes.toString('base64url')
}

t.test('decodeUnverified', async (t) => {
  t.test('splits a compact JWS into header, claims, signing input and signature bytes', async (t) => {
    const tok = token('a-es', { jti: 'j-1' })
    const [h, p, s] = tok.split('.') as [string, string, string]
    const decoded = decodeUnverified(tok)
    t.same(decoded.header, { alg: 'ES256', kid: 'a-es', typ: GW1_TYP })
    t.equal(decoded.claims.jti, 'j-1')
    t.equal(decoded.claims.iss, 'agency-a')
    t.equal(decoded.signingInput, `${h}.${p}`)
    t.same(decoded.signature, Buffer.from(s, 'base64url'))
    t.equal(decoded.signature.length, 64)
  })

  t.test('accepts an empty signature part (the verifier refuses it later)', async (t) => {
    const decoded = decodeUnverified(`${b64json({ alg: 'none' })}.${b64json({})}.`)
    t.equal(decoded.signature.length, 0)
  })

  t.test('refuses a token longer than 8192 characters with auth.malformed_token', async (t) => {
    const long = `${b64json({ alg: 'ES256', pad: 'x'.repeat(9000) })}.${b64json({})}.AA`
    t.ok(long.length > 8192)
    t.throws(() => decodeUnverified(long), { code: 'auth.malformed_token', status: 401 })
  })

  t.test('refuses anything but three base64url parts with auth.malformed_token', async (t) => {
    const h = b64json({ alg: 'ES256' })
    const p = b64json({ iss: 'x' })
    for (const bad of ['', 'garbage', `${h}.${p}`, `${h}.${p}.AA.AA`, `${h}.${p}.AA+/`, `${h}.${p}.AA==`, `${h}.${p} .AA`, `${h}.${p}.A\u00e9`]) {
      t.throws(() => decodeUnverified(bad), { code: 'auth.malformed_token', status: 401 }, JSON.stringify(bad.slice(-12)))
    }
  })

  t.test('refuses a header or payload that is not a JSON object with auth.malformed_token', async (t) => {
    const obj = b64json({ alg: 'ES256' })
    const enc = (s: string) => Buffer.from(s).toString('base64url')
    for (const part of [enc('not json'), enc('[1,2]'), enc('null'), enc('42'), enc('"str"'), enc('{"a":1'), '']) {
      t.throws(() => decodeUnverified(`${part}.${obj}.AA`), { code: 'auth.malformed_token' }, `header ${part}`)
      t.throws(() => decodeUnverified(`${obj}.${part}.AA`), { code: 'auth.malformed_token' }, `payload ${part}`)
    }
  })

  t.test('its errors are 401 AuthErrors carrying WWW-Authenticate: GW1', async (t) => {
    try {
      decodeUnverified('x')
      t.fail('should throw')
    } catch (err) {
      t.ok(err instanceof AuthError)
      t.match(err, { code: 'auth.malformed_token', status: 401, extra: { headers: { 'www-authenticate': 'GW1' } } })
    }
  })
})

t.test('tokenFromAuthorization', async (t) => {
  t.test('a missing or empty header is auth.missing_token', async (t) => {
    t.throws(() => tokenFromAuthorization(undefined), { code: 'auth.missing_token', status: 401 })
    t.throws(() => tokenFromAuthorization(''), { code: 'auth.missing_token', status: 401 })
  })

  t.test('another scheme or shape is auth.malformed_token', async (t) => {
    for (const bad of ['Bearer a.b.c', 'Basic dXNlcjpwYXNz', 'GW1', 'GW1 ', 'GW1 a.b.c d', 'GW1a.b.c', 'GW1\ta.b.c', ' GW1 a.b.c', 'GW1 a.b.c ', 'GW2 a.b.c']) {
      t.throws(() => tokenFromAuthorization(bad), { code: 'auth.malformed_token', status: 401 }, JSON.stringify(bad))
    }
  })

  t.test('returns the token of "GW1 <jws>"', async (t) => {
    t.equal(tokenFromAuthorization('GW1 a.b.c'), 'a.b.c')
    t.equal(tokenFromAuthorization('GW1   a.b.c'), 'a.b.c')
  })
})

t.test('verifyGw1Token', async (t) => {
  t.test('accepts a correct token for each algorithm and returns its header, claims and key', async (t) => {
    for (const kid of ['a-es', 'a-ed', 'a-rs']) {
      const verified = await verify(token(kid, { jti: `ok-${kid}` }))
      t.equal(verified.header.kid, kid)
      t.equal(verified.header.alg, registry.get(kid)!.alg)
      t.equal(verified.claims.jti, `ok-${kid}`)
      t.equal(verified.claims.bsh, BODY_HASH)
      t.equal(verified.key.principalId, 'agency-a')
      t.same(verified.key.principal, { id: 'agency-a' })
    }
  })

  t.test('accepts a GET token whose bsh is the hash of the empty body', async (t) => {
    const verified = await verify(token('a-es', { htm: 'GET', htu: '/v1/whoami', bsh: SHA256_OF_EMPTY }), { method: 'GET', url: '/v1/whoami', nowSeconds: NOW })
    t.equal(verified.claims.bsh, '47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU')
  })

  t.test('a malformed header is auth.malformed_token, before any key look-up', async (t) => {
    const before = lookups
    await refused(t, verify(token('a-es', {}, { alg: undefined })), 'malformed_token', 'no alg')
    await refused(t, verify(token('a-es', {}, { alg: 42 })), 'malformed_token', 'alg not a string')
    await refused(t, verify(token('a-es', {}, { typ: undefined })), 'malformed_token', 'no typ')
    await refused(t, verify(token('a-es', {}, { typ: 'JWT' })), 'malformed_token', 'typ JWT')
    await refused(t, verify(token('a-es', {}, { typ: 'GW1+JWT' })), 'malformed_token', 'typ in other case')
    await refused(t, verify(token('a-es', {}, { kid: undefined })), 'malformed_token', 'no kid')
    await refused(t, verify(token('a-es', {}, { kid: '' })), 'malformed_token', 'empty kid')
    await refused(t, verify(token('a-es', {}, { kid: 7 })), 'malformed_token', 'kid not a string')
    await refused(t, verify(token('a-es', {}, { crit: ['b64'], b64: false })), 'malformed_token', 'crit')
    t.equal(lookups, before, 'no key was looked up')
  })

  t.test('a missing, empty or mistyped claim is auth.malformed_token, before any key look-up', async (t) => {
    const before = lookups
    for (const name of ['iss', 'aud', 'jti', 'htm', 'htu', 'bsh', 'iat', 'exp']) {
      await refused(t, verify(token('a-es', { [name]: undefined })), 'malformed_token', `missing ${name}`)
    }
    for (const name of ['iss', 'aud', 'jti', 'htm', 'htu', 'bsh']) {
      await refused(t, verify(token('a-es', { [name]: '' })), 'malformed_token', `empty ${name}`)
      await refused(t, verify(token('a-es', { [name]: 1 })), 'malformed_token', `numeric ${name}`)
    }
    await refused(t, verify(token('a-es', { aud: [AUDIENCE] })), 'malformed_token', 'aud as an array')
    await refused(t, verify(token('a-es', { iat: NOW + 0.5 })), 'malformed_token', 'fractional iat')
    await refused(t, verify(token('a-es', { exp: String(NOW + 60) })), 'malformed_token', 'exp as a string')
    await refused(t, verify(token('a-es', { jti: 'j'.repeat(129) })), 'malformed_token', 'jti of 129 characters')
    t.equal(lookups, before, 'no key was looked up')
  })

  t.test('a jti of exactly 128 characters is accepted', async (t) => {
    const verified = await verify(token('a-es', { jti: 'j'.repeat(128) }))
    t.equal(verified.claims.jti.length, 128)
  })

  t.test('exp not after iat is auth.malformed_token', async (t) => {
    await refused(t, verify(token('a-es', { exp: NOW })), 'malformed_token', 'exp = iat')
    await refused(t, verify(token('a-es', { exp: NOW - 1 })), 'malformed_token', 'exp < iat')
  })

  t.test('alg none, HS* and other algorithms are auth.alg_not_allowed, before any key look-up', async (t) => {
    const before = lookups
    const h = (alg: string) => b64json({ alg, kid: 'a-es', typ: GW1_TYP })
    const p = b64json(claimsFor())
    await refused(t, verify(`${h('none')}.${p}.`), 'alg_not_allowed', 'none with an empty signature')
    for (const alg of ['HS256', 'HS384', 'HS512', 'RS512', 'PS256', 'ES384', 'ES512', 'Ed25519', 'es256', 'NONE']) {
      await refused(t, verify(`${h(alg)}.${p}.${Buffer.alloc(32, 1).toString('base64url')}`), 'alg_not_allowed', alg)
    }
    t.equal(lookups, before, 'no key was looked up')
  })

  t.test('an unregistered kid is auth.unknown_key', async (t) => {
    await refused(t, verify(token('nobody-kid', {}, {}, { alg: 'ES256', pair: pairs.ES256 })), 'unknown_key')
  })

  t.test('a kid of another principal is auth.issuer_mismatch', async (t) => {
    await refused(t, verify(token('b-es', { iss: 'agency-a' })), 'issuer_mismatch')
    await refused(t, verify(token('a-es', { iss: 'agency-b' })), 'issuer_mismatch', 'and the other way round')
  })

  t.test('a retired key is auth.key_retired', async (t) => {
    await refused(t, verify(token('a-old')), 'key_retired')
  })

  t.test('a key of a disabled principal is auth.principal_disabled', async (t) => {
    await refused(t, verify(token('d-es', { iss: 'agency-d' })), 'principal_disabled')
  })

  t.test('a header alg other than the key\'s own is auth.alg_mismatch', async (t) => {
    await refused(t, verify(token('a-ed', {}, { alg: 'ES256' }, { alg: 'ES256', pair: pairs.ES256 })), 'alg_mismatch', 'EdDSA key, ES256 header')
    await refused(t, verify(token('a-es', {}, { alg: 'EdDSA' }, { alg: 'EdDSA', pair: pairs.EdDSA })), 'alg_mismatch', 'ES256 key, EdDSA header')
    await refused(t, verify(token('a-es', {}, { alg: 'RS256' }, { alg: 'RS256', pair: pairs.RS256 })), 'alg_mismatch', 'ES256 key, RS256 header')
    await refused(t, verify(token('a-rs', {}, { alg: 'ES256' }, { alg: 'ES256', pair: pairs.ES256 })), 'alg_mismatch', 'RS256 key, ES256 header')
  })

  t.test('another gateway\'s audience is auth.wrong_audience', async (t) => {
    await refused(t, verify(token('a-es', { aud: 'credit-gateway-prod' })), 'wrong_audience')
    await refused(t, verify(token('a-es', { aud: `${AUDIENCE} ` })), 'wrong_audience', 'no trimming')
  })

  t.test('exp - iat over 300 s is auth.lifetime_too_long; exactly 300 s is accepted', async (t) => {
    t.equal(MAX_TOKEN_LIFETIME_SECONDS, 300)
    await refused(t, verify(token('a-es', { exp: NOW + 301 })), 'lifetime_too_long')
    await refused(t, verify(token('a-es', { iat: NOW - 3600, exp: NOW + 3600 })), 'lifetime_too_long', 'an hour either side')
    t.ok(await verify(token('a-es', { exp: NOW + 300 })), '300 s')
  })

  t.test('iat more than 60 s ahead is auth.token_not_yet_valid; exactly 60 s ahead is accepted', async (t) => {
    await refused(t, verify(token('a-es', { iat: NOW + 61, exp: NOW + 121 })), 'token_not_yet_valid')
    t.ok(await verify(token('a-es', { iat: NOW + 60, exp: NOW + 120 })), 'iat = now + skew')
  })

  t.test('exp more than 60 s ago is auth.token_expired; exactly 60 s ago is accepted', async (t) => {
    await refused(t, verify(token('a-es', { iat: NOW - 121, exp: NOW - 61 })), 'token_expired')
    t.ok(await verify(token('a-es', { iat: NOW - 120, exp: NOW - 60 })), 'exp = now - skew')
  })

  t.test('another method is auth.method_mismatch (no case folding)', async (t) => {
    await refused(t, verify(token('a-es', { htm: 'GET' })), 'method_mismatch')
    await refused(t, verify(token('a-es', { htm: 'post' })), 'method_mismatch', 'lower case')
  })

  t.test('another path or query is auth.path_mismatch (compared exactly as sent)', async (t) => {
    for (const htu of ['/v1/match?x=2', '/v1/match', '/v1/match?x=1&', '/v1/match?x=1#f', '/v1/%6Datch?x=1', '/V1/match?x=1', '/v1/match/?x=1', 'http://gw/v1/match?x=1']) {
      await refused(t, verify(token('a-es', { htu })), 'path_mismatch', htu)
    }
  })

  t.test('a tampered or foreign signature is auth.bad_signature', async (t) => {
    for (const kid of ['a-es', 'a-ed', 'a-rs']) {
      const [h, p, s] = token(kid).split('.') as [string, string, string]
      await refused(t, verify(`${h}.${p}.${flipByte(s)}`), 'bad_signature', `${kid}: first byte flipped`)
      await refused(t, verify(`${h}.${p}.${flipByte(s, Buffer.from(s, 'base64url').length - 1)}`), 'bad_signature', `${kid}: last byte flipped`)
      await refused(t, verify(`${h}.${p}.`), 'bad_signature', `${kid}: empty signature`)
    }
    const other = { ES256: pairs.otherEs, EdDSA: pairs.otherEd, RS256: pairs.otherRs } as const
    for (const kid of ['a-es', 'a-ed', 'a-rs']) {
      const alg = registry.get(kid)!.alg as Alg
      await refused(t, verify(token(kid, {}, {}, { alg, pair: other[alg] })), 'bad_signature', `${kid}: signed by another ${alg} key`)
    }
    // A claim changed after signing: the signature no longer covers the payload.
    const [h, , s] = token('a-es').split('.') as [string, string, string]
    await refused(t, verify(`${h}.${b64json(claimsFor({ htu: '/v1/match?x=1', jti: 'swapped' }))}.${s}`), 'bad_signature', 'payload swapped')
  })

  t.test('claim checks run before the signature: a wrong aud with a junk signature is auth.wrong_audience', async (t) => {
    const [h, p] = token('a-es', { aud: 'elsewhere' }).split('.') as [string, string, string]
    await refused(t, verify(`${h}.${p}.${Buffer.alloc(64).toString('base64url')}`), 'wrong_audience')
  })
})

t.test('verifySignature', async (t) => {
  const data = Buffer.from('eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0')
  const others = { ES256: pairs.otherEs, EdDSA: pairs.otherEd, RS256: pairs.otherRs } as const

  for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
    t.test(`${alg}: a valid signature verifies; tampered data, signature or key does not`, async (t) => {
      const pair = pairs[alg]
      const sig = rawSign(alg, pair.privateKey, data)
      t.equal(await verifySignature(alg, pair.publicKey, data, sig), true, 'valid')
      t.equal(await verifySignature(alg, pair.publicKey, Buffer.concat([data, Buffer.from('x')]), sig), false, 'data extended')
      const changed = Buffer.from(data)
      changed[3] = changed[3]! ^ 0x20
      t.equal(await verifySignature(alg, pair.publicKey, changed, sig), false, 'data changed')
      const badSig = Buffer.from(sig)
      badSig[badSig.length - 1] = badSig[badSig.length - 1]! ^ 0x01
      t.equal(await verifySignature(alg, pair.publicKey, data, badSig), false, 'signature changed')
      t.equal(await verifySignature(alg, others[alg].publicKey, data, sig), false, 'another key')
      t.equal(await verifySignature(alg, pair.publicKey, data, Buffer.alloc(0)), false, 'empty signature')
    })
  }

  t.test('ES256 signatures of the wrong length are refused, including a valid DER-encoded one', async (t) => {
    const { publicKey, privateKey } = pairs.ES256
    const der = sign('sha256', data, privateKey) // dsaEncoding 'der' by default: valid, but not JWS (RFC 7518 §3.4)
    t.not(der.length, 64)
    t.equal(await verifySignature('ES256', publicKey, data, der), false, `DER (${der.length} bytes)`)
    const p1363 = rawSign('ES256', privateKey, data)
    t.equal(p1363.length, 64)
    t.equal(await verifySignature('ES256', publicKey, data, p1363), true, 'the same signature as 64-byte r||s verifies')
    t.equal(await verifySignature('ES256', publicKey, data, Buffer.concat([p1363, Buffer.from([0])])), false, '65 bytes')
    t.equal(await verifySignature('ES256', publicKey, data, p1363.subarray(0, 63)), false, '63 bytes')
    t.equal(await verifySignature('ES256', publicKey, data, Buffer.concat([p1363, p1363])), false, '128 bytes')
  })

  t.test('an algorithm outside ES256, EdDSA and RS256 never verifies', async (t) => {
    const sig = rawSign('ES256', pairs.ES256.privateKey, data)
    for (const alg of ['none', 'HS256', 'ES384', 'PS256', '']) {
      t.equal(await verifySignature(alg, pairs.ES256.publicKey, data, sig), false, JSON.stringify(alg))
    }
  })

  t.test('a key of the wrong type for the algorithm is false, not an exception', async (t) => {
    const rsSig = rawSign('RS256', pairs.RS256.privateKey, data)
    t.equal(await verifySignature('RS256', pairs.ES256.publicKey, data, rsSig), false, 'RS256 with an EC key')
    const edSig = rawSign('EdDSA', pairs.EdDSA.privateKey, data)
    t.equal(await verifySignature('EdDSA', pairs.ES256.publicKey, data, edSig), false, 'EdDSA with an EC key')
    const esSig = rawSign('ES256', pairs.ES256.privateKey, data)
    t.equal(await verifySignature('ES256', pairs.EdDSA.publicKey, data, esSig), false, 'ES256 with an Ed25519 key')
  })
})
