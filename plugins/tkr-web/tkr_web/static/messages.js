// The conversation: every message of the open session in seq order, then the
// replies being streamed, then what is queued. Elements are kept by key and
// redrawn only when what they show changed, so a growing stream does not
// redraw the whole list.

import { avatar, h, shortTime } from "./dom.js";
import { renderContext, renderGeneric, renderTask } from "./cards.js";

const DELIVERY_LABEL = { queued: "Queued", sent: "Sent", delivered: "Delivered", read: "Read", failed: "Not sent" };

export class MessageList {
  /**
   * @param {object} deps
   * @param {HTMLElement} deps.list     the <ol>
   * @param {object} deps.client        TkrClient
   * @param {Function} deps.markdown    text → DocumentFragment (sanitized)
   * @param {object} deps.renderers     RendererRegistry
   * @param {Set<string>} deps.localIds client_ids queued from this browser
   */
  constructor({ list, client, markdown, renderers, localIds }) {
    this.list = list;
    this.client = client;
    this.markdown = markdown;
    this.renderers = renderers;
    this.localIds = localIds;
    this.sessionId = null;
    /** @type {Map<string, {element: HTMLElement, signature: string}>} */
    this.items = new Map();
    // Read means seen: 60% of a message on screen, or, for one taller than the
    // conversation view, enough of it to fill most of that view (0.6 of a
    // tall message is never on screen at once). The root is the scrolling
    // view, so what the header and the composer cover does not count.
    /** @type {Set<HTMLElement>} messages on screen now, read once the page is visible */
    this.onScreen = new Set();
    this.seen = new IntersectionObserver((entries) => this._seen(entries), { root: list.closest(".messages"), threshold: [0, 0.25, 0.6] });
    document.addEventListener("visibilitychange", () => this._readOnScreen());
  }

  open(sessionId) {
    this.sessionId = sessionId;
    this.items.clear();
    this.onScreen.clear();
    this.seen.disconnect();
    this.list.replaceChildren();
  }

  /** Redraw what changed; returns true when something was added at the end. */
  update() {
    const state = this.sessionId && this.client.session(this.sessionId);
    if (!state) return false;
    const me = this.client.me?.id;
    const views = [];
    const countByType = new Map();
    const stored = state.messages();
    for (const message of stored) countByType.set(message.type, (countByType.get(message.type) ?? 0) + 1);
    for (const message of stored) {
      const mine = message.sender?.id === me || this.localIds.has(message.client_id);
      const state_ = mine ? state.receipts.get(message.id) ?? "sent" : "delivered";
      views.push({
        key: mine && message.client_id ? `q:${message.client_id}` : `m:${message.id}`,
        message, mine, state: state_, typeCount: countByType.get(message.type), ready: this.renderers.ready(message.type),
      });
    }
    for (const stream of state.streams.values()) {
      const message = { id: stream.message_id, session_id: state.id, type: "text", sender: stream.sender, payload: { text: stream.text }, ts: null, seq: null };
      views.push({ key: `m:${stream.message_id}`, message, mine: false, state: "delivered", streaming: true });
    }
    for (const { entry, error } of state.failed.values()) {
      views.push({ key: `q:${entry.client_id}`, message: queuedMessage(entry, me), mine: true, state: "failed", error });
    }
    for (const entry of this.client.queuedIn(state.id)) {
      views.push({ key: `q:${entry.client_id}`, message: queuedMessage(entry, me), mine: true, state: "queued" });
    }
    const before = this.list.lastElementChild;
    const keep = new Set();
    let previous = null;
    for (const view of views) {
      keep.add(view.key);
      const signature = signatureOf(view, state);
      let item = this.items.get(view.key);
      if (!item || item.signature !== signature) {
        const element = this._draw(view, state);
        if (item) item.element.replaceWith(element);
        item = { element, signature, text: view.message.payload?.text };
        this.items.set(view.key, item);
        if (!view.mine && view.message.seq) this.seen.observe(element);
      } else if (view.streaming && item.text !== view.message.payload?.text) {
        // A new chunk: only the text changes, in place. Replacing the item
        // would take the focus off its Stop button and make a screen reader
        // announce the whole reply again for every chunk.
        item.text = view.message.payload?.text;
        this._fillText(item.element.querySelector(".message-body"), view.message, true);
      }
      const expected = previous ? previous.nextElementSibling : this.list.firstElementChild;
      if (expected !== item.element) previous ? previous.after(item.element) : this.list.prepend(item.element);
      previous = item.element;
    }
    for (const [key, item] of this.items) {
      if (!keep.has(key)) {
        item.element.remove();
        this.items.delete(key);
      }
    }
    return this.list.lastElementChild !== before;
  }

  _draw(view, state) {
    const { message, mine, streaming } = view;
    const sender = message.sender ?? { id: "unknown", kind: "user" };
    const element = h("li", {
      className: `message ${mine ? "mine" : "theirs"} kind-${sender.kind ?? "user"}${streaming ? " streaming" : ""}`,
      dataset: {
        testid: "message",
        seq: message.seq ?? "",
        state: view.state,
        sender: sender.id,
        messageId: message.id ?? "",
        type: message.type,
        ...(streaming ? { streaming: "true" } : {}),
        ...(message.status && message.status !== "complete" ? { status: message.status } : {}),
      },
      // A reply still being written: assistive technology waits for the whole of it.
      attrs: streaming ? { "aria-busy": "true" } : {},
    });
    const body = h("div", { className: "message-body" });
    const custom = this.renderers.has(message.type);
    if (custom) {
      const node = this.renderers.render(message, state, () => this.update());
      if (node === null) {
        element.hidden = true;
        return element;
      }
      body.append(node);
    } else if (message.type === "text") {
      this._fillText(body, message, streaming);
    } else if (message.type === "context") {
      body.append(renderContext(message));
    } else if (message.type === "task") {
      body.append(renderTask(message, state.tasks.get(message.payload?.task_id), this.markdown));
    } else {
      body.append(renderGeneric(message));
    }
    const meta = h(
      "div",
      { className: "message-meta" },
      h("span", { className: "sender" }, mine ? "You" : sender.id),
      message.to ? h("span", { className: "recipient" }, `to ${message.to}`) : null,
      message.ts ? h("time", { dateTime: message.ts, title: new Date(message.ts).toLocaleString() }, shortTime(message.ts)) : null,
    );
    const footer = h("div", { className: "message-footer" });
    if (streaming) {
      footer.append(
        h("span", { className: "typing" }, "Writing…"),
        h("button", {
          className: "stop-button",
          type: "button",
          dataset: { testid: "stop-stream" },
          onclick: (event) => {
            event.currentTarget.disabled = true;
            void this.client.stopStream(state.id, message.id);
          },
        }, h("span", { className: "stop-square", attrs: { "aria-hidden": "true" } }), "Stop"),
      );
    }
    if (message.status === "stopped") footer.append(h("span", { className: "status-tag stopped" }, "Stopped"));
    if (message.status === "incomplete") footer.append(h("span", { className: "status-tag incomplete", title: "The agent was cut off before it finished." }, "Incomplete"));
    if (mine) {
      footer.append(h("span", { className: `delivery delivery-${view.state}`, attrs: { "aria-label": `Delivery: ${DELIVERY_LABEL[view.state]}` } }, DELIVERY_LABEL[view.state]));
    }
    if (view.state === "failed") {
      footer.append(
        h("span", { className: "failed-reason" }, view.error?.message ?? "The host refused this message."),
        h("button", { className: "link-button", type: "button", onclick: () => void this.client.retry(state.id, message.client_id) }, "Retry"),
        h("button", { className: "link-button", type: "button", onclick: () => this.client.dismiss(state.id, message.client_id) }, "Discard"),
      );
    }
    const bubble = h("div", { className: `bubble type-${message.type}` }, meta, body, footer.childElementCount ? footer : null);
    if (!mine) element.append(avatar(sender.id, sender.kind));
    element.append(bubble);
    return element;
  }

  _fillText(body, message, streaming) {
    body.replaceChildren(this.markdown(message.payload?.text ?? "", message.payload?.format ?? "markdown"));
    if (streaming) {
      // The caret goes at the end of the last block, right after the text.
      const caret = h("span", { className: "caret", attrs: { "aria-hidden": "true" } });
      let last = body.lastElementChild;
      while (last?.lastElementChild && !["PRE", "CODE", "TABLE"].includes(last.tagName)) last = last.lastElementChild;
      (last && ["P", "LI", "H1", "H2", "H3", "H4", "BLOCKQUOTE"].includes(last.tagName) ? last : body).append(caret);
    }
  }

  _seen(entries) {
    for (const entry of entries) {
      const view = entry.rootBounds?.height || window.innerHeight;
      const enough = entry.isIntersecting && (entry.intersectionRatio >= 0.6 || entry.intersectionRect.height >= 0.5 * view);
      if (enough) this.onScreen.add(entry.target);
      else this.onScreen.delete(entry.target);
    }
    this._readOnScreen();
  }

  /** Mark read what is on screen, once the page is visible (a background tab reads nothing). */
  _readOnScreen() {
    if (document.visibilityState !== "visible" || !this.sessionId) return;
    for (const element of this.onScreen) {
      const seq = Number(element.dataset.seq);
      if (seq) void this.client.markRead(this.sessionId, seq);
      this.seen.unobserve(element);
    }
    this.onScreen.clear();
  }
}

function queuedMessage(entry, me) {
  return {
    id: null,
    seq: null,
    session_id: entry.session_id,
    type: entry.type,
    sender: { id: me ?? "you", kind: "user" },
    to: entry.to ?? null,
    client_id: entry.client_id,
    payload: entry.payload,
    ts: entry.queued_at,
  };
}

function signatureOf(view, state) {
  const { message } = view;
  const task = message.type === "task" ? state.tasks.get(message.payload?.task_id) : null;
  return JSON.stringify([
    message.id, message.seq, view.state, message.status, view.streaming ?? false,
    view.typeCount ?? 0, view.ready ?? false, task?.state, task?.history?.length, task?.artifacts?.length,
  ]);
}
