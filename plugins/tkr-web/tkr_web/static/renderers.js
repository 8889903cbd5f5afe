// The renderer hook, the page's side. Plugins name an ES module per message
// type (the `web_renderers` hook; docs/web.md); the page imports it the first
// time it shows a message of that type. The module's default export is
//
//   render(message, api) → Node | null     (null: show nothing for it)
//
// with api = { h, me, messages, send, markdown, session }:
//   h(tag, props, ...children)  builds elements (never HTML strings)
//   me                          the signed-in principal's id
//   messages()                  every stored message of the session, oldest first
//   send(payload, options)      queue a message of this type in this session
//   markdown(text)              sanitized Markdown as a DocumentFragment
// The page calls render again whenever a message of that type arrives, so a
// renderer may draw a summary of several messages (tkr-poll tallies votes).

import { h } from "./dom.js";
import { renderGeneric } from "./cards.js";

export class RendererRegistry {
  constructor(urls, { client, markdown }) {
    this.urls = urls;
    this.client = client;
    this.markdown = markdown;
    /** @type {Map<string, Function|null|Promise<void>>} */
    this.modules = new Map();
  }

  has(type) {
    return Object.hasOwn(this.urls, type);
  }

  ready(type) {
    return typeof this.modules.get(type) === "function";
  }

  render(message, state, redraw) {
    const loaded = this.modules.get(message.type);
    if (typeof loaded === "function") {
      try {
        const node = loaded(message, this._api(message, state));
        return node === null ? null : node instanceof Node ? node : renderGeneric(message);
      } catch (error) {
        console.error(`renderer of ${message.type} failed`, error);
        return renderGeneric(message);
      }
    }
    if (loaded === undefined) {
      this.modules.set(message.type, import(this.urls[message.type]).then(
        (module) => {
          this.modules.set(message.type, typeof module.default === "function" ? module.default : null);
          redraw();
        },
        (error) => {
          console.error(`renderer of ${message.type} could not be loaded`, error);
          this.modules.set(message.type, null);
        },
      ));
    }
    return renderGeneric(message);
  }

  _api(message, state) {
    return {
      h,
      me: this.client.me?.id ?? null,
      session: state.session,
      messages: () => state.messages(),
      markdown: this.markdown,
      send: (payload, options = {}) => this.client.send(state.id, { ...options, type: message.type, payload }),
    };
  }
}
