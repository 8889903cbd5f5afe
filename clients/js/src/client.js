// TkrClient: what the web page (or any browser code) needs of tkr-host,
// following PROTOCOL.md 1.1. It keeps the connection, the offline queue, and
// each followed session's messages in seq order, and tells the page about
// every change through events:
//
//   state     {state, attempt, nextRetryAt, error}       the connection
//   session   {sessionId}                               anything in that session changed
//   queue     {count}                                    the outbox changed
//   sent      {sessionId, clientId, message}            a queued message was stored
//   notice    {error, sessionId?, clientId?}             an Error the user should see
//   sessions  {sessions}                                 the session list was read
//
// Sending always goes through the queue: the message gets its client_id, is
// written to the outbox, shows as "queued", and is sent when the connection
// is up. A resend after a lost ack or a reload is a harmless duplicate.

import { fullJitterDelay, retryAfterMs } from "./backoff.js";
import { Connection } from "./connection.js";
import { Emitter } from "./emitter.js";
import { offlineError, timeoutError } from "./errors.js";
import { MemoryQueue, newClientId, nextOrder } from "./queue.js";
import { SessionState } from "./session.js";
import { TaskFollower } from "./tasks.js";
import { principalFromToken, queueOwnerFor } from "./principal.js";

export { principalFromToken, queueOwnerFor };

const RETRYABLE = (code) => code.startsWith("rate_limit.") || code === "store.unavailable";
const GAP_WAIT_MS = 250;
/** Backoff of a drain or a join that got no ack while the socket stayed up. */
const RETRY_BACKOFF = { baseMs: 500, capMs: 10_000 };
/** Refusals of a join that no wait will change: the session is gone, or we are not in it. */
const FINAL_JOIN = (code) => code.startsWith("not_found.") || code.startsWith("permission.");

export class TkrClient extends Emitter {
  /**
   * @param {object} options
   * @param {string} options.url        the host, e.g. location.origin
   * @param {string} options.token      a JWT or an API key
   * @param {Function} options.Manager  socket.io-client's Manager
   * @param {object} [options.queue]    IndexedDBQueue or MemoryQueue (default)
   * @param {string} [options.queueOwner] whose entries in a shared queue (default: url + principal)
   * @param {number} [options.ackTimeoutMs] how long an ack may take before the send is retried
   * @param {Function} [options.fetch]  for the HTTP API
   * @param {object} [options.backoff]  `{baseMs, capMs}` of the reconnection backoff
   * @param {object} [options.socketOptions] for socket.io-client's Manager
   */
  constructor({ url, token, Manager, queue = new MemoryQueue(), queueOwner, ackTimeoutMs = 10_000, fetch = globalThis.fetch?.bind(globalThis), ...rest }) {
    super();
    this.url = url.replace(/\/$/, "");
    this.token = token;
    this.me = principalFromToken(token);
    this.queue = queue;
    // An API key's owner needs a digest, which is async: start() sets it.
    this.queueOwner = queueOwner ?? (this.me ? `${this.url}|${this.me.id}` : null);
    this.ackTimeoutMs = ackTimeoutMs;
    this._fetch = fetch;
    /** @type {Map<string, SessionState>} */
    this.sessions = new Map();
    /** @type {object[]} the queued entries, in order (a mirror of the outbox) */
    this.queued = [];
    this._draining = false;
    this._holdUntil = 0;
    this._holdTimer = null;
    this._gapTimers = new Map();
    this._drainAttempts = 0;
    this._drainTimer = null;
    /** @type {Map<string, {timer: any, attempt: number}>} rejoins waiting for their retry */
    this._joinRetries = new Map();
    this._taskFollower = new TaskFollower(this);
    this.connection = new Connection({ url: this.url, token, Manager, ...rest });
    const { chat, tasks } = this.connection;
    this.connection.on("state", (snapshot) => {
      this.emit("state", snapshot);
      if (snapshot.state === "online") this._resumeAll();
    });
    chat.on("message", (message) => this._live(message));
    chat.on("message:chunk", (chunk) => this._chunk(chunk));
    chat.on("receipt", (receipt) => this._withSession(receipt.session_id, (s) => s.receipt(receipt)));
    chat.on("presence", (p) => this._withSession(p.session_id, (s) => s.presence.set(p.member.id, p)));
    chat.on("agent:status", (status) => this._withSession(status.session_id, (s) => s.agentStatus.set(status.agent.id, status)));
    chat.on("error", (error) => this._error(error));
    tasks.on("task:update", ({ task }) => this._withSession(task?.session_id, (s) => s.taskUpdate(task)));
    tasks.on("connect", () => this._taskFollower.resubscribe());
  }

  get state() {
    return this.connection.state;
  }

  /** Load the outbox, then connect. */
  async start() {
    this.queueOwner ??= await queueOwnerFor(this.url, this.token);
    const held = await this.queue.all(this.queueOwner);
    // A refused entry stays in the outbox, marked, so that it still shows as failed after a reload.
    this.queued = held.filter((entry) => !entry.failed);
    for (const entry of held) if (entry.failed) this._stateOf(entry.session_id).failed.set(entry.client_id, { entry, error: entry.failed });
    this.emit("queue", { count: this.queued.length });
    this.connection.start();
  }

  stop() {
    this.connection.stop();
    this._taskFollower.stop();
    const retries = [...this._joinRetries.values()].map(({ timer }) => timer);
    for (const timer of [this._holdTimer, this._drainTimer, ...this._gapTimers.values(), ...retries]) clearTimeout(timer);
  }

  // --- requests ---------------------------------------------------------------

  /** Emit with an ack and a deadline; resolves with the ack, or an Error-shaped `{ok: false}`. */
  async call(event, payload, socket = this.connection.chat) {
    if (!socket.connected) return { ok: false, error: offlineError() };
    try {
      return await socket.timeout(this.ackTimeoutMs).emitWithAck(event, payload);
    } catch {
      return { ok: false, error: timeoutError() };
    }
  }

  async listSessions() {
    const ack = await this.call("session:list", {});
    if (ack.ok) {
      for (const session of ack.sessions) {
        const held = this.sessions.get(session.id);
        if (held) Object.assign(held.session, session);
      }
      this.emit("sessions", { sessions: ack.sessions });
    }
    return ack;
  }

  /** Create a session; the creating socket follows it at once (PROTOCOL.md). */
  async createSession({ title, agents = [] } = {}) {
    const ack = await this.call("session:create", { ...(title ? { title } : {}), agents });
    if (ack.ok) {
      if (!this.me) this.me = { id: ack.session.created_by, kind: "user", name: ack.session.created_by };
      await this.join(ack.session.id);
    }
    return ack;
  }

  /** Follow a session: join it now and again after every reconnect, with since_seq. */
  async join(sessionId) {
    const state = this._stateOf(sessionId);
    state.followed = true;
    return this._join(state);
  }

  async leave(sessionId) {
    const state = this.sessions.get(sessionId);
    if (state) state.followed = false;
    return this.call("session:leave", { session_id: sessionId });
  }

  /** Older messages before what is held (scrolling back). */
  async loadOlder(sessionId, limit = 50) {
    const state = this.sessions.get(sessionId);
    if (!state || state.oldest === null || state.oldest <= 1) return { ok: true, messages: [], has_more: false };
    const ack = await this.call("message:history", { session_id: sessionId, before_seq: state.oldest, limit });
    if (ack.ok) {
      for (const message of ack.messages) state.ingest(message);
      state.hasOlder = ack.has_more;
      this._changed(sessionId);
    }
    return ack;
  }

  /**
   * Queue a message and send it as soon as the connection allows.
   * @returns {Promise<object>} the queue entry, with its client_id
   */
  async send(sessionId, { type = "text", payload, to, in_reply_to, client_id } = {}) {
    this.queueOwner ??= await queueOwnerFor(this.url, this.token);
    const entry = {
      client_id: client_id ?? newClientId(),
      owner: this.queueOwner,
      session_id: sessionId,
      type,
      payload,
      ...(to ? { to } : {}),
      ...(in_reply_to ? { in_reply_to } : {}),
      queued_at: new Date().toISOString(),
      order: nextOrder(),
    };
    await this.queue.add(entry);
    this.queued.push(entry);
    this.sessions.get(sessionId)?.failed.delete(entry.client_id);
    this.emit("queue", { count: this.queued.length });
    this._changed(sessionId);
    void this.drain();
    return entry;
  }

  /** Forget every queued and failed message of this owner (sign-out: their text is private). */
  async clearOutbox() {
    this.queueOwner ??= await queueOwnerFor(this.url, this.token);
    for (const entry of await this.queue.all(this.queueOwner)) await this.queue.remove(entry.client_id);
    this.queued = [];
    for (const state of this.sessions.values()) state.failed.clear();
    this.emit("queue", { count: 0 });
  }

  /** Put a refused message back in the queue, with the same client_id. */
  async retry(sessionId, clientId) {
    const failed = this.sessions.get(sessionId)?.failed.get(clientId);
    if (!failed) return null;
    const { entry } = failed;
    return this.send(sessionId, { type: entry.type, payload: entry.payload, to: entry.to, in_reply_to: entry.in_reply_to, client_id: entry.client_id });
  }

  /** Forget a refused message (it leaves the outbox too). */
  async dismiss(sessionId, clientId) {
    this.sessions.get(sessionId)?.failed.delete(clientId);
    this._changed(sessionId);
    await this.queue.remove(clientId);
  }

  async stopStream(sessionId, messageId) {
    const ack = await this.call("stream:stop", { session_id: sessionId, message_id: messageId });
    if (!ack.ok) this.emit("notice", { error: ack.error, sessionId });
    return ack;
  }

  /** Tell the sender that the user has seen the message with this seq (once per seq). */
  async markRead(sessionId, seq) {
    return this._receipt(sessionId, seq, "read");
  }

  /** `GET /api/v1/agents`: the agents online now. */
  async agents() {
    return this.http("/api/v1/agents");
  }

  /** A Bearer-authenticated GET of the HTTP API; `{ok, ...body}` or `{ok: false, error}`. */
  async http(path) {
    try {
      const response = await this._fetch(`${this.url}${path}`, { headers: { Authorization: `Bearer ${this.token}` } });
      const body = await response.json();
      if (!response.ok) return { ok: false, error: body.error ?? offlineError() };
      return { ok: true, ...body };
    } catch {
      return { ok: false, error: offlineError() };
    }
  }

  // --- what the page reads ---------------------------------------------------

  session(sessionId) {
    return this.sessions.get(sessionId);
  }

  /** The queued entries of one session, in order. */
  queuedIn(sessionId) {
    return this.queued.filter((entry) => entry.session_id === sessionId);
  }

  // --- the queue --------------------------------------------------------------

  /** Send the outbox in order, one message at a time, while connected. */
  async drain() {
    if (this._draining) return;
    this._draining = true;
    try {
      while (this.queued.length && this.connection.connected) {
        const wait = this._holdUntil - Date.now();
        if (wait > 0) {
          clearTimeout(this._holdTimer);
          this._holdTimer = setTimeout(() => void this.drain(), wait);
          return;
        }
        const entry = this.queued[0];
        const { owner, queued_at, order, ...wire } = entry;
        const ack = await this.call("message:send", wire);
        if (ack.ok) {
          this._drainAttempts = 0;
          await this._dequeue(entry);
          this._stored(entry, ack.message);
          continue;
        }
        const code = ack.error?.code ?? "";
        // Not connected: the next "online" drains again.
        if (code === "protocol.offline" || code === "protocol.not_connected") return;
        if (code === "protocol.timeout") {
          // No ack while the socket stayed up (a slow host, a lost packet): try
          // again after a backoff; the resend is a duplicate if the first was stored.
          this._drainAttempts += 1;
          clearTimeout(this._drainTimer);
          this._drainTimer = setTimeout(() => void this.drain(), Math.max(100, fullJitterDelay(this._drainAttempts, RETRY_BACKOFF)));
          return;
        }
        this.emit("notice", { error: ack.error, sessionId: entry.session_id, clientId: entry.client_id });
        if (RETRYABLE(code)) {
          this._holdUntil = Date.now() + (retryAfterMs(ack.error) ?? 1000);
          continue;
        }
        // Refused for good (validation, permission…): it leaves the queue and
        // shows as failed, in its session's state even before the page joins
        // it; the outbox keeps it, marked, so a reload still shows it.
        await this.queue.add({ ...entry, failed: ack.error });
        this.queued = this.queued.filter((queued) => queued.client_id !== entry.client_id);
        this.emit("queue", { count: this.queued.length });
        this._stateOf(entry.session_id).failed.set(entry.client_id, { entry, error: ack.error });
        this._changed(entry.session_id);
      }
    } finally {
      this._draining = false;
    }
  }

  async _dequeue(entry) {
    await this.queue.remove(entry.client_id);
    this.queued = this.queued.filter((queued) => queued.client_id !== entry.client_id);
    this.emit("queue", { count: this.queued.length });
  }

  _stored(entry, acked) {
    const message = {
      id: acked.id,
      session_id: entry.session_id,
      seq: acked.seq,
      ts: acked.ts,
      type: entry.type,
      sender: this.me ? { id: this.me.id, kind: this.me.kind } : { id: "you", kind: "user" },
      to: entry.to ?? null,
      in_reply_to: entry.in_reply_to ?? null,
      client_id: entry.client_id,
      payload: entry.payload,
      status: "complete",
    };
    const state = this.sessions.get(entry.session_id);
    if (state) {
      state.ingest(message);
      this._taskFollower.watch(state, message);
      this._checkGap(state);
    }
    this.emit("sent", { sessionId: entry.session_id, clientId: entry.client_id, message });
    this._changed(entry.session_id);
  }

  // --- resume -------------------------------------------------------------------

  async _resumeAll() {
    const joins = [...this.sessions.values()].filter((state) => state.followed).map((state) => this._join(state));
    void this.drain();
    await Promise.all(joins);
  }

  async _join(state) {
    // Join, and join again from the last seq received while the host says `truncated`.
    for (;;) {
      const since = state.contiguous;
      const ack = await this.call("session:join", { session_id: state.id, ...(since !== null ? { since_seq: since } : {}) });
      if (!ack.ok) {
        const code = ack.error?.code ?? "";
        if (code === "protocol.offline") return ack; // the next "online" joins again
        if (FINAL_JOIN(code)) state.followed = false;
        else this._retryJoin(state, ack.error);
        this.emit("notice", { error: ack.error, sessionId: state.id });
        return ack;
      }
      clearTimeout(this._joinRetries.get(state.id)?.timer);
      this._joinRetries.delete(state.id);
      this._flushReads(state);
      Object.assign(state.session, ack.session);
      for (const message of ack.messages) {
        state.ingest(message);
        this._taskFollower.watch(state, message);
      }
      if (since === null) {
        state.hasOlder = (ack.messages[0]?.seq ?? 1) > 1;
        if (state.contiguous === null) state.contiguous = ack.session.last_seq ?? 0;
      }
      // Streams the host no longer has ended while we were away (an aborted
      // reply with no text stores nothing); the join lists every open one.
      const open = new Set((ack.streams ?? []).map((stream) => stream.message_id));
      for (const id of state.streams.keys()) if (!open.has(id)) state.streams.delete(id);
      for (const stream of ack.streams ?? []) state.resumeStream(stream);
      for (const status of ack.agents ?? []) state.agentStatus.set(status.id, { agent: { id: status.id, kind: "agent" }, ...status });
      this._changed(state.id);
      if (!ack.truncated || !ack.messages.length) {
        this._checkGap(state);
        return ack;
      }
    }
  }

  /** Join again later: after `retry_after` when the host gives one, else after a backoff. */
  _retryJoin(state, error) {
    const held = this._joinRetries.get(state.id);
    clearTimeout(held?.timer);
    const attempt = (held?.attempt ?? 0) + 1;
    const delay = retryAfterMs(error) ?? Math.max(100, fullJitterDelay(attempt, RETRY_BACKOFF));
    const timer = setTimeout(() => {
      if (state.followed && this.connection.connected) void this._join(state);
    }, delay);
    this._joinRetries.set(state.id, { timer, attempt });
  }

  _live(message) {
    const state = this.sessions.get(message.session_id);
    if (!state || !state.ingest(message)) return;
    this._taskFollower.watch(state, message);
    if (message.sender?.id !== this.me?.id) void this._receipt(state.id, message.seq, "delivered");
    this._checkGap(state);
    this._changed(state.id);
  }

  _checkGap(state) {
    if (!state.gap() || this._gapTimers.has(state.id)) return;
    // A message of ours acked before an earlier broadcast arrived looks like a
    // gap for a moment: give the broadcast a short while before fetching.
    this._gapTimers.set(state.id, setTimeout(() => void this._fillGap(state), GAP_WAIT_MS));
  }

  async _fillGap(state) {
    this._gapTimers.delete(state.id);
    const gap = state.gap();
    if (!gap) return;
    const ack = await this.call("message:history", { session_id: state.id, ...gap });
    if (!ack.ok) return;
    const before = state.contiguous;
    for (const message of ack.messages) {
      state.ingest(message);
      this._taskFollower.watch(state, message);
    }
    if (state.contiguous === before) state.skipGap();
    this._changed(state.id);
    this._checkGap(state);
  }

  _chunk(chunk) {
    this._withSession(chunk.session_id, (state) => {
      state.chunk(chunk, () => {
        const agents = state.agentMembers();
        return agents.length === 1 ? agents[0] : { id: "agent", kind: "agent" };
      });
    });
  }

  async _receipt(sessionId, seq, status) {
    const state = this.sessions.get(sessionId);
    if (!state || state.receiptsSent[status].has(seq)) return;
    if (!this.connection.connected) {
      // What the user saw offline is still read: kept and sent after the next join.
      if (status === "read") state.pendingReads.add(seq);
      return;
    }
    state.receiptsSent[status].add(seq);
    if (status === "read") {
      state.receiptsSent.delivered.add(seq);
      state.pendingReads.delete(seq);
    }
    const ack = await this.call("message:receipt", { session_id: sessionId, seq, status });
    if (!ack.ok) {
      state.receiptsSent[status].delete(seq);
      const code = ack.error?.code ?? "";
      if (status === "read" && (code === "protocol.offline" || code === "protocol.timeout")) state.pendingReads.add(seq);
    }
  }

  _flushReads(state) {
    for (const seq of [...state.pendingReads]) void this._receipt(state.id, seq, "read");
  }

  _error(error) {
    const sessionId = error?.session_id ?? error?.details?.session_id;
    // An aborted stream ends here; what arrived (if anything) follows as an `incomplete` message.
    if (error?.code === "agent.stream_aborted" && error.details?.message_id) {
      this._withSession(sessionId, (state) => state.streams.delete(error.details.message_id));
    }
    this.emit("notice", { error, sessionId });
  }

  // --- helpers --------------------------------------------------------------------

  /** The state of a session, made (not followed) when none is held yet. */
  _stateOf(sessionId) {
    let state = this.sessions.get(sessionId);
    if (!state) {
      state = new SessionState({ id: sessionId, members: [], last_seq: 0 });
      this.sessions.set(sessionId, state);
    }
    return state;
  }

  _withSession(sessionId, change) {
    const state = this.sessions.get(sessionId);
    if (!state) return;
    change(state);
    this._changed(sessionId);
  }

  _changed(sessionId) {
    this.emit("session", { sessionId });
  }
}
