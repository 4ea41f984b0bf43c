import { createErrorFactory } from '../../infra/errors.js'

export const publicSearchError = createErrorFactory('public_search')
