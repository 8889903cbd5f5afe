// The connection indicator (always visible, in words, announced politely),
// the queued count, and error notices with their hint and retry_after.

import { $, h } from "./dom.js";

function seconds(ms) {
  return Math.max(0, Math.ceil(ms / 1000));
}

/**
 * The indicator's words in three parts: what is announced (`before`, `after`)
 * and the countdown between them, which changes every second and is hidden
 * from screen readers, so that they hear state changes only.
 */
export function describeParts({ state, attempt, nextRetryAt }, now = Date.now()) {
  if (state === "reconnecting" && nextRetryAt) {
    return { before: "Reconnecting", countdown: ` in ${seconds(nextRetryAt - now)} s`, after: ` (attempt ${attempt})` };
  }
  return { before: describeState({ state, attempt, nextRetryAt }, now), countdown: "", after: "" };
}

export function describeState({ state, attempt, nextRetryAt }, now = Date.now()) {
  switch (state) {
    case "online":
      return "Online";
    case "connecting":
      return "Connecting…";
    case "reconnecting":
      return nextRetryAt ? `Reconnecting in ${seconds(nextRetryAt - now)} s (attempt ${attempt})` : `Reconnecting… (attempt ${attempt})`;
    case "offline":
      return "Offline: messages will be sent when you are back";
    case "signed-out":
      return "Signed out";
    default:
      return state;
  }
}

export class StatusView {
  constructor(client) {
    this.client = client;
    this.element = $('[data-testid="connection-status"]');
    const text = $(".connection-text", this.element);
    this.before = h("span", {}, text.textContent);
    this.countdown = h("span", { className: "connection-countdown", attrs: { "aria-hidden": "true" } });
    this.after = h("span", {});
    text.replaceChildren(this.before, this.countdown, this.after);
    this.retry = $(".retry-now", this.element);
    this.queued = $('[data-testid="queued-count"]');
    this.retry.addEventListener("click", () => client.connection.retryNow());
    this.snapshot = client.connection.snapshot();
    this._timer = setInterval(() => this._draw(), 1000);
    client.on("state", (snapshot) => {
      this.snapshot = snapshot;
      this._draw();
    });
    client.on("queue", ({ count }) => this._queued(count));
    this._draw();
  }

  _draw() {
    const { before, countdown, after } = describeParts(this.snapshot);
    this.element.dataset.state = this.snapshot.state;
    // Only what changed is written: an unchanged live region announces nothing.
    if (this.before.textContent !== before) this.before.textContent = before;
    if (this.countdown.textContent !== countdown) this.countdown.textContent = countdown;
    if (this.after.textContent !== after) this.after.textContent = after;
    this.retry.hidden = this.snapshot.state !== "reconnecting";
  }

  _queued(count) {
    this.queued.dataset.count = String(count);
    this.queued.textContent = `${count} queued`;
    this.queued.title = count ? `${count} ${count === 1 ? "message waits" : "messages wait"} to be sent` : "";
    this.queued.hidden = count === 0;
  }
}

/** `details.fields` of a validation error, in words: the hint refers to them. */
function fieldProblems(error) {
  const fields = Array.isArray(error?.details?.fields) ? error.details.fields.slice(0, 5) : [];
  const lines = fields.filter((f) => typeof f?.field === "string" && typeof f?.problem === "string");
  return lines.length ? h("ul", { className: "notice-fields" }, lines.map((f) => h("li", {}, `${f.field}: ${f.problem}`))) : null;
}

/** Error notices: message, hint, a countdown when the error has retry_after. One per code. */
export class Notices {
  constructor(container) {
    this.container = container;
    /** @type {Map<string, {element: HTMLElement, timer: number}>} */
    this.shown = new Map();
  }

  show(error) {
    const code = typeof error?.code === "string" ? error.code : "internal.error";
    this.dismiss(code);
    const message = typeof error?.message === "string" && error.message ? error.message : "Something went wrong.";
    const hint = typeof error?.hint === "string" && error.hint ? error.hint : "Try again in a moment.";
    // The alert is announced once; its countdown, which ticks, is for the eyes only.
    const countdown = h("span", { className: "countdown", attrs: { "aria-hidden": "true" } });
    const element = h(
      "div",
      { className: `notice severity-${error?.severity ?? "error"}`, dataset: { testid: "error", code }, attrs: { role: "alert" } },
      h("div", { className: "notice-text" }, h("strong", { className: "notice-message" }, message), h("span", { className: "notice-hint" }, hint),
        fieldProblems(error), countdown),
      h("button", { className: "icon-button notice-close", type: "button", attrs: { "aria-label": "Dismiss" }, onclick: () => this.dismiss(code) }, "×"),
    );
    const until = typeof error?.retry_after === "number" && error.retry_after > 0 ? Date.now() + error.retry_after * 1000 : null;
    const tick = () => {
      if (until === null) return;
      const left = seconds(until - Date.now());
      countdown.textContent = left > 0 ? `Retrying in ${left} s` : "Retrying now";
      element.dataset.retryIn = String(left);
    };
    tick();
    // Recoverable notices fade a while after their countdown; others stay until dismissed.
    const lifetime = error?.recoverable === false ? null : (until ? until - Date.now() : 0) + 8000;
    const started = Date.now();
    const timer = setInterval(() => {
      tick();
      if (lifetime !== null && Date.now() - started > lifetime) this.dismiss(code);
    }, 250);
    this.container.append(element);
    this.shown.set(code, { element, timer });
  }

  dismiss(code) {
    const shown = this.shown.get(code);
    if (!shown) return;
    clearInterval(shown.timer);
    shown.element.remove();
    this.shown.delete(code);
  }
}
