/** Time source, injectable so tests can move it (token windows, deadlines) without sleeping. */
export interface Clock {
  nowMs(): number
}

export const systemClock: Clock = { nowMs: () => Date.now() }

export const nowSeconds = (clock: Clock) => Math.floor(clock.nowMs() / 1000)
