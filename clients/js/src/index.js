// The tkr-host browser client (PROTOCOL.md 1.1). No build step: import this
// module directly, and hand it socket.io-client's Manager, so that the page
// decides where socket.io-client comes from (tkr-web serves it from npm).
//
//   import { Manager } from "/static/vendor/…/socket.io.esm.min.js";
//   import { TkrClient, IndexedDBQueue } from "/static/client/…/index.js";
//   const client = new TkrClient({ url: location.origin, token, Manager, queue: new IndexedDBQueue() });
//   client.on("state", ({ state }) => …);
//   await client.start();

export { fullJitterDelay, retryAfterMs } from "./backoff.js";
export { Connection, STATES, connectError } from "./connection.js";
export { Emitter } from "./emitter.js";
export { IndexedDBQueue, MemoryQueue } from "./queue.js";
export { SessionState } from "./session.js";
export { TkrClient, principalFromToken, queueOwnerFor } from "./client.js";
