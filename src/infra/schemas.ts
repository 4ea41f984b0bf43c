import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'
import { projectPath } from './paths.js'

/** Every shared shape: schemas/*.json, each with an `$id` that routes reference as `Name#`. */
export function loadSchemas(): Record<string, unknown>[] {
  const dir = projectPath('schemas')
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>)
}

/** One schema of schemas/ by its $id, e.g. to extend its properties in a route. */
export function schemaById(id: string): Record<string, unknown> & { properties?: Record<string, unknown> } {
  const found = loadSchemas().find((s) => s.$id === id)
  if (!found) throw new Error(`no schema with $id ${id} in schemas/`)
  return found
}

export function createAjv(options: Options = {}): Ajv {
  const ajv = new Ajv({ allErrors: false, strict: false, removeAdditional: false, useDefaults: true, ...options })
  addFormats.default(ajv)
  for (const s of loadSchemas()) ajv.addSchema(s)
  return ajv
}

/**
 * Bodies are validated exactly as sent: no type coercion (an ID number sent as a JSON number must
 * be refused, not rounded into a string) and unknown fields are errors. Query strings and params
 * arrive as text, so those are coerced.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = createAjv({ coerceTypes: false })
  const coercing = createAjv({ coerceTypes: 'array' })
  return ({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? strict : coercing
    return ajv.compile(schema as object) as never
  }
}
