// Reconnection delays: exponential backoff with full jitter.
//
// socket.io-client's own reconnection spreads retries by ±50% around the
// exponential delay, which still lets a herd of clients retry together after a
// host restart. Full jitter (a delay drawn uniformly between 0 and the capped
// exponential) spreads them over the whole window (see AWS's "Exponential
// Backoff And Jitter").

/**
 * @param {number} attempt 1 for the first retry.
 * @param {{baseMs?: number, capMs?: number, random?: () => number}} [options]
 * @returns {number} milliseconds to wait before that attempt.
 */
export function fullJitterDelay(attempt, { baseMs = 500, capMs = 30_000, random = Math.random } = {}) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(random() * ceiling);
}

/**
 * The delay a refused request asks for, in milliseconds: `retry_after` (seconds)
 * of a PROTOCOL.md Error, or null when it gives none.
 * @param {{retry_after?: number|null}|null|undefined} error
 */
export function retryAfterMs(error) {
  const seconds = error?.retry_after;
  return typeof seconds === "number" && Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds * 1000) : null;
}
