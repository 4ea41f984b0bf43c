import { createHash, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, importJWK, SignJWT, type JSONWebKeySet, type JWK } from 'jose'

/** A principal's key file as the gateway's bootstrap CLI and demo seed write it. */
export interface KeyFile {
  principalId: string
  privateJwk: JWK & { kid: string; alg: string }
}

export function readKeyFile(path: string): KeyFile {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as KeyFile
  if (!parsed.principalId || !parsed.privateJwk?.kid || !parsed.privateJwk?.alg) {
    throw new Error(`${path} is not a key file (needs principalId and privateJwk with kid and alg)`)
  }
  return parsed
}

export interface SignOptions {
  method: string
  /** Path with query, exactly as it will be sent. */
  pathWithQuery: string
  body?: Buffer
  audience: string
  key: KeyFile
  /** Seconds since the epoch; defaults to now. */
  now?: number
  lifetimeSeconds?: number
  jti?: string
}

/** Importing a JWK costs far more than signing with it: import each key file's key once. */
const importedKeys = new WeakMap<object, ReturnType<typeof importJWK>>()
function importedKey(jwk: KeyFile['privateJwk']): ReturnType<typeof importJWK> {
  let key = importedKeys.get(jwk)
  if (!key) { key = importJWK(jwk, jwk.alg); importedKeys.set(jwk, key) }
  return key
}

/** Builds the `Authorization: GW1 <jws>` value for one request (DESIGN.md GW1). */
export async function signRequest(opts: SignOptions): Promise<{ authorization: string; jti: string }> {
  const now = opts.now ?? Math.floor(Date.now() / 1000)
  const jti = opts.jti ?? randomUUID()
  const privateKey = await importedKey(opts.key.privateJwk)
  const jws = await new SignJWT({
    htm: opts.method.toUpperCase(),
    htu: opts.pathWithQuery,
    bsh: createHash('sha256').update(opts.body ?? Buffer.alloc(0)).digest('base64url'),
  })
    .setProtectedHeader({ alg: opts.key.privateJwk.alg, kid: opts.key.privateJwk.kid, typ: 'gw1+jwt' })
    .setIssuer(opts.key.principalId)
    .setAudience(opts.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.lifetimeSeconds ?? 60))
    .setJti(jti)
    .sign(privateKey)
  return { authorization: `GW1 ${jws}`, jti }
}

export class ResponseSignatureError extends Error {}

/**
 * Verifies `X-GW-Signature` (a detached JWS over the exact body bytes) with the gateway's JWKS and
 * checks it is bound to our request's jti, so a response cannot be forged or swapped for another's.
 */
export async function verifyResponseSignature(signature: string | null, body: Buffer, expectedJti: string, jwks: JSONWebKeySet): Promise<void> {
  if (!signature) throw new ResponseSignatureError('response has no X-GW-Signature')
  const [h, empty, s] = signature.split('.')
  if (h === undefined || empty !== '' || s === undefined) throw new ResponseSignatureError('X-GW-Signature is not a detached JWS')
  const header = decodeProtectedHeader(signature)
  if (header.jti !== expectedJti) throw new ResponseSignatureError(`response is bound to jti ${String(header.jti)}, not ours (${expectedJti})`)
  try {
    await compactVerify(`${h}.${body.toString('base64url')}.${s}`, createLocalJWKSet(jwks), { algorithms: ['ES256', 'EdDSA'] })
  } catch (err) {
    throw new ResponseSignatureError(`X-GW-Signature does not verify: ${(err as Error).message}`)
  }
}

export class CertificateError extends Error {
  override name = 'CertificateError'
}

/**
 * Verifies a credit-repair certificate offline: a compact JWS signed by the gateway, checked against
 * its JWKS (`GET /.well-known/jwks.json`, fetched once and kept). Returns the certificate's claims;
 * throws CertificateError for a forged, altered or foreign one.
 */
export async function verifyCertificate(jws: string, jwks: JSONWebKeySet): Promise<Record<string, unknown>> {
  let payload: Record<string, unknown>
  try {
    const verified = await compactVerify(jws.trim(), createLocalJWKSet(jwks), { algorithms: ['ES256', 'EdDSA'] })
    payload = JSON.parse(new TextDecoder().decode(verified.payload)) as Record<string, unknown>
  } catch (err) {
    throw new CertificateError(`the certificate does not verify: ${(err as Error).message}`)
  }
  if (payload.typ !== 'credit-repair-certificate') throw new CertificateError('not a credit-repair certificate')
  return payload
}

export interface GatewayResponse<T = unknown> {
  status: number
  headers: Headers
  /** The raw bytes the signature covers. */
  raw: Buffer
  body: T
}

export interface ClientOptions {
  baseUrl: string
  key: KeyFile
  /** The gateway id every token is addressed to (config GATEWAY_ID). */
  audience?: string
  /** Verify X-GW-Signature on every response (default true). */
  verifyResponses?: boolean
}

/** A partner's whole integration: sign, send, verify. */
export class GatewayClient {
  private jwks: JSONWebKeySet | undefined
  private readonly audience: string
  private readonly baseUrl: string

  constructor(private readonly opts: ClientOptions) {
    this.audience = opts.audience ?? 'credit-gateway'
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '')
  }

  async gatewayKeys(refresh = false): Promise<JSONWebKeySet> {
    if (!this.jwks || refresh) {
      const res = await fetch(`${this.baseUrl}/.well-known/jwks.json`)
      if (!res.ok) throw new Error(`cannot fetch the gateway JWKS: HTTP ${res.status}`)
      this.jwks = (await res.json()) as JSONWebKeySet
    }
    return this.jwks
  }

  async request<T = unknown>(method: string, pathWithQuery: string, body?: unknown): Promise<GatewayResponse<T>> {
    const bytes = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
    const { authorization, jti } = await signRequest({ method, pathWithQuery, body: bytes, audience: this.audience, key: this.opts.key })
    const res = await fetch(`${this.baseUrl}${pathWithQuery}`, {
      method,
      // fetch would decompress a gzipped answer, and the signature covers the bytes as sent: ask for none.
      headers: { authorization, 'accept-encoding': 'identity', ...(bytes ? { 'content-type': 'application/json' } : {}) },
      body: bytes,
    })
    const raw = Buffer.from(await res.arrayBuffer())
    if (this.opts.verifyResponses !== false) {
      const signature = res.headers.get('x-gw-signature')
      try {
        await verifyResponseSignature(signature, raw, jti, await this.gatewayKeys())
      } catch (err) {
        // The gateway may have rotated its key since we fetched the JWKS: refetch once.
        if (!(err instanceof ResponseSignatureError)) throw err
        await verifyResponseSignature(signature, raw, jti, await this.gatewayKeys(true))
      }
    }
    const type = res.headers.get('content-type') ?? ''
    const parsed = type.includes('json') && raw.length > 0 ? JSON.parse(raw.toString('utf8')) : raw.toString('utf8')
    return { status: res.status, headers: res.headers, raw, body: parsed as T }
  }
}
