import closeWithGrace from 'close-with-grace'
import { join } from 'node:path'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { seedDemoListings } from './modules/demo/demo.listings.js'
import { seedDemoPrincipals } from './modules/demo/demo.seed.js'
import type { Principal } from './modules/principals/principals.models.js'
import { startListingsScheduler } from './modules/listings/listings.scheduler.js'
import { createPrincipalsRepository } from './modules/principals/principals.repository.js'
import { createPrincipalsService } from './modules/principals/principals.service.js'
import { createIdentifierHasher } from './modules/identity/identity.models.js'
import { configuredGatewayKeys, configuredIdentifierHashSecret, openConfiguredDatabase } from './runtime.js'

async function main() {
  let config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) { console.error(err.message); process.exit(1) }
    throw err
  }
  const gatewayKeys = configuredGatewayKeys(config)
  const database = await openConfiguredDatabase(config)
  const identifierHash = createIdentifierHasher(configuredIdentifierHashSecret(config))
  const app = await buildApp({ config, database, gatewayKeys, identifierHash })

  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'closing after error')
    else app.log.info({ signal }, 'closing')
    await app.close()
    await database.close()
  })

  const keysDir = join(config.dataDir, 'demo-keys')
  if (config.seedDemo) {
    const repo = createPrincipalsRepository(database.db)
    if ((await repo.count()) === 0) {
      const service = createPrincipalsService(repo)
      const seeded = await seedDemoPrincipals(service, keysDir)
      const courts = await Promise.all(['court-bj-0105', 'court-bj-03'].map((id) => service.get(id)))
      const listings = await seedDemoListings(app.listings, courts as Principal[], new Date())
      app.log.info({ principals: seeded, keysDir, listings }, 'seeded demo principals and listings')
    }
  }
  const stopScheduler = startListingsScheduler(app.listings, app.log, config.schedulerIntervalSeconds * 1000)
  app.addHook('onClose', stopScheduler)
  const address = await app.listen({ host: config.host, port: config.port })
  if (config.seedDemo) {
    console.log(`\nTry a signed call as the demo admin:\n  npm run client -- --url ${address} --key ${join(keysDir, 'admin-demo.json')} GET /v1/principals\n`)
    console.log(`Public portal:       ${address}/portal/`)
    console.log(`Supervision console: ${address}/console/ (gateway id ${config.gatewayId}; load ${join(keysDir, 'admin-demo.json')})\n`)
  }
  // Printed last: scripts and tests wait for this line.
  app.log.info(`credit-gateway ${config.gatewayId} listening on ${address} (${database.engine})`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
