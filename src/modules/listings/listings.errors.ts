import { createErrorFactory } from '../../infra/errors.js'

export const listingsError = createErrorFactory('listings')
