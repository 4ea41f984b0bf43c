import type { KeyFile } from '../src/client/gw1-client.js'
import type { Db } from '../src/infra/db.js'
import { generatePrincipalKey } from '../src/modules/principals/principals.keygen.js'
import type { KeyAlg, PrincipalKind, PrincipalProfile, Scope } from '../src/modules/principals/principals.models.js'
import { createPrincipalsRepository } from '../src/modules/principals/principals.repository.js'
import { createPrincipalsService } from '../src/modules/principals/principals.service.js'

export interface PrincipalExtras { courtCode?: string; profile?: PrincipalProfile; alg?: KeyAlg }

/**
 * Registers a principal straight in the database through the service, as the bootstrap CLI does
 * (no admin call needed, so it also serves tests whose gateways run as child processes); returns
 * one key file per key.
 */
export async function registerPrincipalKeys(db: Db, id: string, kind: PrincipalKind, scopes: Scope[], keyCount: number, { alg, ...extra }: PrincipalExtras = {}): Promise<KeyFile[]> {
  const keys = await Promise.all(Array.from({ length: keyCount }, () => generatePrincipalKey(id, alg)))
  await createPrincipalsService(createPrincipalsRepository(db))
    .create({ principalId: 'test-setup' }, { id, kind, name: id, scopes, keys: keys.map((k) => k.publicJwk), ...extra })
  return keys.map((k) => k.keyFile)
}

/** registerPrincipalKeys with the one key most tests need. */
export async function registerPrincipal(db: Db, id: string, kind: PrincipalKind, scopes: Scope[], extra: PrincipalExtras = {}): Promise<KeyFile> {
  return (await registerPrincipalKeys(db, id, kind, scopes, 1, extra))[0]!
}
