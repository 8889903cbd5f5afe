// The Node baseline: socket.io 4.x speaking just enough of /chat, as bench/bare_server.py does.
//
// It answers session:create, session:join, session:invite and message:send on /chat
// with acks of the host's shapes, keeps a seq counter per room in memory, and emits
// `message` to the room minus the sender. No auth, no validation, no store.
// Engine.IO settings are the host's (ping 25 s / 20 s, 1 MiB buffer); socket.io's
// default perMessageDeflate (off) is kept, as the host's websocket_compression is.
//
//   node bench/node/server.js --port N        GET /healthz answers 200
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");
const { Server } = require("socket.io");

const portIndex = process.argv.indexOf("--port");
const port = Number(portIndex > 0 ? process.argv[portIndex + 1] : 0);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node server.js --port N");
  process.exit(2);
}

const httpServer = http.createServer((request, response) => {
  const ok = request.url === "/healthz";
  response.writeHead(ok ? 200 : 404, { "content-type": "application/json" });
  response.end(ok ? '{"status": "ok"}' : "{}");
});
const io = new Server(httpServer, { pingInterval: 25000, pingTimeout: 20000, maxHttpBufferSize: 1048576, serveClient: false });
/** Last seq handed out, per room. */
const lastSeq = new Map();

function now() {
  return new Date().toISOString();
}

function session(room) {
  return { id: room, title: "", created_by: "", created_at: "", members: [], last_seq: lastSeq.get(room) || 0 };
}

io.of("/chat").on("connection", (socket) => {
  socket.on("session:create", (data, ack) => {
    const room = crypto.randomUUID();
    socket.join(room);
    ack({ ok: true, session: session(room) });
  });
  socket.on("session:invite", (data, ack) => ack({ ok: true, session: session(String(data.session_id)) }));
  socket.on("session:join", (data, ack) => {
    const room = String(data.session_id);
    socket.join(room);
    ack({ ok: true, session: session(room), messages: [], truncated: false, streams: [] });
  });
  socket.on("message:send", (data, ack) => {
    const room = String(data.session_id);
    const seq = (lastSeq.get(room) || 0) + 1;
    lastSeq.set(room, seq);
    const message = {
      id: crypto.randomUUID(), session_id: room, seq, type: data.type || "text", sender: { id: socket.id, kind: "user" },
      to: null, in_reply_to: null, client_id: data.client_id, payload: data.payload || {}, ts: now(), status: "complete",
    };
    socket.to(room).emit("message", message);
    ack({ ok: true, message: { id: message.id, seq, ts: message.ts }, duplicate: false });
  });
});

httpServer.listen(port, "127.0.0.1");
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => io.close(() => process.exit(0)));
}
