import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export interface GatewayKeys {
  /** The key that signs responses. */
  readonly kid: string
  readonly alg: 'ES256' | 'EdDSA'
  /** Every published public key (the active one first; older ones stay for verifiers during rotation). */
  readonly jwks: { keys: Record<string, unknown>[] }
  /** Detached JWS (RFC 7515 appendix F) over `payload`: `<protected>..<signature>`. */
  signDetached(payload: Buffer, header: Record<string, unknown>): Promise<string>
}

export class GatewayKeyError extends Error {}

function algOf(jwk: Record<string, unknown>): 'ES256' | 'EdDSA' {
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256'
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA'
  // DESIGN.md: the gateway's own key is ES256 or Ed25519 (RSA signing is slow).
  throw new GatewayKeyError('the gateway signing key must be EC P-256 (ES256) or OKP Ed25519 (EdDSA)')
}

function publicJwkOf(jwk: Record<string, unknown>): Record<string, unknown> {
  const pub = createPublicKey({ key: jwk as never, format: 'jwk' }).export({ format: 'jwk' }) as Record<string, unknown>
  return { ...pub, kid: jwk.kid, alg: algOf(jwk), use: 'sig' }
}

/** Builds the signer from a private JWK or a JWKS whose first key is the active signing key. */
export function gatewayKeysFromJson(text: string): GatewayKeys {
  let parsed: unknown
  try { parsed = JSON.parse(text) } catch { throw new GatewayKeyError('the gateway signing key is not valid JSON') }
  const list = (parsed && typeof parsed === 'object' && Array.isArray((parsed as { keys?: unknown }).keys))
    ? (parsed as { keys: Record<string, unknown>[] }).keys
    : [parsed as Record<string, unknown>]
  const active = list[0]
  if (!active || typeof active.kid !== 'string' || typeof active.d !== 'string') {
    throw new GatewayKeyError('the gateway signing key must be a private JWK with a kid')
  }
  const alg = algOf(active)
  let privateKey: KeyObject
  try { privateKey = createPrivateKey({ key: active as never, format: 'jwk' }) } catch (err) {
    throw new GatewayKeyError(`the gateway signing key is not a valid private JWK: ${(err as Error).message}`)
  }
  const kid = active.kid
  const jwks = { keys: list.map(publicJwkOf) }
  return {
    kid,
    alg,
    jwks,
    signDetached(payload, header) {
      const protectedB64 = Buffer.from(JSON.stringify({ alg, kid, ...header })).toString('base64url')
      const input = Buffer.from(`${protectedB64}.${payload.toString('base64url')}`)
      // Callback form: signing runs on the threadpool, off the event loop.
      return new Promise((resolve, reject) => {
        const done = (err: Error | null, sig: Buffer) => err ? reject(err) : resolve(`${protectedB64}..${sig.toString('base64url')}`)
        if (alg === 'ES256') sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' }, done)
        else sign(null, input, privateKey, done)
      })
    },
  }
}

export function generateGatewayJwk(kid = `gw-${new Date().toISOString().slice(0, 10)}-${Math.random().toString(36).slice(2, 8)}`): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { ...(privateKey.export({ format: 'jwk' }) as Record<string, unknown>), kid, alg: 'ES256', use: 'sig' }
}

/**
 * Loads the key from config (env text, else file). For the embedded demo only, a missing file is
 * generated once under the data folder so restarts keep the same key.
 */
export function loadGatewayKeys(opts: { keyText?: string; keyFile?: string; demoKeyFile?: string }): GatewayKeys {
  if (opts.keyText) return gatewayKeysFromJson(opts.keyText)
  const file = opts.keyFile ?? opts.demoKeyFile
  if (!file) throw new GatewayKeyError('no gateway signing key configured')
  if (!existsSync(file)) {
    if (opts.keyFile) throw new GatewayKeyError(`GATEWAY_SIGNING_KEY_FILE ${file} does not exist`)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, JSON.stringify({ keys: [generateGatewayJwk()] }, null, 2), { mode: 0o600 })
  }
  return gatewayKeysFromJson(readFileSync(file, 'utf8'))
}
