// The web chat: signs in, connects the browser client, and wires the views.
// Every module URL comes from data-* attributes of <html> (hashed, served by
// tkr-web), so the page needs no inline script.

import { $, avatar, h } from "./dom.js";
import { makeRenderer } from "./markdown.js";
import { MessageList } from "./messages.js";
import { SessionList, drawPresence, drawTasks, forgetDrawnStatus, forgetSessionCache } from "./panels.js";
import { RendererRegistry } from "./renderers.js";
import { Notices, StatusView } from "./status.js";

const CREDENTIAL_KEY = "tkr.credential";
const SIGNED_OUT_KEY = "tkr.signed-out-reason";
const data = document.documentElement.dataset;
const notices = new Notices($("#notices"));

/** A `#token=` fragment signs in, and leaves the address bar at once. */
function takeCredential() {
  const match = /^#token=(.+)$/.exec(location.hash);
  if (match) {
    history.replaceState(null, "", location.pathname + location.search);
    const credential = decodeURIComponent(match[1]).trim();
    if (credential) sessionStorage.setItem(CREDENTIAL_KEY, credential);
  }
  return sessionStorage.getItem(CREDENTIAL_KEY);
}

function showSignIn(reason) {
  $("#shell").dataset.view = "signed-out";
  $("#signin").hidden = false;
  const box = $("#signin-reason");
  box.hidden = !reason;
  box.textContent = reason ?? "";
  $("#credential").focus();
}

function setSessionInUrl(sessionId) {
  const url = new URL(location.href);
  if (sessionId) url.searchParams.set("session", sessionId);
  else url.searchParams.delete("session");
  history.replaceState(null, "", url.pathname + url.search);
}

/**
 * The outbox: IndexedDB, or memory where IndexedDB is missing or cannot be
 * opened (private windows, a blocked profile). IndexedDB fails in open(), not
 * in the constructor, so the database is opened here once to find out.
 */
async function openQueue(IndexedDBQueue, MemoryQueue) {
  try {
    const queue = new IndexedDBQueue();
    await queue.all("");
    return queue;
  } catch (error) {
    console.warn("IndexedDB is not usable; queued messages last as long as the page:", error);
    return new MemoryQueue();
  }
}

async function boot() {
  const missing = JSON.parse(data.missing || "[]");
  if (missing.length) {
    notices.show({ code: "internal.assets", severity: "critical", recoverable: false, message: "The page is not fully installed on this host.", hint: missing.join(" ") });
    return;
  }
  $("#signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const credential = $("#credential").value.trim();
    if (!credential) return;
    sessionStorage.setItem(CREDENTIAL_KEY, credential);
    sessionStorage.removeItem(SIGNED_OUT_KEY);
    location.reload();
  });
  const credential = takeCredential();
  if (!credential) return showSignIn(sessionStorage.getItem(SIGNED_OUT_KEY));
  const [{ Manager }, clientModule, { Marked }, { default: DOMPurify }] = await Promise.all([
    import(data.socketio), import(data.client), import(data.marked), import(data.dompurify),
  ]);
  const markdown = makeRenderer({ Marked }, DOMPurify, { imgSrc: JSON.parse(data.imgSrc || "[]") });
  const { TkrClient, IndexedDBQueue, MemoryQueue, queueOwnerFor } = clientModule;
  const queue = await openQueue(IndexedDBQueue, MemoryQueue);
  // Retries are spread up to 10 s apart: long enough not to hammer a host
  // that is coming back, short enough that a person waiting is not kept long.
  // The owner is known before anything reads the outbox or the cached list: both are per user.
  const queueOwner = await queueOwnerFor(location.origin, credential);
  const client = new TkrClient({ url: location.origin, token: credential, Manager, queue, queueOwner, backoff: { baseMs: 500, capMs: 10_000 } });
  window.tkrClient = client; // for the console and for browser tests
  const chat = startChat(client, markdown);
  await client.start();
  chat.openFromUrl();
  // The worker keeps the page and its modules, so a reload while the host is down still opens.
  navigator.serviceWorker?.register("/sw.js").catch((error) => console.warn("no offline page:", error));
}

function startChat(client, markdown) {
  const shell = $("#shell");
  shell.dataset.view = "chat";
  $("#account").hidden = false;
  $("#me-name").textContent = client.me?.name ?? "Signed in";
  $("#me-avatar").replaceWith(avatar(client.me?.id ?? "?", client.me?.kind));
  new StatusView(client);
  const localIds = new Set();
  const renderers = new RendererRegistry(JSON.parse(data.renderers || "{}"), { client, markdown });
  const messages = new MessageList({ list: $("#message-list"), client, markdown, renderers, localIds });
  const scroller = $("#messages");
  let activeId = null;
  let onlineAgents = new Set();
  let listedOnce = false;

  const sessions = new SessionList({ client, notices, onOpen: (id) => void open(id) });

  async function open(sessionId) {
    activeId = sessionId;
    setSessionInUrl(sessionId);
    sessions.setActive(sessionId);
    shell.classList.remove("sidebar-open");
    $("#sidebar-toggle").setAttribute("aria-expanded", "false");
    messages.open(sessionId);
    $("#welcome").hidden = true;
    for (const id of ["#chat-header", "#messages", "#composer-form"]) $(id).hidden = false;
    $("#composer").focus();
    const agents = await client.agents();
    if (agents.ok) onlineAgents = new Set((agents.agents ?? []).filter((a) => a.online !== false).map((a) => a.id));
    const ack = await client.join(sessionId);
    redraw(true);
    if (!ack.ok && ack.error.code !== "protocol.offline" && activeId === sessionId) {
      notices.show(ack.error);
      if (ack.error.code === "not_found.session" || ack.error.code === "permission.not_member") close();
      return;
    }
    redraw(true);
  }

  function openFromUrl() {
    const wanted = new URL(location.href).searchParams.get("session");
    if (wanted && !activeId) void open(wanted);
  }

  function close() {
    activeId = null;
    setSessionInUrl(null);
    sessions.setActive(null);
    messages.open(null);
    $("#welcome").hidden = false;
    for (const id of ["#chat-header", "#messages", "#composer-form", "#tasks-panel"]) $(id).hidden = true;
    $("#agent-status").replaceChildren();
    forgetDrawnStatus();
  }

  function redraw(scroll = false) {
    const state = activeId && client.session(activeId);
    if (!state) return;
    const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
    const title = state.session.title || sessions.titleOf(activeId) || "Conversation";
    $("#chat-title").textContent = title;
    document.title = `${title} · ${data.title}`;
    const added = messages.update();
    $("#load-older").hidden = !state.hasOlder;
    drawPresence(state, client, onlineAgents);
    drawTasks(state, markdown);
    if (scroll || (added && nearBottom) || (nearBottom && state.streams.size)) scroller.scrollTop = scroller.scrollHeight;
  }

  let pending = false;
  client.on("session", ({ sessionId }) => {
    const state = client.session(sessionId);
    if (state) sessions.upsert(state.session);
    if (sessionId !== activeId || pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      redraw();
    });
  });
  client.on("queue", () => activeId && redraw());
  client.on("notice", ({ error }) => {
    if (error?.code === "agent.stream_aborted") return; // shown on the message itself, as "Incomplete"
    notices.show(error);
  });
  client.on("state", ({ state, error }) => {
    if (state === "online" && !listedOnce) {
      listedOnce = true;
      void sessions.refresh().then(openFromUrl);
    } else if (state === "online") {
      void sessions.refresh();
    }
    if (state === "signed-out") {
      const reason = error?.code === "auth.expired" ? `Your sign-in has expired. ${error.hint ?? "Sign in again."}` : `${error?.message ?? "The host refused your credential."} ${error?.hint ?? ""}`.trim();
      sessionStorage.removeItem(CREDENTIAL_KEY);
      sessionStorage.setItem(SIGNED_OUT_KEY, reason);
      client.stop();
      showSignIn(reason);
    }
  });

  // Composer: Enter sends, Shift+Enter adds a line; the box grows with its text.
  const composer = $("#composer");
  // The text leaves the box only once the outbox holds it: if the write
  // fails (a full disk), the user still has what they typed.
  const inFlight = new Set();
  const send = async () => {
    const text = composer.value.trim();
    if (!text || !activeId || inFlight.has(text)) return;
    inFlight.add(text);
    const state = client.session(activeId);
    const agents = state?.agentMembers() ?? [];
    let entry;
    try {
      entry = await client.send(activeId, { type: "text", payload: { text, format: "markdown" }, ...(agents.length === 1 ? { to: agents[0].id } : {}) });
    } catch (error) {
      console.warn("the outbox refused the message:", error);
      notices.show({
        code: "internal.outbox", severity: "error", recoverable: true,
        message: "The message could not be saved for sending.",
        hint: "It is still in the message box: try again, or copy it somewhere safe.",
      });
      return;
    } finally {
      inFlight.delete(text);
    }
    localIds.add(entry.client_id);
    // The user may have typed the next message meanwhile: leave that alone.
    if (composer.value.trim() === text) {
      composer.value = "";
      composer.style.height = "";
    }
    redraw(true);
  };
  composer.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      void send();
    }
  });
  composer.addEventListener("input", () => {
    composer.style.height = "auto";
    composer.style.height = `${Math.min(composer.scrollHeight, 200)}px`;
  });
  $("#composer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void send();
  });
  for (const entry of client.queued) localIds.add(entry.client_id);
  client.on("queue", () => client.queued.forEach((entry) => localIds.add(entry.client_id)));

  $("#load-older").addEventListener("click", async () => {
    const height = scroller.scrollHeight;
    await client.loadOlder(activeId);
    scroller.scrollTop += scroller.scrollHeight - height;
  });
  $("#leave-session").addEventListener("click", async () => {
    if (!activeId) return;
    await client.leave(activeId);
    close();
  });
  const toggleTasks = (show) => {
    $("#tasks-panel").hidden = !(show && taskPanelOn);
    $("#toggle-tasks").setAttribute("aria-expanded", String(show && taskPanelOn));
  };
  // The task side panel is behind the `task_panel` flag (tkr-flags, GET /api/v1/flags,
  // which gives this principal's own flags). Off until the host says it is on, and
  // off when the host has no flags route (404): a flag nobody knows is off.
  let taskPanelOn = false;
  const readFlags = async () => {
    const ack = await client.http("/api/v1/flags");
    if (!ack.ok && ack.error?.code === "protocol.offline") return; // keep what was known; read again once online
    taskPanelOn = ack.ok && ack.flags?.task_panel === true;
    $("#toggle-tasks").hidden = !taskPanelOn;
    document.documentElement.dataset.taskPanel = taskPanelOn ? "on" : "off";
    if (!taskPanelOn) toggleTasks(false);
  };
  $("#toggle-tasks").hidden = true;
  client.on("state", ({ state }) => state === "online" && void readFlags());
  $("#toggle-tasks").addEventListener("click", () => toggleTasks($("#tasks-panel").hidden));
  $("#close-tasks").addEventListener("click", () => toggleTasks(false));
  $("#sidebar-toggle").addEventListener("click", () => {
    const open_ = shell.classList.toggle("sidebar-open");
    $("#sidebar-toggle").setAttribute("aria-expanded", String(open_));
  });
  $("#sign-out").addEventListener("click", async () => {
    // Nothing of this user stays behind for whoever uses the browser next:
    // the credential, the cached conversation list, and the unsent text.
    sessionStorage.removeItem(CREDENTIAL_KEY);
    client.stop();
    try {
      await client.clearOutbox();
    } catch (error) {
      console.warn("the outbox could not be cleared:", error);
    }
    // Last: nothing may write the list again between here and the reload.
    forgetSessionCache();
    location.replace(location.pathname);
  });
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && redraw());
  return { openFromUrl };
}

boot().catch((error) => {
  console.error(error);
  notices.show({ code: "internal.page", severity: "critical", recoverable: false, message: "The page could not start.", hint: "Reload the page; if it happens again, tell whoever runs this host." });
});


