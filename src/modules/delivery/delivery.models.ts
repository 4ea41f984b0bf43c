/** Webhook delivery, pure: URL rules, disallowed networks, retry timing. */
import { BlockList, isIP } from 'node:net'
import { createErrorFactory } from '../../infra/errors.js'

export const subscriptionsError = createErrorFactory('subscriptions')

export const EVENT_KINDS = ['published', 'updated', 'removed', 'expired'] as const
export const MAX_URL_LENGTH = 2000

/** Loopback, private, link-local and other non-public ranges: a webhook must not reach inside the gateway's network. */
const PRIVATE = new BlockList()
for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) PRIVATE.addSubnet(net, bits, 'ipv4')
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) PRIVATE.addSubnet(net, bits, 'ipv6')

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address)
  if (family === 0) return true
  if (family === 6 && address.toLowerCase().startsWith('::ffff:')) return isPrivateAddress(address.slice(7))
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6')
}

/** A webhook URL: http(s), no credentials, no fragment, bounded; the caller then checks where it resolves. */
export function parseWebhookUrl(text: string): URL {
  let url: URL
  try { url = new URL(text) } catch { throw subscriptionsError('bad_url', 400, 'the url is not a valid absolute URL', { field: 'body.url' }) }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw subscriptionsError('bad_url', 400, `only http and https URLs are allowed, not ${url.protocol}`, { field: 'body.url' })
  if (url.username || url.password) throw subscriptionsError('bad_url', 400, 'the url may not carry credentials', { field: 'body.url' })
  if (url.hash) throw subscriptionsError('bad_url', 400, 'the url may not carry a fragment', { field: 'body.url' })
  if (text.length > MAX_URL_LENGTH) throw subscriptionsError('bad_url', 400, `the url is longer than ${MAX_URL_LENGTH} characters`, { field: 'body.url' })
  return url
}

/**
 * The wait before retry n (1-based): exponential from `baseMs`, capped at `maxMs`, with full jitter
 * (a random point in [0, cap)), so failing receivers are not hit in lockstep by every process.
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30))
  return Math.max(baseMs / 2, Math.floor(random() * cap))
}
