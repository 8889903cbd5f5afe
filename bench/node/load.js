// The JS load generator: the official socket.io-client 4.x in Node, steered by bench/jsload.py.
//
// It offers permessage-deflate as a browser does (engine.io-client's default
// perMessageDeflate, through the `ws` package), and reports what the server
// negotiated. The plan comes as one JSON line on stdin; each step answers one
// JSON line on stdout; stdin's lines "go" and "close" start the next step.
//
//   mode "load": connect, create + invite, join → {phase: "ready"}; "go" → send
//                every client's messages (at most `window` unacked) and wait for
//                the deliveries → {phase: "done", ...}; "close" → exit
//   mode "idle": open one connection per token → {phase: "open"}; "close" → exit
"use strict";

const readline = require("node:readline");
const { io } = require("socket.io-client");

const NAMESPACE = "/chat";
const CONNECT_CONCURRENCY = 8;
const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
lines.on("line", (line) => (waiting.shift() || (() => {}))(line.trim()));
lines.on("close", () => process.exit(0));
const nextLine = () => new Promise((resolve) => waiting.push(resolve));
const say = (object) => process.stdout.write(JSON.stringify(object) + "\n");

function connect(plan, token) {
  return new Promise((resolve, reject) => {
    const socket = io(plan.url + NAMESPACE, { transports: ["websocket"], auth: { token }, reconnection: false, forceNew: true, timeout: 15000 });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) => { socket.close(); reject(error); });
  });
}

/** What the server negotiated on this socket's WebSocket ("permessage-deflate…" or ""). */
function extensions(socket) {
  const ws = socket.io.engine && socket.io.engine.transport && socket.io.engine.transport.ws;
  return ws && typeof ws.extensions === "string" ? ws.extensions : null;
}

async function openMany(items, open) {
  const errors = [];
  let next = 0;
  async function lane() {
    while (next < items.length) {
      const item = items[next++];
      try { await open(item); } catch (error) { errors.push(String(error && error.message || error)); }
    }
  }
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, lane));
  return errors;
}

async function call(socket, plan, event, data) {
  const ack = await socket.timeout(plan.ackTimeoutMs).emitWithAck(event, data);
  if (!ack || ack.ok !== true) throw new Error(`${event} failed: ${JSON.stringify(ack)}`);
  return ack;
}

function percentile(values, p) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function idle(plan) {
  const sockets = [];
  const errors = await openMany(plan.tokens, async (token) => sockets.push(await connect(plan, token)));
  say({ phase: "open", opened: sockets.length, errors: errors.slice(0, 5), extensions: sockets.length ? extensions(sockets[0]) : null });
  await nextLine();
  for (const socket of sockets) socket.close();
  say({ phase: "closed" });
}

async function load(plan) {
  const clients = [];
  const errors = await openMany(plan.clients, async (spec) => {
    const client = { spec, socket: null, sessionId: "", acked: 0, received: 0, duplicates: 0, outOfOrder: 0, foreign: 0, lastSeq: 0, seen: new Set(), lastDelivery: 0 };
    client.socket = await connect(plan, spec.token);
    client.socket.on("message", (data) => {
      client.lastDelivery = performance.now();
      if (!data || data.session_id !== client.sessionId) { client.foreign++; return; }
      if (client.seen.has(data.id)) { client.duplicates++; return; }
      client.seen.add(data.id);
      client.received++;
      if (Number.isInteger(data.seq)) {
        if (data.seq <= client.lastSeq) client.outOfOrder++;
        client.lastSeq = Math.max(client.lastSeq, data.seq);
      }
    });
    clients.push(client);
  });
  if (errors.length) { say({ phase: "failed", error: `${errors.length} clients could not connect, e.g. ${errors[0]}` }); return; }
  const sessions = new Map();
  await Promise.all(clients.filter((c) => c.spec.creator).map(async (c) => {
    const ack = await call(c.socket, plan, "session:create", { title: `bench room ${c.spec.room}` });
    c.sessionId = ack.session.id;
    sessions.set(c.spec.room, c.sessionId);
    for (const name of c.spec.invites) await call(c.socket, plan, "session:invite", { session_id: c.sessionId, member: { id: name, kind: "user" } });
  }));
  await Promise.all(clients.filter((c) => !c.spec.creator).map(async (c) => {
    c.sessionId = sessions.get(c.spec.room);
    await call(c.socket, plan, "session:join", { session_id: c.sessionId });
  }));
  say({ phase: "ready", connected: clients.length, extensions: extensions(clients[0].socket) });
  await nextLine();

  const latencies = [];
  const sendErrors = {};
  const deadline = performance.now() + plan.deadlineMs;
  const started = performance.now();
  await Promise.all(clients.map(async (c) => {
    let nextIndex = 0;
    async function lane() {
      while (nextIndex < plan.messages && performance.now() < deadline) {
        const index = nextIndex++;
        const sent = performance.now();
        try {
          const ack = await c.socket.timeout(plan.ackTimeoutMs).emitWithAck("message:send", {
            session_id: c.sessionId, client_id: `${c.spec.name}-${index}`, type: "text", payload: { text: plan.text } });
          if (ack && ack.ok === true) { latencies.push(performance.now() - sent); c.acked++; }
          else { const code = (ack && ack.error && ack.error.code) || "bad_ack"; sendErrors[code] = (sendErrors[code] || 0) + 1; }
        } catch (error) {
          const code = error && error.message === "operation has timed out" ? "TimeoutError" : "Error";
          sendErrors[code] = (sendErrors[code] || 0) + 1;
        }
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, Math.min(plan.window, plan.messages)) }, lane));
  }));
  const finished = performance.now();
  // Settle: each client waits (bounded) for every message its room's other clients had acked.
  const roomTotal = new Map();
  for (const c of clients) roomTotal.set(c.spec.room, (roomTotal.get(c.spec.room) || 0) + c.acked);
  const expected = (c) => roomTotal.get(c.spec.room) - c.acked;
  const settleUntil = performance.now() + plan.settleMs;
  while (clients.some((c) => c.received < expected(c)) && performance.now() < settleUntil) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const lastDelivery = Math.max(finished, ...clients.map((c) => c.lastDelivery));
  const sum = (f) => clients.reduce((total, c) => total + f(c), 0);
  say({
    phase: "done",
    send_wall_s: (finished - started) / 1000,
    delivery_wall_s: (lastDelivery - started) / 1000,
    acked: sum((c) => c.acked),
    ack_p50_ms: percentile(latencies, 50),
    ack_p99_ms: percentile(latencies, 99),
    ack_max_ms: latencies.length ? Math.max(...latencies) : null,
    errors: sendErrors,
    received: sum((c) => c.received),
    expected: sum(expected),
    missing: sum((c) => Math.max(0, expected(c) - c.received)),
    extra: sum((c) => Math.max(0, c.received - expected(c))),
    duplicates: sum((c) => c.duplicates),
    out_of_order: sum((c) => c.outOfOrder),
    foreign: sum((c) => c.foreign),
  });
  await nextLine();
  for (const c of clients) c.socket.close();
}

nextLine().then(async (line) => {
  const plan = JSON.parse(line);
  try {
    await (plan.mode === "idle" ? idle(plan) : load(plan));
  } catch (error) {
    say({ phase: "failed", error: String(error && error.stack || error) });
  }
  process.exit(0);
});
