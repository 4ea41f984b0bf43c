import { isDeepStrictEqual } from 'node:util'
import { principalsError } from './principals.errors.js'
import {
  KeyValidationError, scopesNotAllowedFor, validatePublicJwk,
  type PrincipalKind, type PrincipalProfile, type Scope, type ValidatedKey,
} from './principals.models.js'
import type { PrincipalsRepository, PrincipalWithKeys } from './principals.repository.js'

export interface PrincipalCreateInput {
  id: string
  kind: PrincipalKind
  name: string
  courtCode?: string
  scopes: Scope[]
  profile?: PrincipalProfile
  keys: Record<string, unknown>[]
}

export interface PrincipalUpdateInput {
  name?: string
  scopes?: Scope[]
  profile?: PrincipalProfile
  status?: 'active' | 'disabled'
}

/** Who is acting and under which request, for the principal_events trail. */
export interface Actor { principalId: string; requestId?: string }

type Repo = Pick<PrincipalsRepository, 'inTransaction' | 'notifyChanged' | 'findById' | 'list' | 'insertPrincipal' | 'updatePrincipal' | 'findKey' | 'insertKey' | 'retireKey' | 'recordEvent'>

function validateKey(jwk: Record<string, unknown>, index?: number): ValidatedKey {
  try {
    return validatePublicJwk(jwk)
  } catch (err) {
    if (err instanceof KeyValidationError) {
      throw principalsError('invalid_key', 400, err.message, { field: index === undefined ? 'body' : `body.keys.${index}` })
    }
    throw err
  }
}

function checkScopes(kind: PrincipalKind, scopes: readonly string[]) {
  const bad = scopesNotAllowedFor(kind, scopes)
  if (bad.length > 0) {
    throw principalsError('scope_not_allowed', 422, `a ${kind} may not hold ${bad.join(', ')} (least privilege)`, { field: 'body.scopes' })
  }
}

/** Admin operations on principals and their keys; every change is one transaction with its event row. */
export function createPrincipalsService(repo: Repo, onChanged: (principalId: string) => void = () => {}) {
  async function mustFind(id: string): Promise<PrincipalWithKeys> {
    const found = await repo.findById(id)
    if (!found) throw principalsError('not_found', 404, `no principal "${id}"`)
    return found
  }

  return {
    list: () => repo.list(),
    get: mustFind,

    /**
     * Creates a principal with its keys. Retrying the same creation returns the existing principal
     * (`created: false`); a different principal under a taken id is a conflict.
     */
    async create(actor: Actor, input: PrincipalCreateInput): Promise<{ principal: PrincipalWithKeys; created: boolean }> {
      checkScopes(input.kind, input.scopes)
      if ((input.kind === 'court') !== (input.courtCode !== undefined)) {
        throw principalsError('court_code', 400, 'courtCode is required for a court and not allowed otherwise', { field: 'body.courtCode' })
      }
      if (input.profile?.subordinateCourtCodes && input.kind !== 'court') {
        throw principalsError('court_code', 400, 'only a court may have subordinateCourtCodes', { field: 'body.profile.subordinateCourtCodes' })
      }
      const keys = input.keys.map((k, i) => validateKey(k, i))
      if (new Set(keys.map((k) => k.kid)).size !== keys.length) {
        throw principalsError('duplicate_kid', 400, 'kids must be unique', { field: 'body.keys' })
      }
      const profile = input.profile ?? {}
      const existing = await repo.findById(input.id)
      if (existing) {
        const same = existing.kind === input.kind && existing.name === input.name && existing.courtCode === (input.courtCode ?? null)
          && isDeepStrictEqual([...existing.scopes].sort(), [...input.scopes].sort()) && isDeepStrictEqual(existing.profile, profile)
          && keys.every((k) => existing.keys.some((e) => e.kid === k.kid && isDeepStrictEqual(e.publicJwk, k.publicJwk)))
        if (same) return { principal: existing, created: false }
        throw principalsError('already_exists', 409, `principal "${input.id}" already exists with different attributes`, { field: 'body.id' })
      }
      await repo.inTransaction(async (tx) => {
        for (const k of keys) {
          if (await repo.findKey(k.kid, tx)) throw principalsError('kid_taken', 409, `kid "${k.kid}" is already registered`, { field: 'body.keys' })
        }
        await repo.insertPrincipal(tx, {
          id: input.id, kind: input.kind, name: input.name, courtCode: input.courtCode ?? null, scopes: input.scopes, profile,
        })
        for (const k of keys) await repo.insertKey(tx, { kid: k.kid, principalId: input.id, alg: k.alg, publicJwk: k.publicJwk })
        await repo.recordEvent(tx, { principalId: input.id, actor: actor.principalId, action: 'created', requestId: actor.requestId, detail: { kind: input.kind, scopes: input.scopes, kids: keys.map((k) => k.kid) } })
        await repo.notifyChanged(tx, input.id)
      })
      onChanged(input.id)
      return { principal: await mustFind(input.id), created: true }
    },

    async update(actor: Actor, id: string, patch: PrincipalUpdateInput): Promise<PrincipalWithKeys> {
      const current = await mustFind(id)
      if (patch.scopes) checkScopes(current.kind, patch.scopes)
      if (patch.profile?.subordinateCourtCodes && current.kind !== 'court') {
        throw principalsError('court_code', 400, 'only a court may have subordinateCourtCodes', { field: 'body.profile.subordinateCourtCodes' })
      }
      if (id === actor.principalId && patch.status === 'disabled') {
        throw principalsError('self_lockout', 409, 'an admin cannot disable itself', { field: 'body.status' })
      }
      await repo.inTransaction(async (tx) => {
        await repo.updatePrincipal(tx, id, patch)
        await repo.recordEvent(tx, { principalId: id, actor: actor.principalId, action: 'updated', requestId: actor.requestId, detail: { ...patch } })
        await repo.notifyChanged(tx, id)
      })
      onChanged(id)
      return mustFind(id)
    },

    /** Adds a key (rotation: several keys may be active at once). Re-adding the same key is a no-op. */
    async addKey(actor: Actor, id: string, jwk: Record<string, unknown>): Promise<{ principal: PrincipalWithKeys; created: boolean }> {
      const current = await mustFind(id)
      const key = validateKey(jwk)
      const existing = current.keys.find((k) => k.kid === key.kid)
      if (existing && existing.status === 'active' && isDeepStrictEqual(existing.publicJwk, key.publicJwk)) {
        return { principal: current, created: false }
      }
      await repo.inTransaction(async (tx) => {
        if (await repo.findKey(key.kid, tx)) throw principalsError('kid_taken', 409, `kid "${key.kid}" is already registered`, { field: 'body.kid' })
        await repo.insertKey(tx, { kid: key.kid, principalId: id, alg: key.alg, publicJwk: key.publicJwk })
        await repo.recordEvent(tx, { principalId: id, actor: actor.principalId, action: 'key_added', requestId: actor.requestId, detail: { kid: key.kid, alg: key.alg } })
        await repo.notifyChanged(tx, id)
      })
      onChanged(id)
      return { principal: await mustFind(id), created: true }
    },

    /** Retires a key: tokens signed with it are refused from then on. Retiring twice is a no-op. */
    async retireKey(actor: Actor, id: string, kid: string): Promise<PrincipalWithKeys> {
      const current = await mustFind(id)
      const key = current.keys.find((k) => k.kid === kid)
      if (!key) throw principalsError('key_not_found', 404, `principal "${id}" has no key "${kid}"`)
      if (key.status === 'retired') return current
      await repo.inTransaction(async (tx) => {
        await repo.retireKey(tx, id, kid)
        await repo.recordEvent(tx, { principalId: id, actor: actor.principalId, action: 'key_retired', requestId: actor.requestId, detail: { kid } })
        await repo.notifyChanged(tx, id)
      })
      onChanged(id)
      return mustFind(id)
    },
  }
}

export type PrincipalsService = ReturnType<typeof createPrincipalsService>
