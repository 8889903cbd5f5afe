// The client recovers by itself from what a live connection can still go
// through: an ack that never comes, a join the host refuses for a while, a
// message refused for good before the page joined its session.
// Expected behaviour comes from docs/web.md ("The client module") and PROTOCOL.md 1.1.

import "fake-indexeddb/auto";

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Manager, io } from "socket.io-client";

import { IndexedDBQueue, TkrClient } from "../src/index.js";
import { TestHost, waitFor } from "./host.js";

const FAST = { baseMs: 50, capMs: 300 };
const opened = [];
after(() => {
  for (const made of opened) made.stop();
});

function client(host, sub, options = {}) {
  const made = new TkrClient({ url: host.url, token: host.token(sub), Manager, backoff: FAST, ackTimeoutMs: 3000, ...options });
  opened.push(made);
  return made;
}

async function online(made) {
  await made.start();
  await waitFor(() => made.state === "online", { what: "online" });
  return made;
}

/** Drop the next `count` packets of `event` the socket writes: their acks never come. */
function dropNext(socket, event, count = 1) {
  const dropped = [];
  const packet = socket.packet.bind(socket);
  socket.packet = (frame) => {
    if (count > 0 && frame.data?.[0] === event) {
      count -= 1;
      dropped.push(frame.data[1]);
      return;
    }
    packet(frame);
  };
  return dropped;
}

const texts = (messages) => messages.map((m) => m.payload.text);

describe("recovery while connected", () => {
  const host = new TestHost();
  before(() => host.start());
  after(() => host.close());

  test("an ack timeout does not stop the outbox: it is drained again while connected", async () => {
    const alice = await online(client(host, "alice", { ackTimeoutMs: 300 }));
    const sessionId = (await alice.createSession({ title: "timeouts" })).session.id;
    const dropped = dropNext(alice.connection.chat, "message:send");
    await alice.send(sessionId, { payload: { text: "after a timeout" } });
    await alice.send(sessionId, { payload: { text: "and the next" } });
    await waitFor(() => alice.queued.length === 0, { timeoutMs: 8000, what: "the outbox to drain after the timeout" });
    assert.equal(dropped.length, 1);
    assert.equal(alice.state, "online");
    assert.deepEqual(texts(await host.history(host.token("alice"), sessionId)), ["after a timeout", "and the next"]);
  });

  test("a rejoin that times out is tried again, and the resume arrives", async () => {
    const alice = await online(client(host, "alice", { ackTimeoutMs: 300 }));
    const sessionId = (await alice.createSession({ title: "rejoin" })).session.id;
    const dropped = dropNext(alice.connection.chat, "session:join");
    alice.connection.chat.off("message"); // only the join may bring the messages
    const other = io(`${host.url}/chat`, { auth: { token: host.token("alice") }, reconnection: false, forceNew: true });
    await new Promise((resolve) => other.once("connect", resolve));
    for (const text of ["x1", "x2"]) {
      await other.emitWithAck("message:send", { session_id: sessionId, client_id: `c-${text}`, type: "text", payload: { text } });
    }
    alice.connection.manager.engine.close(); // the transport drops; the client reconnects and rejoins
    await waitFor(() => alice.session(sessionId).messages().length === 2, { timeoutMs: 8000, what: "the rejoin to be retried" });
    assert.equal(dropped.length, 1);
    other.disconnect();
  });

  test("a join refused for good (not_found.session) stops following the session", async () => {
    const alice = await online(client(host, "alice"));
    const ack = await alice.join("00000000-0000-4000-8000-000000000000");
    assert.equal(ack.ok, false);
    assert.equal(ack.error.code, "not_found.session");
    assert.equal(alice.session("00000000-0000-4000-8000-000000000000").followed, false);
  });

  test("a message refused for good before its session is joined shows as failed, also after a reload, until discarded", async () => {
    const creator = await online(client(host, "alice"));
    const sessionId = (await creator.createSession({ title: "refused" })).session.id;
    const name = `tkr-failed-${Date.now()}`;
    const offline = () => false;
    const first = client(host, "alice", { queue: new IndexedDBQueue({ name }), isOnline: offline });
    await first.start();
    const entry = await first.send(sessionId, { payload: { text: "x".repeat(40_000) } }); // over the 32768 characters of text
    first.stop();
    // A reload with the host up: the outbox drains before the page joins anything.
    const second = await online(client(host, "alice", { queue: new IndexedDBQueue({ name }) }));
    await waitFor(() => second.session(sessionId)?.failed.has(entry.client_id), { what: "the failed entry" });
    assert.match(second.session(sessionId).failed.get(entry.client_id).error.code, /^validation\./);
    assert.equal(second.queued.length, 0);
    second.stop();
    // Another reload: it is still there, as failed and not queued.
    const third = client(host, "alice", { queue: new IndexedDBQueue({ name }), isOnline: offline });
    await third.start();
    assert.ok(third.session(sessionId)?.failed.has(entry.client_id));
    assert.equal(third.queued.length, 0);
    await third.dismiss(sessionId, entry.client_id);
    third.stop();
    const fourth = client(host, "alice", { queue: new IndexedDBQueue({ name }), isOnline: offline });
    await fourth.start();
    assert.equal(fourth.session(sessionId)?.failed.size ?? 0, 0);
  });
});

describe("whose outbox", () => {
  test("an API key's queue owner is a SHA-256 of it, not a piece of the key", async () => {
    const key = "tkr_live_0123456789abcdefSECRETPART";
    const made = new TkrClient({ url: "http://127.0.0.1:9", token: key, Manager, isOnline: () => false });
    opened.push(made);
    await made.start();
    const digest = Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key))).toString("hex");
    assert.equal(made.queueOwner, `http://127.0.0.1:9|sha256:${digest}`);
    assert.ok(!made.queueOwner.includes(key.slice(-6)));
    const entry = await made.send("s-1", { payload: { text: "mine" } });
    assert.equal(entry.owner, made.queueOwner);
  });

  test("clearOutbox forgets the queued and the failed messages of that owner only", async () => {
    const name = `tkr-clear-${Date.now()}`;
    const offline = () => false;
    const mine = new TkrClient({ url: "http://127.0.0.1:9", token: "key-one", Manager, isOnline: offline, queue: new IndexedDBQueue({ name }) });
    const theirs = new TkrClient({ url: "http://127.0.0.1:9", token: "key-two", Manager, isOnline: offline, queue: new IndexedDBQueue({ name }) });
    opened.push(mine, theirs);
    await mine.start();
    await theirs.start();
    await mine.send("s-1", { payload: { text: "private" } });
    await theirs.send("s-1", { payload: { text: "other user" } });
    await mine.clearOutbox();
    assert.equal(mine.queued.length, 0);
    assert.deepEqual(await new IndexedDBQueue({ name }).all(mine.queueOwner), []);
    assert.equal((await new IndexedDBQueue({ name }).all(theirs.queueOwner)).length, 1);
  });
});

describe("/tasks on its own", () => {
  // One namespace connect a second per address, with no burst beyond one:
  // /chat gets in, and /tasks, right behind it, is refused with rate_limit.connect.
  const host = new TestHost({ config: "[plugins.ratelimit]\nconnects_per_minute = 60\nconnect_burst = 1\n" });
  before(() => host.start());
  after(() => host.close());

  test("a /tasks connect refused while /chat is online is tried again, and the task is followed", async () => {
    const alice = client(host, "alice");
    const refusals = [];
    alice.connection.tasks.on("connect_error", (err) => refusals.push(err.message));
    await online(alice);
    await waitFor(() => alice.connection.tasks.connected, { timeoutMs: 8000, what: "/tasks to connect again by itself" });
    assert.ok(refusals.includes("rate_limit.connect"), `refusals: ${refusals}`);
    assert.equal(alice.state, "online");
  });
});

describe("receipts", () => {
  const host = new TestHost();
  before(() => host.start());
  after(() => host.close());

  test("a message read while offline is reported read once the connection is back", async () => {
    const sender = await rawSocketOf(host, "alice");
    const created = await sender.emitWithAck("session:create", { title: "receipts" });
    const sessionId = created.session.id;
    await sender.emitWithAck("session:invite", { session_id: sessionId, member: { id: "bob", kind: "user" } });
    const network = new EventTarget();
    let up = true;
    const bob = await online(client(host, "bob", { isOnline: () => up, window: network }));
    await bob.join(sessionId);
    const sent = await sender.emitWithAck("message:send", { session_id: sessionId, client_id: "c-r", type: "text", payload: { text: "read me" } });
    await waitFor(() => bob.session(sessionId).messages().length === 1, { what: "the message at bob's" });
    const receipts = [];
    sender.on("receipt", (receipt) => receipts.push(receipt.status));
    up = false;
    network.dispatchEvent(new Event("offline"));
    await bob.markRead(sessionId, sent.message.seq); // the user sees it while offline
    up = true;
    network.dispatchEvent(new Event("online"));
    await waitFor(() => receipts.includes("read"), { what: "the read receipt after reconnecting" });
    sender.disconnect();
  });
});

async function rawSocketOf(host, sub) {
  const socket = io(`${host.url}/chat`, { auth: { token: host.token(sub) }, reconnection: false, forceNew: true });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}
