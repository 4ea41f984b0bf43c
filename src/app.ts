import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createIdentifierHasher } from './modules/identity/identity.models.js'
import type { Config } from './config.js'
import { systemClock, type Clock } from './infra/clock.js'
import type { Database } from './infra/db.js'
import { frameworkErrors, registerErrorHandling, UNAVAILABLE_RETRY_AFTER_SECONDS } from './infra/errors.js'
import type { GatewayKeys } from './infra/gateway-keys.js'
import gw1 from './infra/gw1/plugin.js'
import { ReplayGuard } from './infra/gw1/replay-guard.js'
import { auditRefusals } from './infra/gw1/refusal-audit.js'
import { opsRoutes } from './infra/ops.routes.js'
import { loggerOptions } from './infra/logger.js'
import metrics from './infra/metrics.js'
import overload from './infra/overload.js'
import openapi, { describeRoute } from './infra/openapi.js'
import { projectPath } from './infra/paths.js'
import { registerPrincipalRateLimit, registerPublicRateLimit } from './infra/rate-limit.js'
import { webPages } from './infra/web.js'
import { loadSchemas, validatorCompiler } from './infra/schemas.js'
import { createKeyCache } from './modules/principals/principals.key-cache.js'
import { createPrincipalsRepository, PRINCIPALS_CHANNEL } from './modules/principals/principals.repository.js'
import { principalsRoutes } from './modules/principals/principals.routes.js'
import { createPrincipalsService } from './modules/principals/principals.service.js'
import type { Principal } from './modules/principals/principals.models.js'
import { whoamiRoutes } from './modules/principals/whoami.routes.js'
import { createAuditRepository } from './modules/audit/audit.repository.js'
import { applicationsPublicRoutes, reviewsRoutes } from './modules/applications/applications.routes.js'
import { createApplicationsRepository } from './modules/applications/applications.repository.js'
import { createApplicationsService, logNotifier, type Notifier } from './modules/applications/applications.service.js'
import { auditRoutes, receiptsRoutes } from './modules/audit/audit.routes.js'
import { createAuditWriter, type AuditWriter } from './modules/audit/audit.writer.js'
import { createAuditCheckpointer, type AuditCheckpointer } from './modules/audit/audit.checkpoints.js'
import { MatchIndex } from './modules/matching/matching.index.js'
import { matchingRoutes } from './modules/matching/matching.routes.js'
import { rulesRoutes } from './modules/rules/rules.routes.js'
import { createFeedbackRepository } from './modules/feedback/feedback.repository.js'
import { feedbackRoutes } from './modules/feedback/feedback.routes.js'
import { createFeedbackService } from './modules/feedback/feedback.service.js'
import { publicSearchRoutes } from './modules/public-search/public-search.routes.js'
import { createPublicSearchService } from './modules/public-search/public-search.service.js'
import { createDeliveryRepository } from './modules/delivery/delivery.repository.js'
import { subscriptionsRoutes } from './modules/delivery/delivery.routes.js'
import { createDeliveryService, type DeliveryService } from './modules/delivery/delivery.service.js'
import { createSnapshotRepository } from './modules/snapshot/snapshot.repository.js'
import { snapshotRoutes } from './modules/snapshot/snapshot.routes.js'
import { createSnapshotService } from './modules/snapshot/snapshot.service.js'
import { createSupervisionRepository } from './modules/supervision/supervision.repository.js'
import { supervisionRoutes } from './modules/supervision/supervision.routes.js'
import { createSupervisionService } from './modules/supervision/supervision.service.js'
import { createProcessHeartbeat, type ProcessHeartbeat } from './modules/processes/processes.heartbeat.js'
import { createProcessesRepository } from './modules/processes/processes.repository.js'
import { createRulesService, type RulesService } from './modules/rules/rules.service.js'
import { createMatchingService } from './modules/matching/matching.service.js'
import { createIndexSync, type IndexSync } from './modules/matching/matching.sync.js'
import { createQuotaGuard } from './modules/matching/matching.quota.js'
import { loadWorkingDayCalendar } from './modules/calendar/calendar.loader.js'
import { createListingsRepository } from './modules/listings/listings.repository.js'
import { changesRoutes, listingsRoutes } from './modules/listings/listings.routes.js'
import { createListingsService, type ListingsService } from './modules/listings/listings.service.js'

export interface AppDeps {
  config: Config
  database: Database
  gatewayKeys: GatewayKeys
  clock?: Clock
  logger?: FastifyServerOptions['logger']
  /** Write the log (config.logLevel, the production redaction) to this file instead of stdout: the tests' privacy check reads it. */
  logFile?: string
  listingsService?: ListingsService
  /** HMAC of identifiers for logs and audit (config IDENTIFIER_HASH_SECRET); a per-process random key if absent. */
  identifierHash?: (normalizedIdentifier: string) => string
  /** Where appeal and repair status changes are sent (default: a log line). */
  notifier?: Notifier
}

declare module 'fastify' {
  interface FastifyInstance {
    listings: ListingsService
    identifierHash: (normalizedIdentifier: string) => string
    audit: AuditWriter
    auditCheckpoints: AuditCheckpointer
    matchIndex: MatchIndex
    matchSync: IndexSync
    delivery: DeliveryService
    rules: RulesService
    processHeartbeat: ProcessHeartbeat
    /** Every signed route and the scope it requires (the security matrix test walks them). */
    signedRoutes: ReadonlyArray<{ method: string; url: string; scope: string }>
  }
}

const VERSION = (JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string }).version

/** Builds the gateway: infra plugins first, then each module under its prefix and auth level. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, database, gatewayKeys } = deps
  const clock = deps.clock ?? systemClock
  const identifierHash = deps.identifierHash ?? createIdentifierHasher(randomBytes(32))
  const app = Fastify({
    logger: deps.logger ?? loggerOptions(config.logLevel, identifierHash, deps.logFile),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
    frameworkErrors, // a bad URL or an over-long path parameter is a problem+json too
    ajv: { customOptions: { removeAdditional: false } },
  })
  app.setValidatorCompiler(validatorCompiler())
  for (const schema of loadSchemas()) app.addSchema(schema)
  registerErrorHandling(app)
  app.addHook('onRoute', describeRoute)
  app.addHook('onSend', async (request, reply) => { reply.header('x-request-id', request.id) })

  await app.register(openapi, { version: VERSION })
  await app.register(metrics)
  await app.register(overload, { ...config.overload, retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS })

  // Principals: the key cache is dropped on every change, in this process and (via NOTIFY) all others.
  const principalsRepo = createPrincipalsRepository(database.db)
  const keyCache = createKeyCache(principalsRepo)
  const principalsService = createPrincipalsService(principalsRepo, () => keyCache.clear())
  const unlisten = await database.listen(PRINCIPALS_CHANNEL, () => keyCache.clear(), () => {
    keyCache.clear()
    app.log.warn('principals LISTEN connection re-established; key cache cleared')
  })
  const replayGuard = new ReplayGuard(database)
  app.addHook('onClose', async () => { replayGuard.close(); await unlisten() })

  // Listings: the calendar is loaded once; the expiry scheduler is started by server.ts, not here.
  const calendar = loadWorkingDayCalendar()
  const listingsService = deps.listingsService ?? createListingsService({ repo: createListingsRepository(database.db), calendar, clock })
  app.decorate('listings', listingsService)
  app.decorate('identifierHash', identifierHash)

  // 全程留痕: one group-commit audit writer per process (its own hash chain).
  const auditWriter = createAuditWriter(database, { clock })
  app.decorate('audit', auditWriter)
  // Signed heads of this writer's chain: what shows entries cut from its end (audit.checkpoints.ts).
  const auditCheckpoints = createAuditCheckpointer({ database, writer: auditWriter, keys: gatewayKeys, intervalSeconds: config.auditCheckpointSeconds, clock, log: app.log })
  app.decorate('auditCheckpoints', auditCheckpoints)
  app.addHook('onReady', async () => { auditCheckpoints.start() })
  const auditRepository = createAuditRepository(database.db)

  const applicationsRepository = createApplicationsRepository(database.db)
  // Matching from memory: the index is built when the app is ready and follows the change log.
  const matchIndex = new MatchIndex()
  const matchSync = createIndexSync(database, matchIndex, app.log)
  app.decorate('matchIndex', matchIndex)
  app.decorate('matchSync', matchSync)
  app.addHook('onReady', async () => { await matchSync.start() })
  app.addHook('onClose', async () => { await matchSync.stop(); await auditWriter.close(); await auditCheckpoints.stop() })
  // The graded-punishment rule set in force, switched on publication by any process.
  const rulesService = createRulesService(database, app.log)
  app.decorate('rules', rulesService)
  app.addHook('onReady', async () => { await rulesService.start() })
  app.addHook('onClose', async () => { await rulesService.stop() })
  // This process's row in gateway_processes (index lag, events applied), started once the index is.
  const processesRepository = createProcessesRepository(database)
  const processHeartbeat = createProcessHeartbeat({ repository: processesRepository, clock, intervalSeconds: config.processHeartbeatSeconds, log: app.log, sync: matchSync, index: matchIndex })
  app.decorate('processHeartbeat', processHeartbeat)
  app.addHook('onReady', async () => { await processHeartbeat.start() })
  app.addHook('onClose', async () => { await processHeartbeat.stop() })
  // Feedback on hits and the supervision figures over audit and feedback.
  const feedbackService = createFeedbackService({ feedback: createFeedbackRepository(database.db), audit: auditRepository })
  const supervisionService = createSupervisionService({ repository: createSupervisionRepository(database), clock, feedbackDeadlineDays: config.feedbackDeadlineDays, applications: applicationsRepository, processes: processesRepository, heartbeatSeconds: config.processHeartbeatSeconds })
  const quota = createQuotaGuard(database, clock)
  app.addHook('onClose', async () => { await quota.close() })
  const matchingService = createMatchingService({ db: database.db, index: matchIndex, audit: auditWriter, hash: identifierHash, quota, rules: rulesService, clock, appeals: { pendingListingIds: (ids) => applicationsRepository.pendingListingIds(ids) } })

  await app.register(gw1, {
    audience: config.gatewayId, clockSkewSeconds: config.clockSkewSeconds, clock, gatewayKeys, replayGuard,
    lookupKey: (kid) => keyCache.lookup(kid),
  })

  // Public and operations routes: no signature.
  await app.register(opsRoutes, { database, gatewayKeys, indexReady: () => matchSync.ready, rulesReady: () => rulesService.ready })
  // The public portal and the supervision console: static pages; the console signs its own API calls.
  await app.register(webPages)

  // Webhooks: subscriptions, and a delivery worker in every process (leases keep them apart).
  const deliveryService = createDeliveryService({
    repo: createDeliveryRepository(database), clock, gatewayKeys, options: config.webhooks, log: app.log,
    principalOf: async (id) => { const p = await principalsRepo.findById(id); return p && { id: p.id, kind: p.kind, name: p.name, courtCode: p.courtCode, scopes: p.scopes as Principal['scopes'], profile: p.profile, status: p.status } },
  })
  app.decorate('delivery', deliveryService)
  app.addHook('onReady', async () => { deliveryService.start() })
  app.addHook('onClose', async () => { await deliveryService.stop() })

  // Public routes (citizens, the public site): no signature; rate-limited per client address.
  const publicSearchService = createPublicSearchService({ database })
  const applicationsService = createApplicationsService({
    repo: applicationsRepository, listingsRepo: createListingsRepository(database.db), listings: listingsService,
    calendar, clock, gatewayKeys, hash: identifierHash, notifier: deps.notifier ?? logNotifier(app.log),
  })
  await app.register(async (pub) => {
    await registerPublicRateLimit(pub)
    await pub.register(publicSearchRoutes, { prefix: '/v1/public/listings', service: publicSearchService })
    await pub.register(applicationsPublicRoutes, { service: applicationsService })
  })

  // Signed routes: every route here needs a GW1 token and declares the scope it requires.
  const signedRoutes: Array<{ method: string; url: string; scope: string }> = []
  app.decorate('signedRoutes', signedRoutes)
  await app.register(async (signed) => {
    signed.addHook('onRoute', (route) => {
      const scope = (route.config as { scope?: string } | undefined)?.scope
      if (!scope) throw new Error(`signed route ${route.method} ${route.url} declares no scope`)
      for (const method of [route.method].flat()) if (method !== 'HEAD') signedRoutes.push({ method, url: route.url, scope })
      ;(route.schema ??= {}).security = [{ GW1: [] }]
    })
    signed.addHook('onError', auditRefusals(auditWriter))
    signed.addHook('onRequest', signed.gw1Authenticate)
    signed.addHook('preValidation', signed.gw1Authorize)
    await registerPrincipalRateLimit(signed)
    await signed.register(whoamiRoutes, { prefix: '/v1/whoami' })
    await signed.register(principalsRoutes, { prefix: '/v1/principals', service: principalsService })
    await signed.register(listingsRoutes, { prefix: '/v1/listings', service: listingsService })
    await signed.register(changesRoutes, { prefix: '/v1/changes', service: listingsService })
    await signed.register(matchingRoutes, { prefix: '/v1/match', service: matchingService })
    await signed.register(receiptsRoutes, { prefix: '/v1/receipts', repository: auditRepository })
    await signed.register(auditRoutes, { prefix: '/v1/audit', repository: auditRepository })
    await signed.register(rulesRoutes, { prefix: '/v1/rules', service: rulesService })
    await signed.register(feedbackRoutes, { prefix: '/v1/feedback', service: feedbackService })
    await signed.register(supervisionRoutes, { prefix: '/v1/supervision', service: supervisionService })
    await signed.register(reviewsRoutes, { prefix: '/v1/reviews', service: applicationsService })
    await signed.register(subscriptionsRoutes, { prefix: '/v1/subscriptions', service: deliveryService })
    await signed.register(snapshotRoutes, { prefix: '/v1/snapshot', service: createSnapshotService({ repo: createSnapshotRepository(database.db), clock, cursorKey: Buffer.from(identifierHash('snapshot-cursor-key/v1'), 'hex') }) })
  })

  return app
}
