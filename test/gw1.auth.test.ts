import { createPrivateKey, createPublicKey, randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { compactVerify, CompactSign, createLocalJWKSet, decodeProtectedHeader, importJWK, SignJWT, type JSONWebKeySet } from 'jose'
import t, { type Test } from 'tap'
import { ResponseSignatureError, signRequest, verifyResponseSignature, type KeyFile } from '../src/client/gw1-client.js'
import { sha256b64url, SHA256_OF_EMPTY } from '../src/infra/gw1/token.js'
import type { KeyAlg } from '../src/modules/principals/principals.models.js'
import { generatePrincipalKey } from '../src/modules/principals/principals.keygen.js'
import { ADMIN_SCOPES, buildTestGateway, TEST_AUDIENCE } from './helper.js'

// GW1 end to end (DESIGN.md "Principals and the request-signing protocol"): every check of the
// request token through app.inject, against GET /v1/whoami (scope any) and /v1/principals
// (scope principals:write), plus key rotation and the signed responses.
//
// One gateway serves the whole file (building one takes seconds on PGlite); every test makes its
// own principals, and tests that move the clock put it back.

t.setTimeout(240_000)

const gw = await buildTestGateway(t)
const admin = await gw.addPrincipal({ id: 'admin-root', kind: 'admin', scopes: ADMIN_SCOPES })
const jwks = (await gw.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as JSONWebKeySet

let serial = 0
const agency = (alg?: KeyAlg) => gw.addPrincipal({ id: `agency-${++serial}`, kind: 'agency', scopes: ['match'], alg })
const nowSeconds = () => Math.floor(gw.clock.nowMs() / 1000)

interface SignOpts { body?: string; now?: number; lifetimeSeconds?: number; jti?: string; audience?: string }

/** The Authorization value signRequest builds, for the gateway's clock unless `now` says otherwise. */
async function authFor(key: KeyFile, method: string, url: string, opts: SignOpts = {}) {
  return signRequest({
    method, pathWithQuery: url, body: opts.body === undefined ? undefined : Buffer.from(opts.body),
    audience: opts.audience ?? TEST_AUDIENCE, key, now: opts.now ?? nowSeconds(), lifetimeSeconds: opts.lifetimeSeconds, jti: opts.jti,
  })
}

/** Sends a request with a given Authorization (or none) and, if any, a JSON body. */
function send(method: string, url: string, authorization?: string, body?: string) {
  return gw.app.inject({
    method: method as 'GET', url, payload: body,
    headers: { ...(authorization === undefined ? {} : { authorization }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
  })
}

/** Claims of a correct token for (key, method, url, body); overrides replace or (with undefined) drop them. */
function claimsFor(key: KeyFile, method: string, url: string, body?: string, overrides: Record<string, unknown> = {}) {
  const now = nowSeconds()
  return {
    iss: key.principalId, aud: TEST_AUDIENCE, iat: now, exp: now + 60, jti: randomUUID(),
    htm: method, htu: url, bsh: body === undefined ? SHA256_OF_EMPTY : sha256b64url(body), ...overrides,
  }
}

/** A compact JWS with exactly this header and these claims, signed by `signer` (jose CompactSign). */
async function craft(header: Record<string, unknown>, claims: Record<string, unknown>, signer: KeyFile): Promise<string> {
  const key = await importJWK(signer.privateJwk, signer.privateJwk.alg)
  return new CompactSign(Buffer.from(JSON.stringify(claims)))
    .setProtectedHeader({ alg: signer.privateJwk.alg, ...header })
    .sign(key)
}

const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** Asserts a problem+json refusal with the exact stable code (and WWW-Authenticate: GW1 on 401). */
function assertRefused(t: Test, res: LightMyRequestResponse, status: 401 | 403, code: string, what = code) {
  t.equal(res.statusCode, status, `${what}: status ${status}`)
  t.match(res.headers['content-type'], /^application\/problem\+json/, `${what}: problem+json`)
  const body = res.json() as { code: string; status: number }
  t.equal(body.code, code, `${what}: code`)
  t.equal(body.status, status, `${what}: status in the body`)
  if (status === 401) t.equal(res.headers['www-authenticate'], 'GW1', `${what}: WWW-Authenticate`)
  else t.notOk(res.headers['www-authenticate'], `${what}: no WWW-Authenticate on 403`)
}

/** Asserts the response's X-GW-Signature verifies over its exact bytes and is bound to `jti`. */
async function assertSignedResponse(t: Test, res: LightMyRequestResponse, jti: string) {
  const signature = res.headers['x-gw-signature']
  t.type(signature, 'string', 'X-GW-Signature present')
  if (typeof signature !== 'string') return
  const header = decodeProtectedHeader(signature)
  t.equal(header.jti, jti, 'protected header jti is the request jti')
  t.equal(header.kid, gw.gatewayKeys.kid, 'signed by the gateway key')
  t.equal(header.alg, gw.gatewayKeys.alg)
  t.type(header.iat, 'number')
  await t.resolves(verifyResponseSignature(signature, res.rawPayload, jti, jwks), 'verifyResponseSignature accepts it')
  // The same check straight with jose: a detached JWS (RFC 7515 appendix F) over the raw body bytes.
  const [h, empty, s] = signature.split('.')
  t.equal(empty, '', 'detached payload')
  const { payload } = await compactVerify(`${h}.${res.rawPayload.toString('base64url')}.${s}`, createLocalJWKSet(jwks))
  t.same(Buffer.from(payload), res.rawPayload)
}

/** Asserts that a response-signature check fails with ResponseSignatureError and a message matching `why`. */
async function assertSignatureRefused(t: Test, p: Promise<void>, why: RegExp, what: string) {
  const err = await p.then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof ResponseSignatureError, `${what}: ResponseSignatureError`)
  t.match((err as Error | undefined)?.message, why, `${what}: reason`)
}

/** What the principals tables hold, to show that a refused request changed nothing. */
async function principalsSnapshot() {
  const q = (sql: string) => gw.database.query(sql)
  return {
    principals: await q('SELECT id, kind, name, scopes, profile, status, updated_at::text AS updated FROM principals ORDER BY id'),
    keys: await q('SELECT kid, principal_id, status FROM principal_keys ORDER BY kid'),
    events: await q('SELECT count(*)::int AS n FROM principal_events'),
  }
}

async function listPrincipalIds(): Promise<string[]> {
  const res = await gw.signed(admin, 'GET', '/v1/principals')
  if (res.statusCode !== 200) throw new Error(`listing principals failed: ${res.statusCode} ${res.body}`)
  return (res.json() as { items: { id: string }[] }).items.map((p) => p.id)
}

/* ---------------------------------------------------------------- accepted requests */

t.test('a correctly signed GET /v1/whoami returns the caller and the kid it signed with', async (t) => {
  const key = await agency()
  const res = await gw.signed(key, 'GET', '/v1/whoami')
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { id: key.principalId, kind: 'agency', scopes: ['match'], kid: key.privateJwk.kid })
})

t.test('ES256, EdDSA and RS256 keys are all accepted', async (t) => {
  for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
    const key = await agency(alg)
    t.equal(key.privateJwk.alg, alg)
    const res = await gw.signed(key, 'GET', '/v1/whoami')
    t.equal(res.statusCode, 200, `${alg}: ${res.body}`)
    t.equal(res.json().kid, key.privateJwk.kid)
  }
})

t.test('an admin with principals:write may call /v1/principals', async (t) => {
  const res = await gw.signed(admin, 'GET', '/v1/principals')
  t.equal(res.statusCode, 200, res.body)
  t.ok((res.json() as { items: { id: string }[] }).items.some((p) => p.id === 'admin-root'))
})

t.test('key rotation: a second key works alongside the first, and after retiring the first only the second works', async (t) => {
  const oldKey = await agency()
  const id = oldKey.principalId
  const { keyFile: newKey, publicJwk } = await generatePrincipalKey(id, 'EdDSA')

  const added = await gw.signed(admin, 'POST', `/v1/principals/${id}/keys`, publicJwk)
  t.equal(added.statusCode, 201, added.body)
  t.same((added.json() as { keys: { kid: string; status: string }[] }).keys.map((k) => k.status), ['active', 'active'])

  for (const [name, key] of [['old', oldKey], ['new', newKey]] as const) {
    const res = await gw.signed(key, 'GET', '/v1/whoami')
    t.equal(res.statusCode, 200, `${name} key while both are active: ${res.body}`)
    t.equal(res.json().kid, key.privateJwk.kid)
  }

  const retired = await gw.signed(admin, 'DELETE', `/v1/principals/${id}/keys/${oldKey.privateJwk.kid}`)
  t.equal(retired.statusCode, 200, retired.body)

  assertRefused(t, await gw.signed(oldKey, 'GET', '/v1/whoami'), 401, 'auth.key_retired', 'old key after retirement')
  const res = await gw.signed(newKey, 'GET', '/v1/whoami')
  t.equal(res.statusCode, 200, `new key after retirement: ${res.body}`)
  t.equal(res.json().id, id)
})

t.test('clock skew: a token issued up to 60 s in the future is accepted', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami', { now: nowSeconds() + 60 })
  const res = await send('GET', '/v1/whoami', authorization)
  t.equal(res.statusCode, 200, res.body)
})

t.test('clock skew: a token that expired up to 60 s ago is accepted', async (t) => {
  const key = await agency()
  // iat = now - 120, exp = iat + 60 = now - 60: expired, but within the tolerated skew.
  const { authorization } = await authFor(key, 'GET', '/v1/whoami', { now: nowSeconds() - 120, lifetimeSeconds: 60 })
  const res = await send('GET', '/v1/whoami', authorization)
  t.equal(res.statusCode, 200, res.body)
})

t.test('a token living exactly 300 s is accepted', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami', { lifetimeSeconds: 300 })
  const res = await send('GET', '/v1/whoami', authorization)
  t.equal(res.statusCode, 200, res.body)
})

t.test('htu is compared as sent: a percent-encoded path signed as sent is accepted', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/%77hoami')
  const res = await send('GET', '/v1/%77hoami', authorization)
  t.equal(res.statusCode, 200, res.body)
})

/* ---------------------------------------------------------------- malformed requests */

t.test('a request without Authorization is refused with auth.missing_token', async (t) => {
  const res = await send('GET', '/v1/whoami')
  assertRefused(t, res, 401, 'auth.missing_token')
  t.notOk(res.headers['x-gw-signature'], 'an unsigned request gets an unsigned answer')
})

t.test('a garbage token is refused with auth.malformed_token', async (t) => {
  for (const token of ['garbage', 'a.b.c', '%%%.x.y', `${b64json({ alg: 'ES256' })}.not-json.AA`, 'x'.repeat(9000)]) {
    assertRefused(t, await send('GET', '/v1/whoami', `GW1 ${token}`), 401, 'auth.malformed_token', token.slice(0, 20))
  }
})

t.test('a token under another scheme is refused with auth.malformed_token', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami')
  const jws = authorization.slice('GW1 '.length)
  for (const value of [`Bearer ${jws}`, `DPoP ${jws}`, jws, `GW1 ${jws} extra`]) {
    assertRefused(t, await send('GET', '/v1/whoami', value), 401, 'auth.malformed_token', value.slice(0, 10))
  }
})

t.test('a two-part token is refused with auth.malformed_token', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami')
  const [h, p] = authorization.slice('GW1 '.length).split('.')
  assertRefused(t, await send('GET', '/v1/whoami', `GW1 ${h}.${p}`), 401, 'auth.malformed_token')
})

t.test('a token missing a claim is refused with auth.malformed_token', async (t) => {
  const key = await agency()
  for (const name of ['iss', 'aud', 'iat', 'exp', 'jti', 'htm', 'htu', 'bsh']) {
    const token = await craft({ kid: key.privateJwk.kid, typ: 'gw1+jwt' }, claimsFor(key, 'GET', '/v1/whoami', undefined, { [name]: undefined }), key)
    assertRefused(t, await send('GET', '/v1/whoami', `GW1 ${token}`), 401, 'auth.malformed_token', `without ${name}`)
  }
})

t.test('a token whose typ is not gw1+jwt is refused with auth.malformed_token', async (t) => {
  const key = await agency()
  for (const typ of ['JWT', 'at+jwt', undefined]) {
    const header = { kid: key.privateJwk.kid, ...(typ === undefined ? {} : { typ }) }
    const token = await craft(header, claimsFor(key, 'GET', '/v1/whoami'), key)
    assertRefused(t, await send('GET', '/v1/whoami', `GW1 ${token}`), 401, 'auth.malformed_token', `typ ${String(typ)}`)
  }
})

/* ---------------------------------------------------------------- algorithm confusion and keys */

t.test('an alg none token with an empty signature is refused with auth.alg_not_allowed', async (t) => {
  const key = await agency()
  const token = `${b64json({ alg: 'none', kid: key.privateJwk.kid, typ: 'gw1+jwt' })}.${b64json(claimsFor(key, 'GET', '/v1/whoami'))}.`
  assertRefused(t, await send('GET', '/v1/whoami', `GW1 ${token}`), 401, 'auth.alg_not_allowed')
})

t.test('an HS256 token keyed with the principal\'s public key (JWK JSON or PEM) is refused with auth.alg_not_allowed', async (t) => {
  const key = await agency()
  const registered = await gw.signed(admin, 'GET', `/v1/principals/${key.principalId}`)
  t.equal(registered.statusCode, 200)
  const registeredJwk = (registered.json() as { keys: { publicJwk: Record<string, unknown> }[] }).keys[0]!.publicJwk
  const publicKey = createPublicKey(createPrivateKey({ key: key.privateJwk as never, format: 'jwk' }))
  const secrets: Record<string, string> = {
    'registered JWK JSON': JSON.stringify(registeredJwk),
    'public JWK JSON': JSON.stringify({ ...publicKey.export({ format: 'jwk' }), kid: key.privateJwk.kid, alg: 'ES256' }),
    'SPKI PEM': publicKey.export({ format: 'pem', type: 'spki' }) as string,
  }
  for (const [name, secret] of Object.entries(secrets)) {
    const token = await new SignJWT(claimsFor(key, 'GET', '/v1/whoami'))
      .setProtectedHeader({ alg: 'HS256', kid: key.privateJwk.kid, typ: 'gw1+jwt' })
      .sign(new TextEncoder().encode(secret))
    assertRefused(t, await send('GET', '/v1/whoami', `GW1 ${token}`), 401, 'auth.alg_not_allowed', name)
  }
})

t.test('an unknown kid is refused with auth.unknown_key', async (t) => {
  const key = await agency()
  const { keyFile: stranger } = await generatePrincipalKey(key.principalId) // never registered
  const { authorization } = await authFor(stranger, 'GET', '/v1/whoami')
  assertRefused(t, await send('GET', '/v1/whoami', authorization), 401, 'auth.unknown_key')
})

t.test('a kid of another principal under the first one\'s iss is refused with auth.issuer_mismatch', async (t) => {
  const first = await agency()
  const second = await agency()
  const { authorization } = await authFor({ principalId: first.principalId, privateJwk: second.privateJwk }, 'GET', '/v1/whoami')
  assertRefused(t, await send('GET', '/v1/whoami', authorization), 401, 'auth.issuer_mismatch')
})

t.test('a retired key is refused with auth.key_retired', async (t) => {
  const key = await agency()
  const before = await gw.signed(key, 'GET', '/v1/whoami')
  t.equal(before.statusCode, 200, 'works before retirement')
  const retired = await gw.signed(admin, 'DELETE', `/v1/principals/${key.principalId}/keys/${key.privateJwk.kid}`)
  t.equal(retired.statusCode, 200, retired.body)
  t.equal((retired.json() as { keys: { status: string }[] }).keys[0]!.status, 'retired')
  assertRefused(t, await gw.signed(key, 'GET', '/v1/whoami'), 401, 'auth.key_retired')
})

t.test('a token whose alg is not the key\'s registered alg is refused with auth.alg_mismatch', async (t) => {
  const signers = { ES256: await agency('ES256'), EdDSA: await agency('EdDSA'), RS256: await agency('RS256') }
  const cases: [KeyAlg, KeyAlg][] = [['EdDSA', 'ES256'], ['ES256', 'EdDSA'], ['RS256', 'ES256'], ['ES256', 'RS256'], ['EdDSA', 'RS256']]
  for (const [registered, claimed] of cases) {
    const victim = signers[registered]
    // Signed for real with a key of the claimed algorithm, under the victim's kid and iss.
    const token = await craft({ kid: victim.privateJwk.kid, typ: 'gw1+jwt' }, claimsFor(victim, 'GET', '/v1/whoami'), signers[claimed])
    t.equal(decodeProtectedHeader(token).alg, claimed)
    assertRefused(t, await send('GET', '/v1/whoami', `GW1 ${token}`), 401, 'auth.alg_mismatch', `${registered} key, ${claimed} header`)
  }
})

t.test('a flipped signature byte is refused with auth.bad_signature', async (t) => {
  for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
    const key = await agency(alg)
    const { authorization } = await authFor(key, 'GET', '/v1/whoami')
    const [h, p, s] = authorization.slice('GW1 '.length).split('.') as [string, string, string]
    const sig = Buffer.from(s, 'base64url')
    sig[10] = sig[10]! ^ 0x01
    assertRefused(t, await send('GET', '/v1/whoami', `GW1 ${h}.${p}.${sig.toString('base64url')}`), 401, 'auth.bad_signature', alg)
  }
})

/* ---------------------------------------------------------------- claims */

t.test('a token for another audience is refused with auth.wrong_audience', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami', { audience: 'credit-gateway' })
  assertRefused(t, await send('GET', '/v1/whoami', authorization), 401, 'auth.wrong_audience')
})

t.test('a token living longer than 300 s is refused with auth.lifetime_too_long', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami', { lifetimeSeconds: 301 })
  assertRefused(t, await send('GET', '/v1/whoami', authorization), 401, 'auth.lifetime_too_long')
})

t.test('a token issued more than 60 s in the future is refused with auth.token_not_yet_valid', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami', { now: nowSeconds() + 61 })
  assertRefused(t, await send('GET', '/v1/whoami', authorization), 401, 'auth.token_not_yet_valid')
})

t.test('a token used after its exp plus the 60 s skew is refused with auth.token_expired', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami', { lifetimeSeconds: 60 })
  gw.clock.advance(121) // exp = iat + 60, so now = exp + 61
  try {
    assertRefused(t, await send('GET', '/v1/whoami', authorization), 401, 'auth.token_expired')
  } finally {
    gw.clock.advance(-121)
  }
})

t.test('a token signed for another method is refused with auth.method_mismatch', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'POST', '/v1/whoami')
  assertRefused(t, await send('GET', '/v1/whoami', authorization), 401, 'auth.method_mismatch')
})

t.test('a token lifted onto another path is refused with auth.path_mismatch', async (t) => {
  const { authorization } = await authFor(admin, 'GET', '/v1/whoami')
  assertRefused(t, await send('GET', '/v1/principals', authorization), 401, 'auth.path_mismatch')
})

t.test('a query added or changed after signing is refused with auth.path_mismatch', async (t) => {
  const key = await agency()
  const cases: [string, string][] = [
    ['/v1/whoami', '/v1/whoami?x=1'],
    ['/v1/whoami?a=1', '/v1/whoami?a=2'],
    ['/v1/whoami?a=1', '/v1/whoami'],
    ['/v1/whoami?a=1&b=2', '/v1/whoami?b=2&a=1'],
  ]
  for (const [signedUrl, sentUrl] of cases) {
    const { authorization } = await authFor(key, 'GET', signedUrl)
    assertRefused(t, await send('GET', sentUrl, authorization), 401, 'auth.path_mismatch', `${signedUrl} sent as ${sentUrl}`)
  }
})

t.test('a percent-encoded variant of the signed path is refused with auth.path_mismatch', async (t) => {
  const key = await agency()
  const cases: [string, string][] = [['/v1/whoami', '/v1/%77hoami'], ['/v1/%77hoami', '/v1/whoami'], ['/v1/whoami?q=a b', '/v1/whoami?q=a%20b']]
  for (const [signedUrl, sentUrl] of cases) {
    const { authorization } = await authFor(key, 'GET', signedUrl)
    assertRefused(t, await send('GET', sentUrl, authorization), 401, 'auth.path_mismatch', `${signedUrl} sent as ${sentUrl}`)
  }
})

/* ---------------------------------------------------------------- body binding */

t.test('a body changed after signing is refused with auth.body_mismatch and creates nothing', async (t) => {
  const { publicJwk } = await generatePrincipalKey('agency-signed')
  const signedBody = JSON.stringify({ id: 'agency-signed', kind: 'agency', name: 'signed', scopes: ['match'], keys: [publicJwk] })
  const sentBody = signedBody.replaceAll('agency-signed', 'agency-swapped')
  const { authorization } = await authFor(admin, 'POST', '/v1/principals', { body: signedBody })
  assertRefused(t, await send('POST', '/v1/principals', authorization, sentBody), 401, 'auth.body_mismatch')
  const ids = await listPrincipalIds()
  t.notOk(ids.includes('agency-swapped'), 'the swapped principal was not created')
  t.notOk(ids.includes('agency-signed'), 'nor the signed one')
})

t.test('a body sent under a token signed for no body is refused with auth.body_mismatch', async (t) => {
  const { authorization } = await authFor(admin, 'PATCH', '/v1/principals/admin-root')
  assertRefused(t, await send('PATCH', '/v1/principals/admin-root', authorization, '{"name":"renamed"}'), 401, 'auth.body_mismatch')
  const res = await gw.signed(admin, 'GET', '/v1/principals/admin-root')
  t.equal(res.json().name, 'admin-root', 'name unchanged')
})

t.test('a GET whose bsh is not the empty-body hash is refused with auth.body_mismatch', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami', { body: '{}' })
  assertRefused(t, await send('GET', '/v1/whoami', authorization), 401, 'auth.body_mismatch')
})

/* ---------------------------------------------------------------- replay, status, scope */

t.test('a replayed jti is refused with auth.replayed', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami')
  t.equal((await send('GET', '/v1/whoami', authorization)).statusCode, 200, 'first use')
  assertRefused(t, await send('GET', '/v1/whoami', authorization), 401, 'auth.replayed', 'the same token again')
})

t.test('a fresh token reusing a spent jti is refused with auth.replayed', async (t) => {
  const key = await agency()
  const jti = randomUUID()
  t.equal((await gw.signed(key, 'GET', '/v1/whoami', undefined, { jti })).statusCode, 200, 'first use')
  const { authorization } = await authFor(key, 'GET', '/v1/whoami', { jti, now: nowSeconds() + 1 })
  assertRefused(t, await send('GET', '/v1/whoami', authorization), 401, 'auth.replayed')
})

t.test('of several concurrent uses of one token exactly one is accepted, the others get auth.replayed', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami')
  const results = await Promise.all(Array.from({ length: 6 }, () => send('GET', '/v1/whoami', authorization)))
  t.equal(results.filter((r) => r.statusCode === 200).length, 1, 'one accepted')
  for (const r of results.filter((r) => r.statusCode !== 200)) assertRefused(t, r, 401, 'auth.replayed')
})

t.test('a jti is spent only by a token that verifies', async (t) => {
  const key = await agency()
  const jti = randomUUID()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami', { jti })
  const [h, p, s] = authorization.slice('GW1 '.length).split('.') as [string, string, string]
  const sig = Buffer.from(s, 'base64url')
  sig[0] = sig[0]! ^ 0x01
  assertRefused(t, await send('GET', '/v1/whoami', `GW1 ${h}.${p}.${sig.toString('base64url')}`), 401, 'auth.bad_signature')
  t.equal((await send('GET', '/v1/whoami', authorization)).statusCode, 200, 'the genuine token still works')
})

t.test('a disabled principal is refused with auth.principal_disabled', async (t) => {
  const key = await agency()
  t.equal((await gw.signed(key, 'GET', '/v1/whoami')).statusCode, 200, 'works while active')
  const patched = await gw.signed(admin, 'PATCH', `/v1/principals/${key.principalId}`, { status: 'disabled' })
  t.equal(patched.statusCode, 200, patched.body)
  assertRefused(t, await gw.signed(key, 'GET', '/v1/whoami'), 401, 'auth.principal_disabled')
})

t.test('re-enabling a disabled principal restores its access', async (t) => {
  const key = await agency()
  t.equal((await gw.signed(admin, 'PATCH', `/v1/principals/${key.principalId}`, { status: 'disabled' })).statusCode, 200)
  assertRefused(t, await gw.signed(key, 'GET', '/v1/whoami'), 401, 'auth.principal_disabled')
  t.equal((await gw.signed(admin, 'PATCH', `/v1/principals/${key.principalId}`, { status: 'active' })).statusCode, 200)
  t.equal((await gw.signed(key, 'GET', '/v1/whoami')).statusCode, 200)
})

t.test('a caller without the route\'s scope is refused with 403 auth.insufficient_scope', async (t) => {
  const key = await agency()
  assertRefused(t, await gw.signed(key, 'GET', '/v1/principals'), 403, 'auth.insufficient_scope', 'GET /v1/principals')
  const { publicJwk } = await generatePrincipalKey('agency-self-made')
  const res = await gw.signed(key, 'POST', '/v1/principals', { id: 'agency-self-made', kind: 'agency', name: 'x', scopes: ['match'], keys: [publicJwk] })
  assertRefused(t, res, 403, 'auth.insufficient_scope', 'POST /v1/principals')
})

t.test('a rejected POST /v1/principals changes nothing in the database', async (t) => {
  const outsider = await agency()
  const before = await principalsSnapshot()
  const idsBefore = await listPrincipalIds()

  const { publicJwk } = await generatePrincipalKey('agency-never')
  const body = JSON.stringify({ id: 'agency-never', kind: 'agency', name: 'never', scopes: ['match'], keys: [publicJwk] })
  const attempts: [string, Promise<LightMyRequestResponse>, 401 | 403, string][] = []
  const a1 = await authFor(admin, 'POST', '/v1/principals', { body: body.replace('never', 'other') })
  attempts.push(['body changed', send('POST', '/v1/principals', a1.authorization, body), 401, 'auth.body_mismatch'])
  const a2 = await authFor(admin, 'POST', '/v1/principals', { body, audience: 'elsewhere' })
  attempts.push(['wrong audience', send('POST', '/v1/principals', a2.authorization, body), 401, 'auth.wrong_audience'])
  const a3 = await authFor(admin, 'POST', '/v1/principals', { body, now: nowSeconds() - 400 })
  attempts.push(['expired', send('POST', '/v1/principals', a3.authorization, body), 401, 'auth.token_expired'])
  const a4 = await authFor(outsider, 'POST', '/v1/principals', { body })
  attempts.push(['no scope', send('POST', '/v1/principals', a4.authorization, body), 403, 'auth.insufficient_scope'])
  const a5 = await authFor(admin, 'POST', '/v1/principals?x=1', { body })
  attempts.push(['query added', send('POST', '/v1/principals', a5.authorization, body), 401, 'auth.path_mismatch'])
  for (const [what, res, status, code] of attempts) assertRefused(t, await res, status, code, what)

  t.same(await principalsSnapshot(), before, 'principals, keys and events unchanged')
  t.same(await listPrincipalIds(), idsBefore, 'the admin list is unchanged')
  t.notOk((await listPrincipalIds()).includes('agency-never'))
})

t.test('a replayed POST /v1/principals is refused with auth.replayed and changes nothing', async (t) => {
  const { publicJwk } = await generatePrincipalKey('agency-once')
  const body = JSON.stringify({ id: 'agency-once', kind: 'agency', name: 'once', scopes: ['match'], keys: [publicJwk] })
  const { authorization } = await authFor(admin, 'POST', '/v1/principals', { body })
  const first = await send('POST', '/v1/principals', authorization, body)
  t.equal(first.statusCode, 201, first.body)
  const before = await principalsSnapshot()
  assertRefused(t, await send('POST', '/v1/principals', authorization, body), 401, 'auth.replayed')
  t.same(await principalsSnapshot(), before, 'nothing changed')
})

/* ---------------------------------------------------------------- signed responses */

t.test('the gateway publishes its response-signing key at /.well-known/jwks.json', async (t) => {
  t.equal(jwks.keys.length, 1)
  t.match(jwks.keys[0], { kid: gw.gatewayKeys.kid, alg: gw.gatewayKeys.alg, use: 'sig' })
  t.notOk('d' in jwks.keys[0]!, 'no private member')
})

t.test('a 200 response carries an X-GW-Signature bound to the request jti', async (t) => {
  const key = await agency()
  const jti = randomUUID()
  const res = await gw.signed(key, 'GET', '/v1/whoami', undefined, { jti })
  t.equal(res.statusCode, 200)
  await assertSignedResponse(t, res, jti)
})

t.test('a 401 response carries an X-GW-Signature bound to the request jti', async (t) => {
  const key = await agency()
  const { authorization, jti } = await authFor(key, 'GET', '/v1/whoami', { audience: 'elsewhere' })
  const res = await send('GET', '/v1/whoami', authorization)
  assertRefused(t, res, 401, 'auth.wrong_audience')
  await assertSignedResponse(t, res, jti)
})

t.test('a 401 response to a body mismatch carries an X-GW-Signature bound to the request jti', async (t) => {
  const { authorization, jti } = await authFor(admin, 'PATCH', '/v1/principals/admin-root', { body: '{"name":"a"}' })
  const res = await send('PATCH', '/v1/principals/admin-root', authorization, '{"name":"b"}')
  assertRefused(t, res, 401, 'auth.body_mismatch')
  await assertSignedResponse(t, res, jti)
})

t.test('a 403 response carries an X-GW-Signature bound to the request jti', async (t) => {
  const key = await agency()
  const jti = randomUUID()
  const res = await gw.signed(key, 'GET', '/v1/principals', undefined, { jti })
  assertRefused(t, res, 403, 'auth.insufficient_scope')
  await assertSignedResponse(t, res, jti)
})

t.test('a 400 response carries an X-GW-Signature bound to the request jti', async (t) => {
  const jti = randomUUID()
  const res = await gw.signed(admin, 'POST', '/v1/principals', { id: 'x' }, { jti })
  t.equal(res.statusCode, 400, res.body)
  t.equal(res.json().code, 'request.validation')
  await assertSignedResponse(t, res, jti)
})

t.test('a response signature does not verify over a tampered body', async (t) => {
  const key = await agency()
  const jti = randomUUID()
  const res = await gw.signed(key, 'GET', '/v1/whoami', undefined, { jti })
  const signature = res.headers['x-gw-signature'] as string
  await t.resolves(verifyResponseSignature(signature, res.rawPayload, jti, jwks))
  const tampered = Buffer.from(res.body.replace(key.principalId, 'agency-evil'))
  t.not(tampered.toString(), res.body)
  await assertSignatureRefused(t, verifyResponseSignature(signature, tampered, jti, jwks), /does not verify/, 'a changed field')
  await assertSignatureRefused(t, verifyResponseSignature(signature, Buffer.concat([res.rawPayload, Buffer.from(' ')]), jti, jwks), /does not verify/, 'a trailing byte')
})

t.test('a response signature is refused for another request\'s jti', async (t) => {
  const key = await agency()
  const jti = randomUUID()
  const res = await gw.signed(key, 'GET', '/v1/whoami', undefined, { jti })
  await assertSignatureRefused(t, verifyResponseSignature(res.headers['x-gw-signature'] as string, res.rawPayload, randomUUID(), jwks), /bound to jti/, 'another jti')
})

/* ---------------------------------------------------------------- bytes the signature never covered */

t.test('a body of another media type is refused with 415 before any route sees it', async (t) => {
  const before = await principalsSnapshot()
  const body = JSON.stringify({ name: 'changed' })
  const { authorization } = await authFor(admin, 'PATCH', '/v1/principals/admin-root') // signed for no body
  const res = await gw.app.inject({ method: 'PATCH', url: '/v1/principals/admin-root', payload: body, headers: { authorization, 'content-type': 'text/plain' } })
  t.equal(res.statusCode, 415)
  t.equal(res.json().code, 'request.unsupported_media_type')
  t.same(await principalsSnapshot(), before, 'nothing changed')
})

t.test('a GET carrying body bytes its token did not hash is refused with auth.body_mismatch', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami')
  const res = await gw.app.inject({ method: 'GET', url: '/v1/whoami', payload: '{"x":1}', headers: { authorization, 'content-type': 'application/json' } })
  assertRefused(t, res, 401, 'auth.body_mismatch')
})

t.test('the GW1 scheme name is case-insensitive', async (t) => {
  const key = await agency()
  const { authorization } = await authFor(key, 'GET', '/v1/whoami')
  const res = await send('GET', '/v1/whoami', authorization.replace(/^GW1/, 'gw1'))
  t.equal(res.statusCode, 200)
})
