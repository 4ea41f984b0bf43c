import { createErrorFactory } from '../../infra/errors.js'

export const principalsError = createErrorFactory('principals')
