import { exportJWK, generateKeyPair } from 'jose'
import type { KeyAlg } from './principals.models.js'

import type { KeyFile } from '../../client/gw1-client.js'

/** Generates a key pair for a principal; the private half goes to the key file, the public half to the registry. */
export async function generatePrincipalKey(principalId: string, alg: KeyAlg = 'ES256'): Promise<{ keyFile: KeyFile; publicJwk: Record<string, unknown> }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519', extractable: true } : { extractable: true, modulusLength: 2048 })
  const kid = `${principalId}-${new Date().toISOString().slice(0, 10).replaceAll('-', '')}-${Math.random().toString(36).slice(2, 8)}`
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg }
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg }
  return { keyFile: { principalId, privateJwk }, publicJwk }
}
