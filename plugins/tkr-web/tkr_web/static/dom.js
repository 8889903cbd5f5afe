// Small DOM helpers: elements are built with properties, never from HTML
// strings (only DOMPurify's output is ever assigned as HTML).

/**
 * h("button", {className: "x", onclick, dataset: {testid: "send"}, attrs: {"aria-label": "Send"}}, "Send")
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "attrs") for (const [name, attr] of Object.entries(value)) attr != null && element.setAttribute(name, String(attr));
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element[key] = value;
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
  return parent;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** "10:04" today, "Mon 10:04" this week, else a date. */
export function shortTime(ts) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return "";
  const now = new Date();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === now.toDateString()) return time;
  if (now - date < 6 * 86_400_000) return `${date.toLocaleDateString([], { weekday: "short" })} ${time}`;
  return `${date.toLocaleDateString()} ${time}`;
}

/** Initials for an avatar, and a stable hue from the id. */
export function avatar(id, kind) {
  const label = String(id ?? "?");
  const initials = label.replace(/[^A-Za-z0-9]/g, " ").trim().split(/\s+/).map((part) => part[0]).join("").slice(0, 2).toUpperCase() || "?";
  let hue = 0;
  for (const char of label) hue = (hue * 31 + char.codePointAt(0)) % 360;
  const element = h("span", { className: `avatar avatar-${kind === "agent" ? "agent" : "user"}`, attrs: { "aria-hidden": "true" } }, initials);
  element.style.setProperty("--hue", String(hue));
  return element;
}
