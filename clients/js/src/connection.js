// The connection: one Socket.IO manager carrying /chat and /tasks, with
// reconnection of our own (full jitter) and the states the page shows.
//
// socket.io-client's built-in reconnection is turned off: its ±50% jitter
// does not spread a herd, it retries while the browser says it is offline, and
// it keeps retrying refused credentials. Here:
//   connecting    the first attempt is under way
//   online        /chat is connected
//   reconnecting  waiting for attempt N, due at nextRetryAt (ms since epoch)
//   offline       navigator.onLine is false; the next attempt waits for "online"
//   signed-out    the host refused the credential (auth.*): no more attempts

import { fullJitterDelay, retryAfterMs } from "./backoff.js";
import { Emitter } from "./emitter.js";

export const STATES = Object.freeze(["connecting", "online", "reconnecting", "offline", "signed-out"]);

/** The PROTOCOL.md Error of a refused connect, or one made up from a transport failure. */
export function connectError(err) {
  if (err?.data && typeof err.data === "object" && typeof err.data.code === "string") return err.data;
  return {
    code: "protocol.unreachable",
    category: "protocol",
    severity: "warning",
    message: "The host cannot be reached.",
    hint: "Check your network; the page keeps trying.",
    recoverable: true,
  };
}

export class Connection extends Emitter {
  /**
   * @param {object} options
   * @param {string} options.url       the host's base URL
   * @param {string} options.token     the credential (JWT or API key)
   * @param {Function} options.Manager socket.io-client's Manager class
   * @param {object} [options.backoff] `{baseMs, capMs, random}` for fullJitterDelay
   * @param {() => boolean} [options.isOnline] navigator.onLine by default
   * @param {object} [options.socketOptions] passed to the Manager (e.g. `transports`)
   * @param {EventTarget} [options.window] where "online"/"offline" events come from
   */
  constructor({ url, token, Manager, backoff = {}, isOnline, socketOptions = {}, window: win = globalThis.window }) {
    super();
    this.url = url;
    this.token = token;
    this.backoff = backoff;
    this.isOnline = isOnline ?? (() => globalThis.navigator?.onLine !== false);
    this.state = "connecting";
    this.attempt = 0;
    this.nextRetryAt = null;
    this.lastError = null;
    this._timer = null;
    this._stopped = true;
    this.manager = new Manager(url, { autoConnect: false, reconnection: false, ...socketOptions });
    this.chat = this.manager.socket("/chat", { auth: { token } });
    this.tasks = this.manager.socket("/tasks", { auth: { token } });
    this.chat.on("connect", () => this._online());
    this.chat.on("connect_error", (err) => this._refused(err));
    this.chat.on("disconnect", (reason) => this._lost(reason));
    // /tasks comes back with /chat after a reconnect. Lost or refused on its
    // own (rate_limit.connect, a namespace disconnect) while /chat stays up, it
    // is connected again by itself after a backoff; it has no state of its own.
    this._tasksAttempt = 0;
    this._tasksTimer = null;
    this.tasks.on("connect", () => {
      this._tasksAttempt = 0;
    });
    this.tasks.on("connect_error", (err) => this._tasksLost(connectError(err)));
    this.tasks.on("disconnect", (reason) => reason !== "io client disconnect" && this._tasksLost(null));
    this.chat.on("error", (error) => {
      // Sent just before the host disconnects this socket (ban, idle timeout).
      if (typeof error?.code === "string" && error.code.startsWith("auth.")) this._signOut(error);
    });
    if (win?.addEventListener) {
      this._onOffline = () => this._wentOffline();
      this._onOnline = () => this._cameOnline();
      win.addEventListener("offline", this._onOffline);
      win.addEventListener("online", this._onOnline);
      this._window = win;
    }
  }

  get connected() {
    return this.chat.connected;
  }

  start() {
    this._stopped = false;
    if (!this.isOnline()) return this._set("offline");
    this._attemptNow();
  }

  /** Close for good (sign-out, page teardown). */
  stop() {
    this._stopped = true;
    clearTimeout(this._timer);
    clearTimeout(this._tasksTimer);
    this.chat.disconnect();
    this.tasks.disconnect();
    this.manager.engine?.close?.();
    if (this._window) {
      this._window.removeEventListener("offline", this._onOffline);
      this._window.removeEventListener("online", this._onOnline);
    }
  }

  /** Try at once (the "Retry now" button), whatever the backoff says. */
  retryNow() {
    if (this._stopped || this.state === "signed-out" || this.connected) return;
    clearTimeout(this._timer);
    this._attemptNow();
  }

  _attemptNow() {
    clearTimeout(this._timer);
    this.nextRetryAt = null;
    this._set(this.attempt === 0 ? "connecting" : "reconnecting");
    this.chat.connect();
    this.tasks.connect();
  }

  _online() {
    this.attempt = 0;
    this.nextRetryAt = null;
    this.lastError = null;
    // Not tasks.connect() again here: while /tasks is still connecting, a second
    // connect() sends a second CONNECT packet, and the host then holds two /tasks
    // sockets for one client, whose acks go astray.
    this._set("online");
  }

  _refused(err) {
    const error = connectError(err);
    this.lastError = error;
    if (error.code.startsWith("auth.")) return this._signOut(error);
    this._schedule(retryAfterMs(error));
  }

  _lost(reason) {
    if (this._stopped || this.state === "signed-out") return;
    // "io client disconnect" is ours (stop, offline); anything else is a loss.
    if (reason === "io client disconnect") return;
    this._schedule(null);
  }

  _schedule(minimumMs) {
    if (this._stopped || this.state === "signed-out") return;
    clearTimeout(this._timer);
    if (!this.isOnline()) return this._set("offline");
    this.attempt += 1;
    const delay = Math.max(fullJitterDelay(this.attempt, this.backoff), minimumMs ?? 0);
    this.nextRetryAt = Date.now() + delay;
    this._set("reconnecting");
    this._timer = setTimeout(() => this._attemptNow(), delay);
  }

  /** /tasks alone is down: connect it again later, while /chat is online. */
  _tasksLost(error) {
    if (this._stopped || this.state === "signed-out") return;
    if (error?.code?.startsWith("auth.")) return; // /chat hears the same and signs out
    clearTimeout(this._tasksTimer);
    this._tasksAttempt += 1;
    const delay = Math.max(fullJitterDelay(this._tasksAttempt, this.backoff), retryAfterMs(error) ?? 0);
    this._tasksTimer = setTimeout(() => {
      // Not while a connect is under way (`active`): a second CONNECT packet
      // would give the host two /tasks sockets for one client. When /chat is
      // down too, the reconnection of both takes care of it.
      if (!this._stopped && this.chat.connected && !this.tasks.connected && !this.tasks.active) this.tasks.connect();
    }, delay);
  }

  _signOut(error) {
    clearTimeout(this._timer);
    clearTimeout(this._tasksTimer);
    this.lastError = error;
    this.nextRetryAt = null;
    this._set("signed-out");
    this.chat.disconnect();
    this.tasks.disconnect();
  }

  _wentOffline() {
    if (this._stopped || this.state === "signed-out") return;
    clearTimeout(this._timer);
    this.nextRetryAt = null;
    // The socket would linger until its ping timeout; say so now, and close it.
    this.chat.disconnect();
    this.tasks.disconnect();
    this._set("offline");
  }

  _cameOnline() {
    if (this._stopped || this.state === "signed-out" || this.connected) return;
    this.attempt = Math.max(this.attempt, 1);
    this._attemptNow();
  }

  _set(state) {
    this.state = state;
    this.emit("state", this.snapshot());
  }

  /** `{state, attempt, nextRetryAt, error}` for the page. */
  snapshot() {
    return { state: this.state, attempt: this.attempt, nextRetryAt: this.nextRetryAt, error: this.lastError };
  }
}
