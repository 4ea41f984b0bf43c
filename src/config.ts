import { envSchema } from 'env-schema'

/**
 * One validated environment schema. Secrets have no defaults: on a real database (DATABASE_URL
 * set) the gateway refuses to start without its signing key and hash key; only the embedded demo
 * generates them, under ./data/.
 */
const schema = {
  type: 'object',
  properties: {
    HOST: { type: 'string', default: '127.0.0.1', minLength: 1 },
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 3000 },
    GATEWAY_ID: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', default: 'credit-gateway' },
    DATABASE_URL: { type: 'string', pattern: '^postgres(ql)?://' },
    DATABASE_POOL_SIZE: { type: 'integer', minimum: 1, maximum: 200, default: 10 },
    DATA_DIR: { type: 'string', default: './data', minLength: 1 },
    GATEWAY_SIGNING_KEY: { type: 'string', minLength: 1 },
    GATEWAY_SIGNING_KEY_FILE: { type: 'string', minLength: 1 },
    SEED_DEMO: { type: 'boolean' },
    LOG_LEVEL: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    BODY_LIMIT_BYTES: { type: 'integer', minimum: 1024, maximum: 104857600, default: 1048576 },
    CLOCK_SKEW_SECONDS: { type: 'integer', minimum: 0, maximum: 300, default: 60 },
    TRUST_PROXY: { type: 'boolean', default: false },
    SCHEDULER_INTERVAL_SECONDS: { type: 'integer', minimum: 1, maximum: 3600, default: 30 },
    FEEDBACK_DEADLINE_DAYS: { type: 'integer', minimum: 1, maximum: 365, default: 7 },
    // At most 60 s: 3 missed beats (stale) must come well before the 10-minute pruning of dead rows.
    PROCESS_HEARTBEAT_SECONDS: { type: 'integer', minimum: 1, maximum: 60, default: 5 },
    AUDIT_CHECKPOINT_SECONDS: { type: 'integer', minimum: 1, maximum: 3600, default: 60 },
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: { type: 'integer', minimum: 0, maximum: 60000, default: 200 },
    OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: { type: 'number', minimum: 0, maximum: 1, default: 0 },
    OVERLOAD_SAMPLE_INTERVAL_MS: { type: 'integer', minimum: 10, maximum: 10000, default: 250 },
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: { type: 'boolean', default: false },
    WEBHOOK_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 60000, default: 5000 },
    WEBHOOK_RETRY_BASE_MS: { type: 'integer', minimum: 10, maximum: 600000, default: 1000 },
    WEBHOOK_RETRY_MAX_MS: { type: 'integer', minimum: 10, maximum: 86400000, default: 300000 },
    WEBHOOK_PAUSE_AFTER_SECONDS: { type: 'integer', minimum: 1, maximum: 2592000, default: 86400 },
    WEBHOOK_POLL_MS: { type: 'integer', minimum: 10, maximum: 60000, default: 250 },
    // Renewed before each POST; must exceed WEBHOOK_TIMEOUT_MS by more than LEASE_MARGIN_MS (checked below).
    WEBHOOK_LEASE_SECONDS: { type: 'integer', minimum: 1, maximum: 3600, default: 60 },
    IDENTIFIER_HASH_SECRET: { type: 'string', minLength: 32 },
  },
  additionalProperties: true,
} as const

export interface Config {
  host: string
  port: number
  gatewayId: string
  /** Unset means the embedded PGlite database under dataDir. */
  databaseUrl: string | undefined
  databasePoolSize: number
  dataDir: string
  /** A private JWK or a JWKS (first key signs, the rest are still published); JSON text. */
  signingKey: string | undefined
  signingKeyFile: string | undefined
  /** Seed demo principals; defaults to true only on the embedded database. */
  seedDemo: boolean
  logLevel: string
  bodyLimitBytes: number
  clockSkewSeconds: number
  trustProxy: boolean
  /** Key of the HMAC that stands in for identity numbers in logs and audit entries; unset only for the demo. */
  identifierHashSecret: string | undefined
  /** How often the expiry / grace-period pass runs (listings expire within this of their period end). */
  schedulerIntervalSeconds: number
  /** Supervision: a hit without feedback this many days after the match is overdue. */
  feedbackDeadlineDays: number
  /** How often each process records itself in gateway_processes (supervision: index lag, throughput). */
  processHeartbeatSeconds: number
  /** How often each process signs its audit chain head into audit_checkpoints (when it moved). */
  auditCheckpointSeconds: number
  /** Load shedding (src/infra/overload.ts): 0 turns a check off. */
  overload: { maxEventLoopDelayMs: number; maxEventLoopUtilization: number; sampleIntervalMs: number }
  /** Webhook delivery (issue 7): receivers on private networks, timeouts, retry backoff, pausing. */
  webhooks: { allowPrivateNetworks: boolean; timeoutMs: number; retryBaseMs: number; retryMaxMs: number; pauseAfterSeconds: number; pollMs: number; leaseSeconds: number }
}

/**
 * How much longer than WEBHOOK_TIMEOUT_MS a webhook lease must last: a lease is renewed before each
 * POST and must outlast it, with room for the attempt's bookkeeping and some clock skew between processes.
 */
export const LEASE_MARGIN_MS = 5_000

export class ConfigError extends Error {
  override name = 'ConfigError'
}

interface RawEnv {
  HOST: string; PORT: number; GATEWAY_ID: string; DATABASE_URL?: string; DATABASE_POOL_SIZE: number
  DATA_DIR: string; GATEWAY_SIGNING_KEY?: string; GATEWAY_SIGNING_KEY_FILE?: string; SEED_DEMO?: boolean
  LOG_LEVEL: string; BODY_LIMIT_BYTES: number; CLOCK_SKEW_SECONDS: number; TRUST_PROXY: boolean; SCHEDULER_INTERVAL_SECONDS: number
  FEEDBACK_DEADLINE_DAYS: number
  PROCESS_HEARTBEAT_SECONDS: number
  AUDIT_CHECKPOINT_SECONDS: number
  OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: number; OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: number; OVERLOAD_SAMPLE_INTERVAL_MS: number
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: boolean; WEBHOOK_TIMEOUT_MS: number; WEBHOOK_RETRY_BASE_MS: number; WEBHOOK_RETRY_MAX_MS: number
  WEBHOOK_PAUSE_AFTER_SECONDS: number; WEBHOOK_POLL_MS: number
  WEBHOOK_LEASE_SECONDS: number
  IDENTIFIER_HASH_SECRET?: string
}

/** Reads and validates the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  let raw: RawEnv
  try {
    raw = envSchema<RawEnv>({ schema, data: env, dotenv: false })
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`)
  }
  if (raw.DATABASE_URL && !raw.GATEWAY_SIGNING_KEY && !raw.GATEWAY_SIGNING_KEY_FILE) {
    throw new ConfigError('invalid configuration: GATEWAY_SIGNING_KEY or GATEWAY_SIGNING_KEY_FILE is required when DATABASE_URL is set (no default secrets outside the embedded demo)')
  }
  if (raw.DATABASE_URL && !raw.IDENTIFIER_HASH_SECRET) {
    throw new ConfigError('invalid configuration: IDENTIFIER_HASH_SECRET (at least 32 characters) is required when DATABASE_URL is set (no default secrets outside the embedded demo)')
  }
  if (raw.WEBHOOK_LEASE_SECONDS * 1000 <= raw.WEBHOOK_TIMEOUT_MS + LEASE_MARGIN_MS) {
    throw new ConfigError(`invalid configuration: WEBHOOK_LEASE_SECONDS (${raw.WEBHOOK_LEASE_SECONDS} s) must exceed WEBHOOK_TIMEOUT_MS (${raw.WEBHOOK_TIMEOUT_MS} ms) by more than ${LEASE_MARGIN_MS / 1000} s, or another process could take a subscription over while a POST is still in flight; raise WEBHOOK_LEASE_SECONDS to at least ${Math.floor((raw.WEBHOOK_TIMEOUT_MS + LEASE_MARGIN_MS) / 1000) + 1} or lower WEBHOOK_TIMEOUT_MS`)
  }
  return {
    host: raw.HOST,
    port: raw.PORT,
    gatewayId: raw.GATEWAY_ID,
    databaseUrl: raw.DATABASE_URL || undefined,
    databasePoolSize: raw.DATABASE_POOL_SIZE,
    dataDir: raw.DATA_DIR,
    signingKey: raw.GATEWAY_SIGNING_KEY,
    signingKeyFile: raw.GATEWAY_SIGNING_KEY_FILE,
    seedDemo: raw.SEED_DEMO ?? !raw.DATABASE_URL,
    logLevel: raw.LOG_LEVEL,
    bodyLimitBytes: raw.BODY_LIMIT_BYTES,
    clockSkewSeconds: raw.CLOCK_SKEW_SECONDS,
    trustProxy: raw.TRUST_PROXY,
    schedulerIntervalSeconds: raw.SCHEDULER_INTERVAL_SECONDS,
    feedbackDeadlineDays: raw.FEEDBACK_DEADLINE_DAYS,
    processHeartbeatSeconds: raw.PROCESS_HEARTBEAT_SECONDS,
    auditCheckpointSeconds: raw.AUDIT_CHECKPOINT_SECONDS,
    overload: { maxEventLoopDelayMs: raw.OVERLOAD_MAX_EVENT_LOOP_DELAY_MS, maxEventLoopUtilization: raw.OVERLOAD_MAX_EVENT_LOOP_UTILIZATION, sampleIntervalMs: raw.OVERLOAD_SAMPLE_INTERVAL_MS },
    webhooks: {
      allowPrivateNetworks: raw.WEBHOOK_ALLOW_PRIVATE_NETWORKS, timeoutMs: raw.WEBHOOK_TIMEOUT_MS, retryBaseMs: raw.WEBHOOK_RETRY_BASE_MS,
      retryMaxMs: raw.WEBHOOK_RETRY_MAX_MS, pauseAfterSeconds: raw.WEBHOOK_PAUSE_AFTER_SECONDS, pollMs: raw.WEBHOOK_POLL_MS,
      leaseSeconds: raw.WEBHOOK_LEASE_SECONDS,
    },
    identifierHashSecret: raw.IDENTIFIER_HASH_SECRET,
  }
}
