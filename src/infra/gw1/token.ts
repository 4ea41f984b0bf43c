import { createHash, verify, type KeyObject } from 'node:crypto'
import { AppError } from '../errors.js'

/** The JWS `typ` every GW1 request token carries (DESIGN.md GW1). */
export const GW1_TYP = 'gw1+jwt'
/** DESIGN.md GW1: `exp - iat ≤ 300`. */
export const MAX_TOKEN_LIFETIME_SECONDS = 300
/** Tokens are small; anything longer is not a GW1 token and is not worth decoding. */
const MAX_TOKEN_LENGTH = 8192
const ALLOWED_ALGS = new Set(['ES256', 'EdDSA', 'RS256'])

export const SHA256_OF_EMPTY = sha256b64url(Buffer.alloc(0))

export function sha256b64url(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('base64url')
}

export class AuthError extends AppError {
  constructor(code: string, message: string, status = 401) {
    super(`auth.${code}`, status, message, status === 401 ? { headers: { 'www-authenticate': 'GW1' } } : {})
  }
}

export interface Gw1Header { alg: string; kid: string; typ: string }
export interface Gw1Claims { iss: string; aud: string; iat: number; exp: number; jti: string; htm: string; htu: string; bsh: string }

/** What a key look-up yields: the key, its algorithm and the principal that owns it. */
export interface KeyEntry<P = unknown> {
  kid: string
  alg: string
  status: 'active' | 'retired'
  keyObject: KeyObject
  principalId: string
  principalStatus: 'active' | 'disabled'
  principal: P
}

export interface RequestFacts { method: string; url: string; nowSeconds: number }
export interface TokenPolicy { audience: string; clockSkewSeconds: number }

export interface VerifiedToken<P> { header: Gw1Header; claims: Gw1Claims; key: KeyEntry<P> }

/** Splits and decodes a compact JWS without trusting it; used also to bind error responses to a jti. */
export function decodeUnverified(token: string): { header: Record<string, unknown>; claims: Record<string, unknown>; signingInput: string; signature: Buffer } {
  if (token.length > MAX_TOKEN_LENGTH) throw new AuthError('malformed_token', 'token too long')
  const parts = token.split('.')
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) {
    throw new AuthError('malformed_token', 'token is not a compact JWS (three base64url parts)')
  }
  const [h, p, s] = parts as [string, string, string]
  const header = parseJsonObject(h, 'header')
  const claims = parseJsonObject(p, 'payload')
  return { header, claims, signingInput: `${h}.${p}`, signature: Buffer.from(s, 'base64url') }
}

function parseJsonObject(part: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>
  } catch { /* fall through */ }
  throw new AuthError('malformed_token', `token ${what} is not a JSON object`)
}

/** Parses `Authorization: GW1 <jws>`; throws auth.missing_token / auth.malformed_token. */
export function tokenFromAuthorization(value: string | undefined): string {
  if (!value) throw new AuthError('missing_token', 'Authorization: GW1 <token> is required')
  const m = /^GW1 +(\S+)$/i.exec(value) // auth schemes are case-insensitive (RFC 9110 §11.1)
  if (!m) throw new AuthError('malformed_token', 'Authorization must be "GW1 <compact JWS>"')
  return m[1]!
}

/**
 * Verifies a GW1 request token except the body binding (`bsh`) and the replay check, which need
 * the body and the database. Defends against: algorithm confusion (alg must be the key's own,
 * never none/HS*), keys of another principal (iss must own the kid), retired keys, tokens for
 * another gateway (aud), stale or long-lived tokens, and tokens lifted onto another method or
 * path (htm/htu compared to the request exactly as sent, no normalisation).
 * Cheap claim checks run before the signature so that junk costs no crypto.
 */
export async function verifyGw1Token<P>(
  token: string,
  request: RequestFacts,
  policy: TokenPolicy,
  lookupKey: (kid: string) => Promise<KeyEntry<P> | undefined>,
): Promise<VerifiedToken<P>> {
  const { header, claims, signingInput, signature } = decodeUnverified(token)

  if (typeof header.alg !== 'string') throw new AuthError('malformed_token', 'token header has no alg')
  if (!ALLOWED_ALGS.has(header.alg)) throw new AuthError('alg_not_allowed', `alg "${header.alg}" is not accepted; use ES256, EdDSA or RS256`)
  if (header.typ !== GW1_TYP) throw new AuthError('malformed_token', `token header typ must be "${GW1_TYP}"`)
  if (typeof header.kid !== 'string' || header.kid.length === 0) throw new AuthError('malformed_token', 'token header has no kid')
  if ('crit' in header) throw new AuthError('malformed_token', 'critical header parameters are not supported')

  const c = requireClaims(claims)

  const key = await lookupKey(header.kid)
  if (!key) throw new AuthError('unknown_key', `unknown kid "${header.kid}"`)
  if (key.principalId !== c.iss) throw new AuthError('issuer_mismatch', `kid "${header.kid}" does not belong to iss "${c.iss}"`)
  if (key.status !== 'active') throw new AuthError('key_retired', `key "${header.kid}" has been retired`)
  if (key.principalStatus !== 'active') throw new AuthError('principal_disabled', `principal "${c.iss}" is disabled`)
  if (header.alg !== key.alg) throw new AuthError('alg_mismatch', `key "${header.kid}" is registered for ${key.alg}, not ${header.alg}`)

  if (c.aud !== policy.audience) throw new AuthError('wrong_audience', `aud must be "${policy.audience}"`)
  if (c.exp <= c.iat) throw new AuthError('malformed_token', 'exp must be after iat')
  if (c.exp - c.iat > MAX_TOKEN_LIFETIME_SECONDS) throw new AuthError('lifetime_too_long', `exp - iat must be at most ${MAX_TOKEN_LIFETIME_SECONDS} s`)
  if (c.iat > request.nowSeconds + policy.clockSkewSeconds) throw new AuthError('token_not_yet_valid', 'iat is in the future beyond the tolerated clock skew')
  if (c.exp < request.nowSeconds - policy.clockSkewSeconds) throw new AuthError('token_expired', 'token has expired')
  if (c.htm !== request.method) throw new AuthError('method_mismatch', `htm "${c.htm}" does not match the request method`)
  if (c.htu !== request.url) throw new AuthError('path_mismatch', 'htu does not match the request path and query exactly as sent')

  if (!(await verifySignature(key.alg, key.keyObject, Buffer.from(signingInput), signature))) {
    throw new AuthError('bad_signature', 'signature does not verify')
  }
  return { header: header as unknown as Gw1Header, claims: c, key }
}

function requireClaims(claims: Record<string, unknown>): Gw1Claims {
  for (const name of ['iss', 'aud', 'jti', 'htm', 'htu', 'bsh'] as const) {
    if (typeof claims[name] !== 'string' || (claims[name] as string).length === 0) {
      throw new AuthError('malformed_token', `claim "${name}" must be a non-empty string`)
    }
  }
  for (const name of ['iat', 'exp'] as const) {
    if (!Number.isInteger(claims[name])) throw new AuthError('malformed_token', `claim "${name}" must be an integer (seconds)`)
  }
  if ((claims.jti as string).length > 128) throw new AuthError('malformed_token', 'claim "jti" must be at most 128 characters')
  return claims as unknown as Gw1Claims
}

/**
 * `crypto.verify` in its callback form runs on libuv's threadpool, so signature checks use the
 * second core instead of blocking the event loop (DESIGN.md stack note, measured there).
 */
export function verifySignature(alg: string, key: KeyObject, data: Buffer, signature: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (err: Error | null, ok: boolean) => resolve(!err && ok)
    if (alg === 'ES256') {
      if (signature.length !== 64) return resolve(false)
      verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature, done)
    } else if (alg === 'RS256') {
      verify('sha256', data, key, signature, done)
    } else if (alg === 'EdDSA') {
      verify(null, data, key, signature, done)
    } else {
      resolve(false)
    }
  })
}
