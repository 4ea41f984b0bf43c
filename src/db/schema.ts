// Every drizzle table, for the typed client. Add each module's tables here.
export * from '../modules/principals/principals.table.js'
export * from '../modules/listings/listings.table.js'
export * from '../modules/audit/audit.table.js'
