import { createErrorFactory } from '../../infra/errors.js'
import { splitReceiptId } from '../audit/audit.models.js'
import type { AuditRepository } from '../audit/audit.repository.js'
import type { Principal } from '../principals/principals.models.js'
import type { FeedbackRepository } from './feedback.repository.js'
import type { MatchFeedbackRow } from './feedback.table.js'

export const feedbackError = createErrorFactory('feedback')

export type FeedbackAction = MatchFeedbackRow['action']
export interface FeedbackInput { receiptId: string; action: FeedbackAction; measures?: string[]; note?: string }

/**
 * Feedback (惩戒反馈): an agency reports what it did with one hit it was given. Only the agency
 * that matched may report, once per receipt: a retry with the same report is answered with the
 * record, a different report is refused (409), and a receipt of another agency is not found,
 * exactly like one that does not exist.
 */
export function createFeedbackService(deps: { feedback: FeedbackRepository; audit: Pick<AuditRepository, 'findReceipt'> }) {
  return {
    async report(agency: Principal, input: FeedbackInput, requestId: string): Promise<{ row: MatchFeedbackRow; created: boolean }> {
      const receiptId = input.receiptId.toLowerCase()
      const { base, index } = splitReceiptId(receiptId)
      const entry = await deps.audit.findReceipt(base, agency.id)
      const items = (entry?.result as { items?: unknown } | undefined)?.items
      const item = entry?.action === 'match' && Array.isArray(items) ? items[index] as { matched?: unknown; measures?: unknown } | undefined : undefined
      if (!entry || !item || typeof item !== 'object' || !('matched' in item)) {
        throw feedbackError('receipt_not_found', 404, 'no match receipt of yours with this id', { field: 'body.receiptId' })
      }
      if (item.matched !== true) throw feedbackError('not_a_hit', 422, 'this receipt is of a subject that was not listed: there is nothing to report', { field: 'body.receiptId' })
      // Only measures the gateway named for this hit can have been applied because of it.
      const given = Array.isArray(item.measures) ? item.measures as string[] : []
      const measures = [...new Set(input.measures ?? [])].sort()
      const unknown = measures.filter((m) => !given.includes(m))
      if (unknown.length > 0) {
        throw feedbackError('unknown_measure', 422, `not a measure of this hit: ${unknown.join(', ')} (the hit's measures: ${given.join(', ') || 'none'})`, { field: 'body.measures' })
      }
      if (input.action !== 'restricted' && measures.length > 0) {
        throw feedbackError('measures_without_restriction', 422, 'measures are reported only with the action "restricted"', { field: 'body.measures' })
      }
      const result = await deps.feedback.insertOnce({
        receiptId, principalId: agency.id, entryId: entry.id, matchedAt: entry.at, action: input.action, measures, note: input.note ?? null, requestId,
      })
      const same = (r: MatchFeedbackRow) => r.action === input.action && r.measures.join() === measures.join() && (r.note ?? null) === (input.note ?? null)
      if (!result.created && !same(result.row)) {
        throw feedbackError('conflict', 409, `feedback on this receipt is already on record (${result.row.action}); it cannot be changed`, { field: 'body.action' })
      }
      return result
    },
  }
}

export type FeedbackService = ReturnType<typeof createFeedbackService>
