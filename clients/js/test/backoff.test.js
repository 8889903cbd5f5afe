import assert from "node:assert/strict";
import { test } from "node:test";

import { fullJitterDelay, retryAfterMs } from "../src/index.js";

test("full jitter draws from 0 up to the capped exponential", () => {
  assert.equal(fullJitterDelay(1, { baseMs: 500, random: () => 0 }), 0);
  assert.equal(fullJitterDelay(1, { baseMs: 500, random: () => 1 }), 500);
  assert.equal(fullJitterDelay(4, { baseMs: 500, random: () => 1 }), 4000);
  assert.equal(fullJitterDelay(30, { baseMs: 500, capMs: 30_000, random: () => 1 }), 30_000);
  const spread = new Set(Array.from({ length: 50 }, () => fullJitterDelay(6)));
  assert.ok(spread.size > 10, "delays of one attempt are spread, not clustered");
});

test("retry_after is read in seconds and given in milliseconds", () => {
  assert.equal(retryAfterMs({ retry_after: 1.5 }), 1500);
  assert.equal(retryAfterMs({ retry_after: null }), null);
  assert.equal(retryAfterMs(undefined), null);
});
