// Every drizzle table, for the typed client. Add each module's tables here.
export * from '../modules/principals/principals.table.js'
export * from '../modules/listings/listings.table.js'
export * from '../modules/audit/audit.table.js'
export * from '../modules/rules/rules.table.js'
export * from '../modules/feedback/feedback.table.js'
export * from '../modules/applications/applications.table.js'
