// The side parts of the page: the conversation list with its "new
// conversation" dialog, the members' presence, the agents' status line, and
// the tasks panel fed by /tasks.

import { $, avatar, h, shortTime } from "./dom.js";
import { renderArtifacts, renderHistory, stateBadge } from "./cards.js";

const CACHE_PREFIX = "tkr.sessions";

/** The cached list is per user (the client's queue owner), so one user never sees another's. */
const cacheKey = (client) => `${CACHE_PREFIX}:${client.queueOwner}`;

function readCache(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "[]");
  } catch {
    return [];
  }
}

/** Sign-out: forget every cached conversation list. */
export function forgetSessionCache() {
  for (const key of Object.keys(sessionStorage)) if (key.startsWith(CACHE_PREFIX)) sessionStorage.removeItem(key);
}

export class SessionList {
  constructor({ client, onOpen, notices }) {
    this.client = client;
    this.onOpen = onOpen;
    this.notices = notices;
    this.list = $("#session-list");
    this.empty = $("#sessions-empty");
    // The last list read, so that the sidebar shows while the host is down.
    this.cacheKey = cacheKey(client);
    this.sessions = readCache(this.cacheKey);
    this.activeId = null;
    this.dialog = $("#new-session-dialog");
    for (const button of [$("#new-session"), $("#welcome-new")]) button.addEventListener("click", () => void this.openDialog());
    $("#cancel-session").addEventListener("click", () => this.dialog.close());
    $("#new-session-form").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.create();
    });
    this.draw();
  }

  async refresh() {
    const ack = await this.client.listSessions();
    if (!ack.ok) return;
    this.sessions = ack.sessions;
    this.draw();
  }

  _remember() {
    try {
      sessionStorage.setItem(this.cacheKey, JSON.stringify(this.sessions.slice(0, 100)));
    } catch {
      // Storage full or denied: the list is only a convenience while offline.
    }
  }

  /** Add or update one session (after create, or when its state changed). */
  upsert(session) {
    const index = this.sessions.findIndex((s) => s.id === session.id);
    const known = this.sessions[index];
    if (!session.title && !known) return; // a session not read yet (joined from the address bar)
    if (known && known.title === (session.title || known.title) && known.last_seq === session.last_seq) return;
    if (index === -1) this.sessions.unshift(session);
    else this.sessions[index] = { ...known, ...session, title: session.title || known.title };
    this.draw();
  }

  titleOf(sessionId) {
    return this.sessions.find((s) => s.id === sessionId)?.title;
  }

  setActive(sessionId) {
    this.activeId = sessionId;
    this.draw();
  }

  draw() {
    const items = [...this.sessions].sort((a, b) => (b.last_seq ?? 0) - (a.last_seq ?? 0) || String(b.created_at).localeCompare(String(a.created_at)));
    this._remember();
    this.list.replaceChildren(...items.map((session) => {
      const agents = (session.members ?? []).filter((m) => m.kind === "agent").map((m) => m.id);
      const active = session.id === this.activeId;
      return h("li", {}, h(
        "button",
        {
          className: `session-item${active ? " active" : ""}`,
          type: "button",
          dataset: { testid: "session-item", sessionId: session.id },
          attrs: { "aria-current": active ? "true" : null },
          onclick: () => this.onOpen(session.id),
        },
        h("span", { className: "session-title" }, session.title || "Untitled"),
        h("span", { className: "session-sub" }, agents.length ? `with ${agents.join(", ")}` : "no agents", session.created_at ? ` · ${shortTime(session.created_at)}` : ""),
      ));
    }));
    this.empty.hidden = items.length > 0;
  }

  async openDialog() {
    const picker = $("#agent-picker");
    picker.replaceChildren(h("li", { className: "picker-loading" }, "Looking for agents…"));
    $("#agents-empty").hidden = true;
    $("#session-title").value = "";
    this.dialog.showModal();
    $("#session-title").focus();
    const answer = await this.client.agents();
    const agents = answer.ok ? answer.agents ?? [] : [];
    if (!answer.ok) this.notices.show(answer.error);
    picker.replaceChildren(...agents.map((agent) => h("li", {}, h(
      "label",
      { className: "agent-option" },
      h("input", { type: "checkbox", name: "agents", value: agent.id, checked: agents.length === 1 }),
      avatar(agent.id, "agent"),
      h("span", { className: "agent-name" }, agent.name || agent.id),
      h("span", { className: `agent-state state-${agent.state ?? "idle"}` }, agent.online === false ? "offline" : agent.state ?? "online"),
    ))));
    $("#agents-empty").hidden = agents.length > 0;
  }

  async create() {
    const title = $("#session-title").value.trim();
    const agents = [...this.dialog.querySelectorAll('input[name="agents"]:checked')].map((input) => input.value);
    const ack = await this.client.createSession({ title: title || (agents.length ? `Chat with ${agents.join(", ")}` : "New conversation"), agents });
    if (!ack.ok) return this.notices.show(ack.error);
    this.dialog.close();
    this.upsert(ack.session);
    this.onOpen(ack.session.id);
  }
}

/** Members with an online dot, and the agents' `agent:status` line. */
export function drawPresence(state, client, onlineAgents) {
  const me = client.me?.id;
  // Members the session held when read, and anyone presence has told of since (an invite).
  const members = [...(state.session.members ?? [])];
  for (const { member } of state.presence.values()) if (member && !members.some((m) => m.id === member.id)) members.push(member);
  const busy = [...state.agentStatus.values()].filter((status) => status.state && status.state !== "idle" && state.presence.get(status.agent.id)?.state !== "offline");
  // Redrawn only when what they show changed (not on every chunk of a stream),
  // so a screen reader is not told again and nothing in them loses the focus.
  const onlineOf = (member) => {
    const known = state.presence.get(member.id)?.state;
    return member.id === me || known === "online" || (known === undefined && member.kind === "agent" && onlineAgents.has(member.id));
  };
  const presenceKey = JSON.stringify([state.id, me, members.map((member) => [member.id, onlineOf(member)])]);
  if (drawn.presence !== presenceKey) {
    drawn.presence = presenceKey;
    drawMembers(members, me, onlineOf);
  }
  const statusKey = JSON.stringify([state.id, busy.map((status) => [status.agent.id, status.state, status.detail ?? ""])]);
  if (drawn.status !== statusKey) {
    drawn.status = statusKey;
    $("#agent-status").replaceChildren(...busy.map((status) => h("div", { className: `agent-activity state-${status.state}` },
      h("span", { className: "pulse", attrs: { "aria-hidden": "true" } }),
      h("strong", {}, status.agent.id), ` is ${status.state}`, status.detail ? h("span", { className: "detail" }, ` — ${status.detail}`) : null)));
  }
}

/** What the presence list and the status line show now, so that they are redrawn only on a change. */
const drawn = { presence: null, status: null };

/** The agent-status line was emptied elsewhere (the conversation closed). */
export function forgetDrawnStatus() {
  drawn.presence = null;
  drawn.status = null;
}

function drawMembers(members, me, onlineOf) {
  $("#presence").replaceChildren(...members.map((member) => {
    const online = onlineOf(member);
    return h("li", { className: `member ${online ? "online" : "offline"}`, title: `${member.id} is ${online ? "online" : "offline"}` },
      h("span", { className: "presence-dot", attrs: { "aria-hidden": "true" } }), member.id === me ? `${member.id} (you)` : member.id,
      h("span", { className: "visually-hidden" }, online ? ", online" : ", offline"));
  }));
}

export function drawTasks(state, markdown) {
  const tasks = [...state.tasks.values()];
  $("#task-count").textContent = String(tasks.length);
  $("#tasks-empty").hidden = tasks.length > 0;
  $("#task-list").replaceChildren(...tasks.map((task) => h(
    "li",
    { className: "task-item", dataset: { taskId: task.task_id } },
    h("div", { className: "task-top" }, h("span", { className: "task-title" }, task.title ?? task.task_id), stateBadge(task.state)),
    task.status_text ? h("p", { className: "task-status" }, task.status_text) : null,
    task.assignee ? h("p", { className: "task-assignee" }, `Assigned to ${task.assignee}`) : null,
    renderArtifacts(task.artifacts, markdown),
    renderHistory(task.history),
  )));
}
