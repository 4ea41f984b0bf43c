import { randomUUID } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { performance } from 'node:perf_hooks'
import type { Clock } from '../../infra/clock.js'
import { nowSeconds } from '../../infra/clock.js'
import type { GatewayKeys } from '../../infra/gateway-keys.js'
import { projectListing } from '../listings/listings.view.js'
import type { Principal } from '../principals/principals.models.js'
import { EVENT_KINDS, isPrivateAddress, parseWebhookUrl, retryDelayMs, subscriptionsError } from './delivery.models.js'
import type { DeliveryRepository, EventRow, SubscriptionRow } from './delivery.repository.js'

export interface DeliveryOptions {
  /** Allow receivers on loopback and private networks (tests, an internal deployment); off by default. */
  allowPrivateNetworks: boolean
  timeoutMs: number
  retryBaseMs: number
  retryMaxMs: number
  /** A subscription failing this long is paused; it resumes from its last acknowledged event. */
  pauseAfterSeconds: number
  pollMs: number
  /**
   * How long a lease on a subscription lasts from its last renewal (before each POST); it must exceed
   * `timeoutMs` (config.ts checks it by LEASE_MARGIN_MS), so that a live process's lease never runs out
   * while one of its POSTs is in flight. 60 s when unset.
   */
  leaseSeconds?: number
}
export interface SubscriptionInput { url: string; eventKinds?: string[]; listKinds?: string[]; afterSeq?: number; principalId?: string }

const BATCH = 100
const DEFAULT_LEASE_SECONDS = 60
const CONCURRENCY = 8
const MAX_PER_PASS = 200

function toDto(s: SubscriptionRow) {
  return {
    id: s.id, principalId: s.principal_id, url: s.url, eventKinds: s.event_kinds, listKinds: s.list_kinds, status: s.status,
    ackedSeq: Number(s.acked_seq), attempts: s.attempts, failingSince: s.failing_since?.toISOString() ?? null,
    nextAttemptAt: s.next_attempt_at.toISOString(), lastError: s.last_error, createdAt: s.created_at.toISOString(),
  }
}

/** Settles with the promise, or rejects with the signal's reason (a TimeoutError) once it aborts. */
function withDeadline<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return Promise.race([promise, new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))])
}

/**
 * Webhooks from the change log (DESIGN.md "One truth, many readers"): subscriptions per agency and
 * a delivery worker in every process. Each event is POSTed in order per subscription, signed by the
 * gateway like a response (detached JWS in X-GW-Signature, bound to the subscription and sequence),
 * at least once (the sequence lets the receiver drop repeats); failures back off with jitter and a
 * subscription failing past `pauseAfterSeconds` is paused.
 */
export function createDeliveryService(deps: {
  repo: DeliveryRepository; clock: Clock; gatewayKeys: GatewayKeys; options: DeliveryOptions
  principalOf(id: string): Promise<Principal | undefined>
  log: { warn(obj: unknown, msg?: string): void }
}) {
  const { repo, clock, options } = deps
  const worker = randomUUID()
  const now = () => new Date(clock.nowMs())
  const leaseMs = (options.leaseSeconds ?? DEFAULT_LEASE_SECONDS) * 1000
  let timer: NodeJS.Timeout | undefined
  let running: Promise<number> | undefined
  let stopped = false

  async function checkDestination(url: URL): Promise<void> {
    if (options.allowPrivateNetworks) return
    let addresses: { address: string }[]
    try { addresses = await lookup(url.hostname.replace(/^\[|\]$/g, ''), { all: true }) } catch { throw subscriptionsError('unresolvable_url', 400, `${url.hostname} does not resolve`, { field: 'body.url' }) }
    if (addresses.some((a) => isPrivateAddress(a.address))) throw subscriptionsError('disallowed_network', 400, `${url.hostname} resolves to a loopback or private address`, { field: 'body.url' })
  }

  async function ownedBy(caller: Principal, id: string): Promise<SubscriptionRow> {
    const s = await repo.byId(id)
    // Another agency's subscription is as unknown as a made-up id.
    if (!s || (caller.kind !== 'admin' && s.principal_id !== caller.id)) throw subscriptionsError('not_found', 404, `no subscription ${id}`)
    return s
  }

  /** One POST; resolves to the outcome, never throws. */
  async function post(s: SubscriptionRow, e: EventRow, principal: Principal): Promise<{ ok: boolean; status: number | null; error: string | null; ms: number }> {
    const started = performance.now()
    // One deadline for the whole attempt, the destination check included: the lease renewed before it
    // outlasts it (a name that takes long to resolve must not hold the POST past the lease).
    const signal = AbortSignal.timeout(options.timeoutMs)
    const body = Buffer.from(JSON.stringify({
      subscriptionId: s.id,
      event: { seq: Number(e.seq), kind: e.kind, listingId: e.listing_id, version: e.version, at: e.at.toISOString(), listing: projectListing(e.listing, principal.profile, principal.kind) },
    }))
    try {
      const url = parseWebhookUrl(s.url)
      await withDeadline(checkDestination(url), signal) // again at delivery: a name may resolve elsewhere now
      const signature = await deps.gatewayKeys.signDetached(body, { iat: nowSeconds(clock), sub: s.id, seq: Number(e.seq) })
      const res = await fetch(url, {
        method: 'POST', body, redirect: 'manual', signal,
        headers: { 'content-type': 'application/json', 'x-gw-signature': signature, 'x-gw-event-seq': e.seq, 'x-gw-subscription': s.id },
      })
      await res.arrayBuffer().catch(() => undefined)
      const ok = res.status >= 200 && res.status < 300
      return { ok, status: res.status, error: ok ? null : `HTTP ${res.status}${res.status >= 300 && res.status < 400 ? ' (redirects are not followed)' : ''}`, ms: Math.round(performance.now() - started) }
    } catch (err) {
      return { ok: false, status: null, error: (err as Error).name === 'TimeoutError' ? `no answer within ${options.timeoutMs} ms` : (err as Error).message.slice(0, 500), ms: Math.round(performance.now() - started) }
    }
  }

  /**
   * Delivers what is due for one leased subscription; returns the events delivered. The lease is
   * renewed before each POST, with the cursor reached so far, so it always outlasts the POST in flight
   * (WEBHOOK_TIMEOUT_MS < lease, config.ts). A renewal that misses means another process has taken
   * the subscription over (the lease ran out on its clock: a stalled process, a skewed clock): the
   * pass stops at once, before posting again, and settles nothing, the lease no longer being ours.
   */
  async function deliver(s: SubscriptionRow): Promise<number> {
    const principal = await deps.principalOf(s.principal_id)
    let acked = s.acked_seq
    let delivered = 0
    let failure: { error: string } | undefined
    let lost = false
    if (principal && principal.status === 'active') {
      const wanted = (e: EventRow) => s.event_kinds.includes(e.kind) && s.list_kinds.includes(e.list_kind) && (principal.profile.lists ?? []).includes(e.list_kind as 'dishonest')
      for (const e of await repo.eventsAfter(acked, BATCH)) {
        if (wanted(e)) {
          if (!(await repo.renewLease(s.id, worker, new Date(clock.nowMs() + leaseMs), acked))) { lost = true; break }
          const at = now()
          const outcome = await post(s, e, principal)
          await repo.recordAttempt({ subscriptionId: s.id, seq: e.seq, at, httpStatus: outcome.status, ok: outcome.ok, error: outcome.error, ms: outcome.ms })
          if (!outcome.ok) { failure = { error: outcome.error ?? 'failed' }; break }
          delivered++
        }
        acked = e.seq
      }
    } else {
      failure = { error: `principal ${s.principal_id} is not active` }
    }
    if (lost) {
      // What the receiver acknowledged before the last renewal is in the cursor already; the POST that
      // was in flight when the lease went is the other process's to repeat (at least once).
      deps.log.warn({ subscriptionId: s.id, ackedSeq: acked, delivered }, 'webhook delivery lease lost to another process (or the subscription was removed); this pass stopped')
      return delivered
    }
    const at = now()
    let settled: boolean
    if (!failure) {
      settled = await repo.settle(s.id, worker, { ackedSeq: acked, attempts: 0, failingSince: null, nextAttemptAt: at, lastError: null, pause: false, now: at })
    } else {
      const attempts = s.attempts + 1
      const failingSince = s.failing_since ?? at
      const pause = at.getTime() - failingSince.getTime() >= options.pauseAfterSeconds * 1000
      const nextAttemptAt = new Date(at.getTime() + retryDelayMs(attempts, options.retryBaseMs, options.retryMaxMs))
      settled = await repo.settle(s.id, worker, { ackedSeq: acked, attempts: delivered > 0 ? 1 : attempts, failingSince: delivered > 0 ? at : failingSince, nextAttemptAt, lastError: failure.error, pause, now: at })
    }
    // Settling writes only while the lease is still ours: one lost during the last POST leaves the
    // other process's state (and cursor) alone.
    if (!settled) deps.log.warn({ subscriptionId: s.id, ackedSeq: acked, delivered }, 'webhook delivery lease lost to another process (or the subscription was removed) before settling; nothing written')
    return delivered
  }

  async function runOnce(): Promise<number> {
    let total = 0
    // Each subscription at most once a pass: one that was served is due again at once, but waits its turn.
    const served: string[] = []
    // Up to CONCURRENCY subscriptions at a time, so a slow receiver holds up only its own subscription.
    const lane = async () => {
      while (!stopped && served.length < MAX_PER_PASS) {
        const at = now()
        const s = await repo.leaseDue(worker, at, new Date(at.getTime() + leaseMs), served)
        if (!s) return
        served.push(s.id)
        const delivered = await deliver(s) // read total only after the await: lanes run interleaved
        total += delivered
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, lane))
    return total
  }

  /** One pass at a time per process: the timer and a direct call share the pass in progress. */
  const pass = () => (running ??= runOnce().finally(() => { running = undefined }))

  return {
    async create(caller: Principal, input: SubscriptionInput) {
      let owner = caller
      if (input.principalId !== undefined && input.principalId !== caller.id) {
        if (caller.kind !== 'admin') throw subscriptionsError('not_allowed', 403, 'only an admin subscribes on behalf of another principal', { field: 'body.principalId' })
        const other = await deps.principalOf(input.principalId)
        if (!other || other.kind !== 'agency') throw subscriptionsError('unknown_principal', 400, `no agency ${input.principalId}`, { field: 'body.principalId' })
        owner = other
      }
      if (owner.kind !== 'agency') throw subscriptionsError('not_allowed', 403, 'subscriptions belong to agencies', { field: 'body.principalId' })
      const url = parseWebhookUrl(input.url)
      await checkDestination(url)
      const allowed = owner.profile.lists ?? []
      const listKinds = input.listKinds ?? allowed
      const outside = listKinds.filter((l) => !(allowed as string[]).includes(l))
      if (outside.length > 0 || listKinds.length === 0) throw subscriptionsError('list_not_allowed', 400, `lists outside ${owner.id}'s profile: ${outside.join(', ') || '(none allowed)'}`, { field: 'body.listKinds' })
      const head = await repo.headSeq()
      if (input.afterSeq !== undefined && input.afterSeq > head) throw subscriptionsError('bad_seq', 400, `afterSeq ${input.afterSeq} is past the change log's last sequence ${head}`, { field: 'body.afterSeq' })
      return toDto(await repo.insert({ id: randomUUID(), principalId: owner.id, url: url.toString(), eventKinds: input.eventKinds ?? [...EVENT_KINDS], listKinds, ackedSeq: input.afterSeq ?? head, now: now() }))
    },
    list: async (caller: Principal) => (await repo.list(caller.kind === 'admin' ? undefined : caller.id)).map(toDto),
    get: async (caller: Principal, id: string) => toDto(await ownedBy(caller, id)),
    async setStatus(caller: Principal, id: string, status: 'active' | 'paused') {
      await ownedBy(caller, id)
      return toDto((await repo.setStatus(id, status, now()))!)
    },
    async remove(caller: Principal, id: string) {
      await ownedBy(caller, id)
      await repo.remove(id)
    },
    async deliveries(caller: Principal, id: string, limit: number) {
      const s = await ownedBy(caller, id)
      const attempts = await repo.attempts(id, limit)
      return { subscription: toDto(s), attempts: attempts.map((a) => ({ seq: Number(a.seq), at: a.at.toISOString(), httpStatus: a.http_status, ok: a.ok, error: a.error, ms: a.ms })) }
    },
    /** One pass over due subscriptions (also what the timer runs); returns the events delivered. */
    runOnce: pass,
    start() {
      const tick = () => {
        if (stopped) return
        void pass()
          .catch((err: unknown) => deps.log.warn({ err }, 'webhook delivery pass failed; retrying'))
          .finally(() => { if (!stopped) { timer = setTimeout(tick, options.pollMs); timer.unref() } })
      }
      timer = setTimeout(tick, options.pollMs)
      timer.unref()
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      await running?.catch(() => undefined)
    },
  }
}

export type DeliveryService = ReturnType<typeof createDeliveryService>
