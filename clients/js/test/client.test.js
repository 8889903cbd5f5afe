// The browser client against a real tkr-host (a `tkr-host serve` subprocess).
// Expected behaviour comes from PROTOCOL.md 1.1 and DESIGN.md "Clients".

import "fake-indexeddb/auto";

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Manager, io } from "socket.io-client";

import { IndexedDBQueue, MemoryQueue, TkrClient } from "../src/index.js";
import { TestHost, waitFor } from "./host.js";

const FAST = { baseMs: 50, capMs: 300 };

function client(host, sub, options = {}) {
  const made = new TkrClient({ url: host.url, token: host.token(sub), Manager, backoff: FAST, ackTimeoutMs: 3000, ...options });
  opened.push(made);
  return made;
}

const opened = [];
after(() => {
  for (const made of opened) made.stop();
});

/** A raw socket.io-client socket, for what another member or an agent does. */
async function rawSocket(host, token, namespace = "/chat") {
  const socket = io(`${host.url}${namespace}`, { auth: { token }, reconnection: false, forceNew: true });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

const texts = (messages) => messages.map((m) => m.payload.text);

describe("against one host", () => {
  const host = new TestHost();
  before(() => host.start());
  after(() => host.close());

  test("connects, creates a session, and a sent message is stored once with its client_id", async () => {
    const alice = client(host, "alice");
    const states = [];
    alice.on("state", ({ state }) => states.push(state));
    await alice.start();
    await waitFor(() => alice.state === "online", { what: "online" });
    assert.deepEqual(states.slice(0, 2), ["connecting", "online"]);
    const created = await alice.createSession({ title: "first" });
    assert.ok(created.ok);
    const sessionId = created.session.id;
    const entry = await alice.send(sessionId, { payload: { text: "hello" } });
    await waitFor(() => alice.queued.length === 0, { what: "the queue to drain" });
    const stored = await host.history(host.token("alice"), sessionId);
    assert.deepEqual(texts(stored), ["hello"]);
    assert.equal(stored[0].client_id, entry.client_id);
    assert.deepEqual(alice.session(sessionId).messages().map((m) => m.seq), [1]);
  });

  test("a refused credential signs out and is not retried", async () => {
    const bad = new TkrClient({ url: host.url, token: "not-a-token", Manager, backoff: FAST });
    opened.push(bad);
    await bad.start();
    await waitFor(() => bad.state === "signed-out", { what: "signed-out" });
    assert.match(bad.connection.lastError.code, /^auth\./);
    const expired = client(host, "alice", { token: host.token("alice", { ttl: -120 }) });
    await expired.start();
    await waitFor(() => expired.state === "signed-out", { what: "signed-out after expiry" });
    assert.equal(expired.connection.lastError.code, "auth.expired");
    assert.ok(expired.connection.lastError.hint);
  });

  test("a seq already held is dropped: a resend's duplicate shows once", async () => {
    const alice = client(host, "alice");
    await alice.start();
    await waitFor(() => alice.state === "online");
    const sessionId = (await alice.createSession({ title: "dupes" })).session.id;
    const bob = await rawSocket(host, host.token("bob"));
    await alice.connection.chat.emitWithAck("session:invite", { session_id: sessionId, member: { id: "bob", kind: "user" } });
    const watcher = client(host, "bob");
    await watcher.start();
    await waitFor(() => watcher.state === "online");
    await watcher.join(sessionId);
    const send = { session_id: sessionId, client_id: "c-same", type: "text", payload: { text: "once" } };
    const first = await bob.emitWithAck("message:send", send);
    const again = await bob.emitWithAck("message:send", send);
    assert.equal(again.duplicate, true);
    assert.equal(again.message.seq, first.message.seq);
    // A sentinel after the duplicate: once it is here, the duplicate has been handled too.
    await bob.emitWithAck("message:send", { ...send, client_id: "c-sentinel", payload: { text: "after" } });
    await waitFor(() => watcher.session(sessionId).messages().length === 2, { what: "the sentinel" });
    assert.deepEqual(texts(watcher.session(sessionId).messages()), ["once", "after"]);
    bob.disconnect();
  });

  test("a gap in seqs is filled through message:history", async () => {
    const alice = client(host, "alice");
    await alice.start();
    await waitFor(() => alice.state === "online");
    const sessionId = (await alice.createSession({ title: "gaps" })).session.id;
    const other = await rawSocket(host, host.token("alice"));
    for (const text of ["one", "two", "three", "four"]) {
      await other.emitWithAck("message:send", { session_id: sessionId, client_id: `c-${text}`, type: "text", payload: { text } });
    }
    await waitFor(() => alice.session(sessionId).messages().length === 4);
    // Another viewer holds 1..2, then gets seq 4 while 3's broadcast was lost
    // (as between nodes): it must fetch 3 itself.
    const viewer = client(host, "alice");
    await viewer.start();
    await waitFor(() => viewer.state === "online");
    viewer.connection.chat.off("message");
    const state = await viewer.join(sessionId).then(() => viewer.session(sessionId));
    const all = alice.session(sessionId).messages();
    state.bySeq.clear();
    state.seqOfId.clear();
    state.contiguous = null;
    state.ingest(all[0]);
    state.ingest(all[1]);
    viewer._live(all[3]);
    await waitFor(() => state.messages().length === 4, { what: "the gap to be filled" });
    assert.deepEqual(state.messages().map((m) => m.seq), [1, 2, 3, 4]);
    assert.equal(state.contiguous, 4);
    other.disconnect();
  });

  test("a stream being sent is picked up from the join, and its final message replaces it once", async () => {
    const alice = client(host, "alice");
    await alice.start();
    await waitFor(() => alice.state === "online");
    const sessionId = (await alice.createSession({ title: "streams", agents: ["writer"] })).session.id;
    const agent = await rawSocket(host, host.token("writer", { kind: "agent" }), "/agents");
    const started = await agent.emitWithAck("stream:start", { session_id: sessionId, type: "text" });
    assert.ok(started.ok, JSON.stringify(started));
    await agent.emitWithAck("stream:chunk", { message_id: started.message_id, delta: "Hello" });
    await agent.emitWithAck("stream:chunk", { message_id: started.message_id, delta: ", " });
    // A page loaded now sees the stream so far in the join, then the rest live.
    const late = client(host, "alice");
    await late.start();
    await waitFor(() => late.state === "online");
    await late.join(sessionId);
    const state = late.session(sessionId);
    assert.equal(state.streams.get(started.message_id)?.text, "Hello, ");
    await agent.emitWithAck("stream:chunk", { message_id: started.message_id, delta: "world" });
    await waitFor(() => state.streams.get(started.message_id)?.text === "Hello, world", { what: "the live chunk" });
    await agent.emitWithAck("stream:end", { message_id: started.message_id });
    await waitFor(() => state.messages().length === 1, { what: "the final message" });
    assert.equal(state.streams.size, 0);
    assert.equal(state.messages()[0].payload.text, "Hello, world");
    agent.disconnect();
  });
});

describe("streams that end badly", () => {
  const host = new TestHost();
  before(() => host.start());
  after(() => host.close());

  test("an agent cut off mid-stream: the stream ends, its text is kept as incomplete, the notice names the code", async () => {
    const alice = client(host, "alice");
    const notices = [];
    alice.on("notice", ({ error }) => notices.push(error.code));
    await alice.start();
    await waitFor(() => alice.state === "online");
    const sessionId = (await alice.createSession({ title: "aborted", agents: ["writer"] })).session.id;
    const agent = await rawSocket(host, host.token("writer", { kind: "agent" }), "/agents");
    const started = await agent.emitWithAck("stream:start", { session_id: sessionId, type: "text" });
    await agent.emitWithAck("stream:chunk", { message_id: started.message_id, delta: "half a" });
    const state = alice.session(sessionId);
    await waitFor(() => state.streams.has(started.message_id), { what: "the stream" });
    agent.disconnect();
    await waitFor(() => state.messages().length === 1, { what: "the incomplete message" });
    assert.equal(state.streams.size, 0);
    assert.equal(state.messages()[0].status, "incomplete");
    assert.equal(state.messages()[0].payload.text, "half a");
    await waitFor(() => notices.includes("agent.stream_aborted"), { what: "the notice" });
  });
});

describe("tasks and the browser's network state", () => {
  const host = new TestHost();
  before(() => host.start());
  after(() => host.close());

  test("a task message is followed through /tasks: the whole task first, then every change", async () => {
    const alice = client(host, "alice");
    await alice.start();
    await waitFor(() => alice.state === "online");
    const sessionId = (await alice.createSession({ title: "tasks" })).session.id;
    const other = await rawSocket(host, host.token("alice"));
    const send = (client_id, payload) => other.emitWithAck("message:send", { session_id: sessionId, client_id, type: "task", payload });
    assert.ok((await send("t1", { task_id: "t", action: "create", title: "Write" })).ok);
    const tasks = alice.session(sessionId).tasks;
    await waitFor(() => tasks.get("t")?.history?.length === 1, { what: "the task from /tasks" });
    assert.ok((await send("t2", { task_id: "t", action: "update", state: "working" })).ok);
    await waitFor(() => tasks.get("t")?.state === "working", { what: "the update from /tasks" });
    assert.deepEqual(tasks.get("t").history.map((step) => step.state), ["submitted", "working"]);
    other.disconnect();
  });

  test("offline while the browser says so; back online, it connects without waiting for the backoff", async () => {
    const network = new EventTarget();
    let online = true;
    const alice = client(host, "alice", { isOnline: () => online, window: network, backoff: { baseMs: 60_000, capMs: 60_000 } });
    await alice.start();
    await waitFor(() => alice.state === "online");
    const sessionId = (await alice.createSession({ title: "network" })).session.id;
    online = false;
    network.dispatchEvent(new Event("offline"));
    assert.equal(alice.state, "offline");
    await alice.send(sessionId, { payload: { text: "while offline" } });
    assert.equal(alice.queued.length, 1);
    online = true;
    network.dispatchEvent(new Event("online"));
    await waitFor(() => alice.state === "online", { what: "online again at once" });
    await waitFor(() => alice.queued.length === 0, { what: "the queue to drain" });
    assert.deepEqual(texts(await host.history(host.token("alice"), sessionId)), ["while offline"]);
  });
});

describe("offline queue and resume", () => {
  test("messages queued while the host is down survive a reload and are stored once, in order, after it is back", async () => {
    const host = new TestHost();
    await host.start();
    try {
      const dbName = `tkr-test-${Date.now()}`;
      const first = client(host, "alice", { queue: new IndexedDBQueue({ name: dbName }) });
      await first.start();
      await waitFor(() => first.state === "online");
      const sessionId = (await first.createSession({ title: "offline" })).session.id;
      await host.kill();
      await waitFor(() => first.state === "reconnecting", { what: "reconnecting" });
      assert.ok(first.connection.attempt >= 1);
      for (const text of ["a", "b", "c"]) await first.send(sessionId, { payload: { text } });
      assert.equal(first.queued.length, 3);
      const clientIds = first.queued.map((entry) => entry.client_id);
      first.stop();
      // "Reload": a new client on the same IndexedDB finds the three, in order.
      const second = client(host, "alice", { queue: new IndexedDBQueue({ name: dbName }) });
      await second.start();
      assert.deepEqual(second.queued.map((entry) => entry.client_id), clientIds);
      await second.join(sessionId);
      await host.start();
      await waitFor(() => second.state === "online", { timeoutMs: 15_000, what: "online again" });
      await waitFor(() => second.queued.length === 0, { what: "the queue to drain" });
      const stored = await host.history(host.token("alice"), sessionId);
      assert.deepEqual(texts(stored), ["a", "b", "c"]);
      assert.deepEqual(stored.map((m) => m.client_id), clientIds);
      await waitFor(() => second.session(sessionId).messages().length === 3);
    } finally {
      await host.close();
    }
  });

  test("a reconnect resumes with since_seq and follows truncated until nothing is missing", async () => {
    const small = new TestHost({ hostConfig: "resume_limit = 2" });
    await small.start();
    try {
      // The browser's network state keeps the client away until all five are stored.
      const network = new EventTarget();
      let online = true;
      const alice = client(small, "alice", { isOnline: () => online, window: network });
      await alice.start();
      await waitFor(() => alice.state === "online");
      const sessionId = (await alice.createSession({ title: "resume" })).session.id;
      await alice.send(sessionId, { payload: { text: "m0" } });
      await waitFor(() => alice.queued.length === 0);
      const joins = [];
      const emit = alice.connection.chat.emit.bind(alice.connection.chat);
      alice.connection.chat.emit = (event, payload, ...rest) => {
        if (event === "session:join") joins.push(payload.since_seq);
        return emit(event, payload, ...rest);
      };
      online = false;
      network.dispatchEvent(new Event("offline"));
      assert.equal(alice.state, "offline");
      const other = await rawSocket(small, small.token("alice"));
      for (let i = 1; i <= 5; i += 1) {
        await other.emitWithAck("message:send", { session_id: sessionId, client_id: `c-m${i}`, type: "text", payload: { text: `m${i}` } });
      }
      assert.equal(alice.session(sessionId).messages().length, 1, "nothing arrives while offline");
      online = true;
      network.dispatchEvent(new Event("online"));
      await waitFor(() => alice.session(sessionId).messages().length === 6, { what: "the resume" });
      assert.deepEqual(texts(alice.session(sessionId).messages()), ["m0", "m1", "m2", "m3", "m4", "m5"]);
      // seqs 2..6 with resume_limit 2: since 1 → 2,3 (truncated), since 3 → 4,5 (truncated), since 5 → 6.
      assert.deepEqual(joins, [1, 3, 5]);
      other.disconnect();
    } finally {
      await small.close();
    }
  });

  test("retry_after of rate_limit.* holds the queue, and every message is stored once, in order", async () => {
    const host = new TestHost({ config: "[plugins.ratelimit]\nmessages_per_second = 2\nmessage_burst = 1\n" });
    await host.start();
    try {
      const alice = client(host, "alice", { queue: new MemoryQueue() });
      const notices = [];
      const sent = [];
      alice.on("notice", ({ error }) => notices.push({ error, at: Date.now() }));
      alice.on("sent", () => sent.push(Date.now()));
      await alice.start();
      await waitFor(() => alice.state === "online");
      const sessionId = (await alice.createSession({ title: "limits" })).session.id;
      const attempts = [];
      const emit = alice.connection.chat.emit.bind(alice.connection.chat);
      alice.connection.chat.emit = (event, ...rest) => {
        if (event === "message:send") attempts.push(Date.now());
        return emit(event, ...rest);
      };
      for (const text of ["r1", "r2", "r3", "r4"]) await alice.send(sessionId, { payload: { text } });
      await waitFor(() => alice.queued.length === 0, { timeoutMs: 15_000, what: "the queue to drain" });
      const limited = notices.map((n) => n.error).filter((error) => error.code.startsWith("rate_limit."));
      assert.ok(limited.length >= 1, "at least one send was limited");
      assert.ok(limited.every((error) => error.retry_after > 0 && error.hint));
      // After each refusal the queue sends nothing until retry_after has passed.
      for (const { error, at } of notices.filter((n) => n.error.code.startsWith("rate_limit."))) {
        const next = attempts.find((time) => time > at);
        assert.ok(next !== undefined, "a send followed the refusal");
        assert.ok(next - at >= error.retry_after * 1000 - 20, `waited ${next - at} ms of ${error.retry_after * 1000}`);
      }
      assert.equal(sent.length, 4);
      const stored = await host.history(host.token("alice"), sessionId);
      assert.deepEqual(texts(stored), ["r1", "r2", "r3", "r4"]);
    } finally {
      await host.close();
    }
  });
});
