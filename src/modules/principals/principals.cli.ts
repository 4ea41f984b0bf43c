#!/usr/bin/env node
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../../config.js'
import { openConfiguredDatabase } from '../../runtime.js'
import { KEY_ALGS, SCOPES_BY_KIND, type KeyAlg } from './principals.models.js'
import { generatePrincipalKey } from './principals.keygen.js'
import { createPrincipalsRepository } from './principals.repository.js'
import { createPrincipalsService } from './principals.service.js'

const USAGE = `usage: npm run principal -- create-admin --id ID [--name NAME] [--alg ES256|EdDSA|RS256] --out KEYFILE

Bootstraps the first admin (the API itself needs a signed admin): creates the principal with every
admin scope on the configured database (DATABASE_URL, or the embedded one under DATA_DIR), and
writes its private key to KEYFILE (mode 0600). Keep that file secret.`

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { id: { type: 'string' }, name: { type: 'string' }, alg: { type: 'string', default: 'ES256' }, out: { type: 'string' } },
  })
  if (positionals[0] !== 'create-admin' || !values.id || !values.out || !(KEY_ALGS as readonly string[]).includes(values.alg!)) {
    console.error(USAGE)
    return 2
  }
  const config = loadConfig()
  const database = await openConfiguredDatabase(config)
  try {
    const service = createPrincipalsService(createPrincipalsRepository(database.db))
    const { keyFile, publicJwk } = await generatePrincipalKey(values.id, values.alg as KeyAlg)
    // Write the key first (refusing to overwrite one), so an admin never exists without its key file.
    mkdirSync(dirname(values.out), { recursive: true })
    writeFileSync(values.out, JSON.stringify(keyFile, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
    const { created } = await service.create({ principalId: 'system:bootstrap' }, {
      id: values.id, kind: 'admin', name: values.name ?? values.id, scopes: [...SCOPES_BY_KIND.admin], keys: [publicJwk],
    }).catch((err: unknown) => { rmSync(values.out!); throw err })
    if (!created) { rmSync(values.out); console.error(`principal ${values.id} already exists; nothing written`); return 1 }
    console.log(`created admin ${values.id} (kid ${keyFile.privateJwk.kid}); private key written to ${values.out}`)
    return 0
  } finally {
    await database.close()
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: Error) => {
  console.error(err instanceof ConfigError ? err.message : `error: ${err.message}`)
  process.exitCode = 1
})
