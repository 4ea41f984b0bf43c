import { compactVerify, createLocalJWKSet, decodeProtectedHeader, importJWK, SignJWT, type JSONWebKeySet, type JWK } from 'jose'
import { readJson } from '../shared/problem.js'

/**
 * GW1 from the browser (DESIGN.md GW1, the same protocol as src/client/gw1-client.ts): each API call
 * carries a JWS signed with the operator's key, and each response's X-GW-Signature is verified
 * against the gateway's JWKS and bound to our jti. The private key is imported as a non-extractable
 * WebCrypto key and kept only in this page's memory: it is never stored or sent anywhere.
 */
export interface OperatorKey {
  principalId: string
  kid: string
  alg: string
  key: CryptoKey
}

const ALLOWED_ALGS = ['ES256', 'EdDSA', 'RS256']

/** Reads a key file as the gateway writes it ({principalId, privateJwk}); the JWK is dropped after import. */
export async function importKeyFile(text: string): Promise<OperatorKey> {
  let parsed: { principalId?: unknown; privateJwk?: JWK & { kid?: string; alg?: string } }
  try { parsed = JSON.parse(text) as typeof parsed } catch { throw new Error('key.not_json') }
  const jwk = parsed.privateJwk
  if (typeof parsed.principalId !== 'string' || !jwk || typeof jwk.kid !== 'string' || typeof jwk.alg !== 'string') throw new Error('key.not_key_file')
  if (!ALLOWED_ALGS.includes(jwk.alg) || !('d' in jwk)) throw new Error('key.not_private')
  const key = await importJWK(jwk, jwk.alg, { extractable: false })
  if (!(key instanceof CryptoKey)) throw new Error('key.not_private')
  return { principalId: parsed.principalId, kid: jwk.kid, alg: jwk.alg, key }
}

async function sha256Base64url(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as BufferSource))
  let binary = ''
  for (const b of digest) binary += String.fromCharCode(b)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function base64url(bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export class SignedClient {
  private jwks: JSONWebKeySet | undefined

  constructor(private readonly operator: OperatorKey, private readonly audience: string) {}

  get principalId() { return this.operator.principalId }

  private async gatewayKeys(refresh = false): Promise<JSONWebKeySet> {
    if (!this.jwks || refresh) this.jwks = await readJson<JSONWebKeySet>(await fetch('/.well-known/jwks.json'))
    return this.jwks
  }

  /** A signed GET; resolves with the verified JSON body or throws the gateway's ProblemError. */
  async get<T>(pathWithQuery: string): Promise<T> {
    const jti = crypto.randomUUID()
    const now = Math.floor(Date.now() / 1000)
    const token = await new SignJWT({ htm: 'GET', htu: pathWithQuery, bsh: await sha256Base64url(new Uint8Array()) })
      .setProtectedHeader({ alg: this.operator.alg, kid: this.operator.kid, typ: 'gw1+jwt' })
      .setIssuer(this.operator.principalId)
      .setAudience(this.audience)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .setJti(jti)
      .sign(this.operator.key)
    const res = await fetch(pathWithQuery, { headers: { authorization: `GW1 ${token}` }, cache: 'no-store' })
    const raw = new Uint8Array(await res.clone().arrayBuffer())
    await this.verify(res.headers.get('x-gw-signature'), raw, jti)
    return readJson<T>(res)
  }

  private async verify(signature: string | null, body: Uint8Array, jti: string) {
    if (!signature) throw new Error('response.unsigned')
    const [h, empty, s] = signature.split('.')
    if (h === undefined || empty !== '' || s === undefined) throw new Error('response.bad_signature')
    if (decodeProtectedHeader(signature).jti !== jti) throw new Error('response.bad_signature')
    const attempt = async (refresh: boolean) => compactVerify(`${h}.${base64url(body)}.${s}`, createLocalJWKSet(await this.gatewayKeys(refresh)), { algorithms: ['ES256', 'EdDSA'] })
    // The gateway may have rotated its key since the JWKS was fetched: refetch once.
    try { await attempt(false) } catch { try { await attempt(true) } catch { throw new Error('response.bad_signature') } }
  }
}
