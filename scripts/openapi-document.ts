import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { openDatabase } from '../src/infra/db.js'
import { gatewayKeysFromJson, generateGatewayJwk } from '../src/infra/gateway-keys.js'

/** The OpenAPI document exactly as the gateway serves it at /openapi.json, as stable JSON text. */
export async function buildOpenapiDocument(): Promise<string> {
  const database = await openDatabase({})
  const app = await buildApp({
    config: loadConfig({ LOG_LEVEL: 'silent' }),
    database,
    gatewayKeys: gatewayKeysFromJson(JSON.stringify(generateGatewayJwk('openapi'))),
    logger: false,
  })
  try {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' })
    if (res.statusCode !== 200) throw new Error(`GET /openapi.json: HTTP ${res.statusCode}`)
    return JSON.stringify(res.json(), null, 2) + '\n'
  } finally {
    await app.close()
    await database.close()
  }
}
