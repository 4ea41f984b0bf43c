import { createErrorFactory } from '../../infra/errors.js'

export const auditError = createErrorFactory('audit')
