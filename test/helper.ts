import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { PGlite } from '@electric-sql/pglite'
import postgres from 'postgres'
import type { Test } from 'tap'
import { buildApp } from '../src/app.js'
import { signRequest, type KeyFile } from '../src/client/gw1-client.js'
import { loadConfig, type Config } from '../src/config.js'
import type { Clock } from '../src/infra/clock.js'
import { openDatabase, type Database } from '../src/infra/db.js'
import { gatewayKeysFromJson, generateGatewayJwk, type GatewayKeys } from '../src/infra/gateway-keys.js'
import { migrate } from '../src/infra/migrate.js'
import type { PrincipalKind, Scope } from '../src/modules/principals/principals.models.js'
import { TEST_LOG_DIR } from './log-privacy.js'
import { registerPrincipal, type PrincipalExtras } from './principal-setup.js'

export const TEST_AUDIENCE = 'credit-gateway-test'

let pgliteTemplate: Promise<PGlite> | undefined

/**
 * A database made for one test file: a fresh PostgreSQL database on TEST_DATABASE_URL's server
 * (dropped at teardown), or an in-memory PGlite when it is unset. Real migrations either way.
 */
export async function createTestDatabase(t: Test): Promise<Database & { url?: string }> {
  const base = process.env.TEST_DATABASE_URL
  if (!base) {
    // Starting PGlite costs seconds; cloning a migrated template costs about one.
    pgliteTemplate ??= (async () => {
      const pg = await PGlite.create()
      await migrate(await openDatabase({ pglite: pg }))
      return pg
    })()
    const database = await openDatabase({ pglite: (await (await pgliteTemplate).clone()) as PGlite })
    t.teardown(() => database.close())
    return database
  }
  const name = `cgt_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
  const admin = postgres(base, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE "${name}"`)
  const url = new URL(base)
  url.pathname = `/${name}`
  const database = await openDatabase({ url: url.toString(), poolSize: 5 })
  await migrate(database)
  t.teardown(async () => {
    await database.close()
    await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    await admin.end()
  })
  return Object.assign(database, { url: url.toString() })
}

/** A clock tests can move. */
export function testClock(startMs = Date.now()): Clock & { advance(seconds: number): void; set(ms: number): void } {
  let now = startMs
  return { nowMs: () => now, advance: (s) => { now += s * 1000 }, set: (ms) => { now = ms } }
}

export interface TestGateway {
  app: FastifyInstance
  database: Database
  config: Config
  gatewayKeys: GatewayKeys
  clock: ReturnType<typeof testClock>
  /** Registers a principal straight through the service (as the bootstrap CLI does); returns its key file. */
  addPrincipal(p: { id: string; kind: PrincipalKind; scopes: Scope[] } & PrincipalExtras): Promise<KeyFile>
  /** A correctly signed request through app.inject. */
  signed(key: KeyFile, method: string, url: string, body?: unknown, opts?: { jti?: string; headers?: Record<string, string> }): Promise<LightMyRequestResponse>
  /** A correctly signed request with exactly these body bytes (for malformed or oversized bodies). */
  signedRaw(key: KeyFile, method: string, url: string, bytes: Buffer, contentType?: string): Promise<LightMyRequestResponse>
}

/** One log file per test process, named after its test file. */
export function testLogFile(name = basename(process.argv[1] ?? 'test')): string {
  mkdirSync(TEST_LOG_DIR, { recursive: true })
  return join(TEST_LOG_DIR, `${name}.${process.pid}.log`)
}

export async function buildTestGateway(t: Test, env: Record<string, string> = {}): Promise<TestGateway> {
  const database = await createTestDatabase(t)
  const config = loadConfig({
    GATEWAY_ID: TEST_AUDIENCE, LOG_LEVEL: 'debug', DATA_DIR: '/nonexistent',
    // Load shedding off: a busy CI machine must not turn a test's request into a 503 (test/overload.test.ts turns it on).
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
    ...env,
  })
  const gatewayKeys = gatewayKeysFromJson(JSON.stringify(generateGatewayJwk('gw-test-1')))
  const clock = testClock()
  // Logged as in production, to a file the privacy check reads after the suite (test/log-privacy.ts).
  const app = await buildApp({ config, database, gatewayKeys, clock, logFile: testLogFile() })
  t.teardown(() => app.close())
  return {
    app, database, config, gatewayKeys, clock,
    addPrincipal: ({ id, kind, scopes, ...extra }) => registerPrincipal(database.db, id, kind, scopes, extra),
    async signed(key, method, url, body, opts = {}) {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
      const { authorization } = await signRequest({ method, pathWithQuery: url, body: payload, audience: TEST_AUDIENCE, key, now: Math.floor(clock.nowMs() / 1000), jti: opts.jti })
      return app.inject({
        method: method as never, url, payload,
        headers: { authorization, ...(payload ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      })
    },
    async signedRaw(key, method, url, bytes, contentType = 'application/json') {
      const { authorization } = await signRequest({ method, pathWithQuery: url, body: bytes, audience: TEST_AUDIENCE, key, now: Math.floor(clock.nowMs() / 1000) })
      return app.inject({ method: method as never, url, payload: bytes, headers: { authorization, 'content-type': contentType } })
    },
  }
}

export const ADMIN_SCOPES: Scope[] = ['principals:write', 'rules:write', 'audit:read', 'supervision:read', 'listings:read', 'changes:read']
