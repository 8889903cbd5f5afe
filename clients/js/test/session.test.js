import assert from "node:assert/strict";
import { test } from "node:test";

import { SessionState } from "../src/index.js";

const message = (seq, extra = {}) => ({ id: `m${seq}`, seq, type: "text", payload: { text: String(seq) }, ...extra });

test("seqs held are dropped and the contiguous seq skips nothing", () => {
  const state = new SessionState({ id: "s", members: [], last_seq: 0 });
  assert.equal(state.ingest(message(1)), true);
  assert.equal(state.ingest(message(1)), false);
  state.ingest(message(4));
  assert.equal(state.contiguous, 1);
  assert.deepEqual(state.gap(), { before_seq: 4, limit: 2 });
  state.ingest(message(2));
  state.ingest(message(3));
  assert.equal(state.contiguous, 4);
  assert.equal(state.gap(), null);
});

test("a chunk already covered by the join's text is dropped", () => {
  const state = new SessionState({ id: "s", members: [], last_seq: 0 });
  state.resumeStream({ message_id: "r", sender: { id: "echo", kind: "agent" }, index: 2, text: "abc" });
  assert.equal(state.chunk({ message_id: "r", index: 2, delta: "c" }), false);
  assert.equal(state.chunk({ message_id: "r", index: 3, delta: "d" }), true);
  assert.equal(state.streams.get("r").text, "abcd");
  state.ingest(message(1, { id: "r" }));
  assert.equal(state.streams.size, 0);
});

test("an older task document never replaces a newer one", () => {
  const state = new SessionState({ id: "s", members: [], last_seq: 0 });
  for (const seq of [1, 2, 3]) state.ingest(message(seq));
  assert.ok(state.taskUpdate({ task_id: "t", state: "working", updated_by_message: "m2", history: [{}, {}] }));
  // The subscription's snapshot, read before the update, arrives late.
  assert.equal(state.taskUpdate({ task_id: "t", state: "submitted", updated_by_message: "m1", history: [{}] }), false);
  assert.equal(state.tasks.get("t").state, "working");
  assert.ok(state.taskUpdate({ task_id: "t", state: "working", updated_by_message: "m3", history: [{}, {}], artifacts: [{}] }));
  assert.equal(state.tasks.get("t").artifacts.length, 1);
});

test("a task document made by a message not held yet is newer than every held one", () => {
  const state = new SessionState({ id: "s", members: [], last_seq: 0 });
  state.ingest(message(1));
  assert.ok(state.taskUpdate({ task_id: "t", state: "working", updated_by_message: "m-not-yet", history: [{}, {}] }));
  assert.equal(state.taskUpdate({ task_id: "t", state: "submitted", updated_by_message: "m1", history: [{}] }), false);
  assert.equal(state.tasks.get("t").state, "working");
});
