#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { GatewayClient, readKeyFile } from './gw1-client.js'
import { runSyncCli } from './sync.js'
import { runServeWebhookCli } from './webhook-receiver.js'

const USAGE = `usage: npm run client -- --key KEYFILE [--url URL] [--aud GATEWAY_ID] METHOD PATH [--data JSON|@FILE]

Signs the request as the principal in KEYFILE (GW1), sends it, verifies the response's
X-GW-Signature against the gateway's JWKS, and prints the body. Exit status 1 for HTTP >= 400.

  --key   a key file ({"principalId", "privateJwk"}), e.g. data/demo-keys/admin-demo.json
  --url   gateway base URL (default $GATEWAY_URL or http://127.0.0.1:3000)
  --aud   the gateway id tokens are addressed to (default $GATEWAY_ID or credit-gateway)
  --data  request body: JSON text, or @path to read it from a file
   or: npm run client -- sync --key KEYFILE --out DIR [--url URL] [--follow] [--wait SECONDS]
       keeps DIR a verified local copy of the agency's lists (\`npm run client -- sync --help\`)
   or: npm run client -- serve-webhook --out DIR [--url URL] [--host HOST] [--port PORT]
       receives webhook events, verifies them against the gateway JWKS and applies them to DIR`

export async function runClientCli(argv: string[]): Promise<number> {
  if (argv[0] === 'sync') return runSyncCli(argv.slice(1))
  if (argv[0] === 'serve-webhook') return runServeWebhookCli(argv.slice(1))
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { key: { type: 'string' }, url: { type: 'string' }, aud: { type: 'string' }, data: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  })
  const [method, path] = positionals
  if (values.help || !values.key || !method || !path) {
    console.error(USAGE)
    return values.help ? 0 : 2
  }
  const client = new GatewayClient({
    baseUrl: values.url ?? process.env.GATEWAY_URL ?? 'http://127.0.0.1:3000',
    audience: values.aud ?? process.env.GATEWAY_ID ?? 'credit-gateway',
    key: readKeyFile(values.key),
  })
  const body = values.data === undefined ? undefined : values.data.startsWith('@') ? readFileSync(values.data.slice(1), 'utf8') : values.data
  const res = await client.request(method.toUpperCase(), path, body)
  console.error(`HTTP ${res.status} · response signature verified`)
  console.log(typeof res.body === 'string' ? res.body : JSON.stringify(res.body, null, 2))
  return res.status >= 400 ? 1 : 0
}

runClientCli(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: Error) => {
  console.error(`error: ${err.message}`)
  process.exitCode = 1
})
