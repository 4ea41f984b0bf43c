import { createPublicKey } from 'node:crypto'
import type { KeyEntry } from '../../infra/gw1/token.js'
import type { Principal } from './principals.models.js'
import type { PrincipalsRepository } from './principals.repository.js'

/** Safety net if a NOTIFY is lost (e.g. the listening connection dropped): entries live at most this long. */
const TTL_MS = 30_000

/**
 * Keys by kid with their owners, cached so the GW1 hot path does not query the database. Cleared on
 * every principals_changed NOTIFY (any process) and on local changes, so a retired key stops
 * working everywhere at once; unknown kids are cached too, so junk kids cannot flood the database.
 */
export function createKeyCache(repo: Pick<PrincipalsRepository, 'findKeyWithPrincipal'>, now: () => number = Date.now) {
  const entries = new Map<string, { at: number; entry: KeyEntry<Principal> | undefined }>()
  const MAX_ENTRIES = 100_000
  // Bumped by clear(): a look-up that started before a clear must not store what it read.
  let generation = 0

  return {
    async lookup(kid: string): Promise<KeyEntry<Principal> | undefined> {
      const hit = entries.get(kid)
      if (hit && now() - hit.at < TTL_MS) return hit.entry
      const startedIn = generation
      const found = await repo.findKeyWithPrincipal(kid)
      const entry: KeyEntry<Principal> | undefined = found && {
        kid,
        alg: found.key.alg,
        status: found.key.status,
        keyObject: createPublicKey({ key: found.key.publicJwk as never, format: 'jwk' }),
        principalId: found.principal.id,
        principalStatus: found.principal.status,
        principal: {
          id: found.principal.id, kind: found.principal.kind, name: found.principal.name, courtCode: found.principal.courtCode,
          scopes: found.principal.scopes as Principal['scopes'], profile: found.principal.profile, status: found.principal.status,
        },
      }
      if (startedIn === generation) {
        if (entries.size >= MAX_ENTRIES) entries.clear()
        entries.set(kid, { at: now(), entry })
      }
      return entry
    },
    clear() {
      generation++
      entries.clear()
    },
  }
}

export type KeyCache = ReturnType<typeof createKeyCache>
