import { createErrorFactory } from '../../infra/errors.js'

export const matchingError = createErrorFactory('match')
