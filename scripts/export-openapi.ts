import { writeFileSync } from 'node:fs'
import { buildOpenapiDocument } from './openapi-document.js'

/** `npm run openapi`: regenerates the checked-in openapi/openapi.json from the routes. */
writeFileSync(new URL('../openapi/openapi.json', import.meta.url), await buildOpenapiDocument())
console.log('wrote openapi/openapi.json')
