import { bigserial, index, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core'
import type { PrincipalProfile } from './principals.models.js'

// Mirrors migrations/0001_principals.sql (the SQL is the source of truth for the database).
export const principals = pgTable('principals', {
  id: text('id').primaryKey(),
  kind: text('kind', { enum: ['court', 'agency', 'admin'] }).notNull(),
  name: text('name').notNull(),
  courtCode: text('court_code'),
  scopes: text('scopes').array().notNull().default([]),
  profile: jsonb('profile').$type<PrincipalProfile>().notNull().default({}),
  status: text('status', { enum: ['active', 'disabled'] }).notNull().default('active'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
})

export const principalKeys = pgTable('principal_keys', {
  kid: text('kid').primaryKey(),
  principalId: text('principal_id').notNull().references(() => principals.id),
  alg: text('alg', { enum: ['ES256', 'EdDSA', 'RS256'] }).notNull(),
  publicJwk: jsonb('public_jwk').$type<Record<string, unknown>>().notNull(),
  status: text('status', { enum: ['active', 'retired'] }).notNull().default('active'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  retiredAt: timestamp('retired_at', { withTimezone: true }),
}, (t) => [index('principal_keys_principal').on(t.principalId)])

export const usedJtis = pgTable('used_jtis', {
  iss: text('iss').notNull(),
  jti: text('jti').notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
}, (t) => [primaryKey({ columns: [t.iss, t.jti] })])

export const principalEvents = pgTable('principal_events', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  principalId: text('principal_id').notNull().references(() => principals.id),
  actor: text('actor').notNull(),
  action: text('action').notNull(),
  detail: jsonb('detail').$type<Record<string, unknown>>().notNull().default({}),
  requestId: text('request_id'),
  at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
})

export type PrincipalRow = typeof principals.$inferSelect
export type PrincipalKeyRow = typeof principalKeys.$inferSelect
