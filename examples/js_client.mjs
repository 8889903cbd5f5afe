// Connect to /chat, create a session, send one text message, print the ack.
//
//   npm ci --prefix examples
//   TKR_URL=http://127.0.0.1:8000 TKR_TOKEN=<token> node examples/js_client.mjs
import { randomUUID } from "node:crypto";
import { io } from "socket.io-client";

const url = process.env.TKR_URL ?? "http://127.0.0.1:8000";
// The token goes in the Socket.IO auth payload, never in the URL.
const socket = io(url + "/chat", { auth: { token: process.env.TKR_TOKEN } });

socket.on("connect_error", (err) => {
  // err.message is the error code (auth.expired, …); err.data is the whole Error.
  console.error(`connect refused: ${err.message}`, err.data ?? "");
  process.exit(1);
});

socket.once("connect", async () => {
  const created = await socket.emitWithAck("session:create", { title: "Hello" });
  if (!created.ok) {
    console.error(`session:create failed: ${created.error.code}`);
    process.exit(1);
  }
  const ack = await socket.emitWithAck("message:send", {
    session_id: created.session.id,
    client_id: "c-" + randomUUID(), // resending with the same id is safe
    type: "text",
    payload: { text: "Hello from JavaScript" },
  });
  console.log(JSON.stringify(ack)); // {"ok":true,"message":{"id":…,"seq":1,"ts":…},"duplicate":false}
  socket.disconnect();
});
