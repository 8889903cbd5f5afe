// Cards for the built-in types that are not plain text (context, task) and
// for any type the page has no renderer for.

import { h, shortTime } from "./dom.js";

export const TASK_STATE_LABEL = {
  submitted: "Submitted",
  working: "Working",
  "input-required": "Needs input",
  "auth-required": "Needs sign-in",
  completed: "Completed",
  failed: "Failed",
  canceled: "Canceled",
  rejected: "Rejected",
};

/** A short, readable line for any JSON value (no raw JSON dump for small values). */
function describe(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value) && value.every((item) => item === null || typeof item !== "object")) return value.map(String).join(", ");
  return JSON.stringify(value, null, 2);
}

function fields(object) {
  const list = h("dl", { className: "fields" });
  for (const [key, value] of Object.entries(object ?? {}).slice(0, 20)) {
    const text = describe(value);
    list.append(h("dt", {}, key), h("dd", {}, text.includes("\n") ? h("pre", {}, text) : text));
  }
  return list;
}

/** `context`: a chip with its id, opening to show the data. */
export function renderContext(message) {
  const { context_id: id, data = {}, targets, ttl_s: ttl } = message.payload ?? {};
  const keys = Object.keys(data);
  return h(
    "details",
    { className: "context-chip" },
    h("summary", {}, h("span", { className: "chip-icon", attrs: { "aria-hidden": "true" } }), h("span", {}, `Context · ${id ?? "shared"}`),
      h("span", { className: "chip-sub" }, `${keys.length} ${keys.length === 1 ? "field" : "fields"}${targets?.length ? ` · for ${targets.join(", ")}` : ""}${ttl ? ` · ${Math.round(ttl / 60)} min` : ""}`)),
    fields(data),
  );
}

export function stateBadge(state) {
  return h("span", { className: `task-state state-${state ?? "submitted"}` }, TASK_STATE_LABEL[state] ?? state ?? "Submitted");
}

function renderPart(part, markdown) {
  if (part?.kind === "text") return h("div", { className: "part part-text" }, markdown(part.text ?? ""));
  if (part?.kind === "url") {
    const safe = /^https?:\/\//i.test(part.url ?? "") ? part.url : null;
    return h("div", { className: "part part-url" }, safe ? h("a", { href: safe, target: "_blank", rel: "noopener noreferrer nofollow" }, part.filename ?? part.url) : part.url);
  }
  if (part?.kind === "data") return h("div", { className: "part part-data" }, fields(part.data));
  return h("div", { className: "part" }, describe(part));
}

export function renderArtifacts(artifacts, markdown) {
  if (!artifacts?.length) return null;
  return h("div", { className: "artifacts" }, artifacts.map((artifact) =>
    h("div", { className: "artifact" }, h("div", { className: "artifact-name" }, artifact.name ?? artifact.artifact_id), (artifact.parts ?? []).map((part) => renderPart(part, markdown)))));
}

export function renderHistory(history) {
  if (!history?.length) return null;
  return h("ol", { className: "task-history", attrs: { "aria-label": "History" } }, history.map((step) =>
    h("li", {}, stateBadge(step.state), h("span", { className: "by" }, step.by ?? ""), step.at ? h("time", { dateTime: step.at }, shortTime(step.at)) : null)));
}

/** `task`: the task as the message says it, brought up to date by /tasks when followed. */
export function renderTask(message, task, markdown) {
  const payload = message.payload ?? {};
  // The card of the `create` message follows the task as /tasks reports it; an
  // update's card shows what that update changed.
  const live = payload.action === "create";
  const current = live ? task ?? {} : {};
  const state = live ? current.state ?? "submitted" : payload.state ?? (payload.action === "cancel" ? "canceled" : undefined);
  const actionLabel = { create: "New task", update: "Task update", cancel: "Task canceled" }[payload.action] ?? "Task";
  return h(
    "div",
    { className: "task-card" },
    h("div", { className: "task-top" }, h("span", { className: "task-kind" }, actionLabel), state ? stateBadge(state) : null),
    h("div", { className: "task-title" }, current.title ?? payload.title ?? task?.title ?? payload.task_id),
    payload.description ? h("p", { className: "task-description" }, payload.description) : null,
    payload.status_text || current.status_text ? h("p", { className: "task-status" }, payload.status_text ?? current.status_text) : null,
    current.assignee ?? payload.assignee ? h("p", { className: "task-assignee" }, `Assigned to ${current.assignee ?? payload.assignee}`) : null,
    payload.artifact ? renderArtifacts([payload.artifact], markdown) : null,
  );
}

/** A type with no renderer: its name and payload, readable. */
export function renderGeneric(message) {
  return h("div", { className: "generic-card" }, h("div", { className: "generic-type" }, message.type), fields(message.payload));
}
