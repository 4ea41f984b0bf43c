import { createPublicKey, type KeyObject } from 'node:crypto'

export const PRINCIPAL_KINDS = ['court', 'agency', 'admin'] as const
export type PrincipalKind = (typeof PRINCIPAL_KINDS)[number]

/** DESIGN.md "Scopes and projection". */
export const SCOPES = [
  'listings:write', 'listings:read', 'match', 'changes:read', 'feedback:write', 'appeals:review',
  'repairs:review', 'rules:write', 'principals:write', 'audit:read', 'supervision:read',
] as const
export type Scope = (typeof SCOPES)[number]

/**
 * Least privilege: the scopes each kind of principal may ever hold. A court cannot be given
 * `match`, an agency cannot write listings, only admins manage principals and rules.
 */
export const SCOPES_BY_KIND: Record<PrincipalKind, readonly Scope[]> = {
  court: ['listings:write', 'listings:read', 'appeals:review', 'repairs:review'],
  agency: ['listings:read', 'match', 'changes:read', 'feedback:write'],
  admin: ['listings:read', 'changes:read', 'rules:write', 'principals:write', 'audit:read', 'supervision:read'],
}

export const LIST_KINDS = ['dishonest', 'restricted'] as const
export type ListKind = (typeof LIST_KINDS)[number]

/** What an agency's (or court's) profile fixes beyond its scopes: DESIGN.md "Scopes and projection". */
export interface PrincipalProfile {
  /** Lists the principal may match or read (agencies). */
  lists?: ListKind[]
  /** Listing fields it sees; others are masked or absent (projection). */
  fields?: string[]
  /** Approval scenarios it evaluates (e.g. TICKET_AIR). */
  scenarios?: string[]
  /** Agencies: its code in the rule set's agency catalogue when that is not its principal id. */
  agency?: string
  rateLimit?: { max: number; timeWindowSeconds: number }
  dailyQuota?: number
  /** Courts: subordinate court codes a higher court may also write for. */
  subordinateCourtCodes?: string[]
}

export const KEY_ALGS = ['ES256', 'EdDSA', 'RS256'] as const
export type KeyAlg = (typeof KEY_ALGS)[number]
export const MIN_RSA_BITS = 2048

export class KeyValidationError extends Error {}

export interface ValidatedKey {
  kid: string
  alg: KeyAlg
  publicJwk: Record<string, unknown>
  keyObject: KeyObject
}

/**
 * Accepts only a public JWK of an allowed type and size, and derives its one algorithm, so a key
 * can never be used with an algorithm it was not registered for (no `none`, no HS*, no RSA < 2048).
 */
export function validatePublicJwk(jwk: Record<string, unknown>): ValidatedKey {
  if (typeof jwk.kid !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(jwk.kid)) {
    throw new KeyValidationError('kid must be 1-128 characters of A-Z a-z 0-9 . _ : -')
  }
  for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) {
    if (priv in jwk) throw new KeyValidationError(`a public key must not contain the private member "${priv}"`)
  }
  let alg: KeyAlg
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') alg = 'ES256'
  else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') alg = 'EdDSA'
  else if (jwk.kty === 'RSA') alg = 'RS256'
  else throw new KeyValidationError('key type must be EC P-256 (ES256), OKP Ed25519 (EdDSA) or RSA (RS256)')
  if (jwk.alg !== undefined && jwk.alg !== alg) {
    throw new KeyValidationError(`alg "${String(jwk.alg)}" does not fit a ${String(jwk.kty)} key; expected ${alg}`)
  }
  let keyObject: KeyObject
  try {
    keyObject = createPublicKey({ key: jwk as never, format: 'jwk' })
  } catch (err) {
    throw new KeyValidationError(`not a valid public JWK: ${(err as Error).message}`)
  }
  if (alg === 'RS256' && (keyObject.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new KeyValidationError(`RSA keys must be at least ${MIN_RSA_BITS} bits`)
  }
  const publicJwk = { ...(keyObject.export({ format: 'jwk' }) as Record<string, unknown>), kid: jwk.kid, alg }
  return { kid: jwk.kid, alg, publicJwk, keyObject }
}

/** Scopes a kind may not hold, if any were asked for. */
export function scopesNotAllowedFor(kind: PrincipalKind, scopes: readonly string[]): string[] {
  const allowed = SCOPES_BY_KIND[kind] as readonly string[]
  return scopes.filter((s) => !allowed.includes(s))
}

/** A principal as the rest of the gateway sees it once its request is authenticated. */
export interface Principal {
  id: string
  kind: PrincipalKind
  name: string
  courtCode: string | null
  scopes: Scope[]
  profile: PrincipalProfile
  status: 'active' | 'disabled'
}
