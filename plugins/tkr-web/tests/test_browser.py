"""The web chat in a real Chromium, against a real host and the example echo agent.

Names come from the issue's "Fixed names" (the data-testid attributes) and the
expected behaviour from PROTOCOL.md 1.1 and docs/web.md. Every wait is on a
condition in the page or the host; none is a fixed sleep.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import socketio

from tkr_host.testing import TEST_JWT_SECRET, make_token

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
STATUS = '[data-testid="connection-status"]'
MESSAGE = '[data-testid="message"]'


WebHost = Any  # the web_host fixture's object (conftest.py; not importable under --import-mode=importlib)


def wait_until(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot under tests/screenshots/ (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    path = SCREENSHOTS / f"{name}-{'phone' if width < 700 else 'desktop'}.png"
    page.screenshot(path=str(path))
    return path


def sign_in(page: Any, host: WebHost, sub: str = "alice") -> str:
    token = make_token(sub, ttl=3600, name=sub.title())
    page.goto(f"{host.url}/#token={token}")
    page.wait_for_selector(f'{STATUS}[data-state="online"]')
    return token


def new_session(page: Any, title: str, agents: tuple[str, ...] = ()) -> str:
    if page.viewport_size["width"] < 760:
        page.click("#sidebar-toggle")  # at a phone's width the list slides in
    page.click("#new-session")
    page.fill("#session-title", title)
    if agents:
        for agent in agents:
            page.wait_for_selector(f'#agent-picker input[value="{agent}"]')
            page.check(f'#agent-picker input[value="{agent}"]')
    else:
        page.wait_for_selector("#agent-picker li:not(.picker-loading), #agents-empty:not([hidden])")
        for box in page.query_selector_all('#agent-picker input[type="checkbox"]'):
            box.uncheck()
    page.click('#new-session-form button[type="submit"]')
    page.wait_for_selector('#composer-form:not([hidden])')
    # Attached, not visible: at a phone's width the list slides out once the session opens, and
    # on a loaded machine it may be gone before this looks (then "visible" never comes).
    item = page.wait_for_selector('[data-testid="session-item"][aria-current="true"]', state="attached")
    session_id: str = item.get_attribute("data-session-id")
    return session_id


def send(page: Any, text: str) -> None:
    page.fill('[data-testid="composer"]', text)
    page.press('[data-testid="composer"]', "Enter")


def echo_reply(page: Any) -> Any:
    return page.wait_for_selector(f'{MESSAGE}[data-sender="echo"]:not([data-streaming])[data-seq]:not([data-seq=""])')


LONG = " ".join(f"word{i}" for i in range(24))


def test_the_fragment_signs_in_and_leaves_the_address_bar(web_host, page, viewport):
    token = sign_in(page, web_host)
    assert "#" not in page.url and token not in page.url
    assert page.evaluate("sessionStorage.getItem('tkr.credential')") == token
    assert page.text_content(STATUS).strip().startswith("Online")
    screenshot(page, "signed-in")


def test_a_reply_from_echo_streams_in(web_host, echo_agent, page, viewport):
    token = sign_in(page, web_host)
    session_id = new_session(page, "Echo test", ("echo",))
    send(page, "hello **there** " + " ".join(f"w{i}" for i in range(8)))
    mine = page.wait_for_selector(f'{MESSAGE}[data-sender="alice"][data-state="sent"], {MESSAGE}[data-sender="alice"][data-state="read"], '
                                  f'{MESSAGE}[data-sender="alice"][data-state="delivered"]')
    assert mine.get_attribute("data-seq") == "1"
    streaming = page.wait_for_selector(f'{MESSAGE}[data-streaming="true"]')
    assert streaming.query_selector('[data-testid="stop-stream"]') is not None
    page.wait_for_selector('.agent-activity')  # agent:status "thinking" under the conversation
    screenshot(page, "streaming")
    reply = echo_reply(page)
    # The echo agent's streamed reply is stored as plain text, so it shows as typed.
    assert reply.inner_text().count("echo: hello **there** w0") == 1
    assert mine.query_selector("strong").inner_text() == "there"  # what the page sends is Markdown
    stored = web_host.history(session_id, token)
    assert [m["sender"]["id"] for m in stored] == ["alice", "echo"]
    screenshot(page, "echo-reply")


def test_a_reload_during_a_stream_carries_on_and_completes_once(web_host, echo_agent, page):
    token = sign_in(page, web_host)
    session_id = new_session(page, "Reload", ("echo",))
    send(page, LONG)
    page.wait_for_function("() => (document.querySelector('[data-streaming=\"true\"]')?.innerText ?? '').includes('word3')")
    page.reload()
    page.wait_for_selector(f'{STATUS}[data-state="online"]')
    # The join hands over the stream so far; later chunks extend it.
    page.wait_for_selector(f'{MESSAGE}[data-streaming="true"]')
    reply = echo_reply(page)
    assert reply.inner_text().count(f"echo: {LONG}") == 1
    assert len(page.query_selector_all(f'{MESSAGE}[data-sender="echo"]')) == 1
    replies = [m for m in web_host.history(session_id, token) if m["sender"]["id"] == "echo"]
    assert len(replies) == 1 and replies[0]["payload"]["text"] == f"echo: {LONG}" and replies[0]["status"] == "complete"
    screenshot(page, "reloaded-stream")


def test_stop_ends_the_reply_as_stopped(web_host, echo_agent, page):
    token = sign_in(page, web_host)
    session_id = new_session(page, "Stop", ("echo",))
    send(page, LONG)
    # A locator, not an element handle: the button may be redrawn as chunks arrive.
    page.locator('[data-testid="stop-stream"]').click()
    stopped = page.wait_for_selector(f'{MESSAGE}[data-sender="echo"][data-status="stopped"]')
    assert stopped.get_attribute("data-streaming") is None
    assert "Stopped" in stopped.inner_text()
    replies = [m for m in web_host.history(session_id, token) if m["sender"]["id"] == "echo"]
    assert len(replies) == 1 and replies[0]["status"] == "stopped"
    assert len(replies[0]["payload"]["text"]) < len(f"echo: {LONG}")
    screenshot(page, "stopped")


def test_messages_typed_while_the_host_is_down_are_queued_kept_over_a_reload_and_stored_once_in_order(web_host, page):
    token = sign_in(page, web_host)
    session_id = new_session(page, "Offline")
    # The page must open with the host down: wait for its worker to hold it.
    # The worker fills its cache before it activates and claims the page.
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    web_host.kill()
    page.wait_for_selector(f'{STATUS}[data-state="reconnecting"]')
    wait_until(lambda: re.search(r"Reconnecting (in \d+ s )?\(attempt \d+\)", page.text_content(STATUS)), what="the reconnecting text")
    for text in ("first", "second", "third"):
        send(page, text)
    page.wait_for_selector('[data-testid="queued-count"][data-count="3"]')
    assert page.text_content('[data-testid="queued-count"]').strip() == "3 queued"
    assert page.eval_on_selector_all(f'{MESSAGE}[data-state="queued"]', "els => els.map(e => e.dataset.seq)") == ["", "", ""]
    screenshot(page, "queued")
    page.reload()
    page.wait_for_selector('[data-testid="queued-count"][data-count="3"]')
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"message\"][data-state=\"queued\"]').length === 3")
    assert page.eval_on_selector_all(f'{MESSAGE}[data-state="queued"] .message-body', "els => els.map(e => e.innerText.trim())") == ["first", "second", "third"]
    screenshot(page, "queued-after-reload")
    web_host.start()
    page.wait_for_selector(f'{STATUS}[data-state="online"]', timeout=30_000)
    page.wait_for_selector('[data-testid="queued-count"][data-count="0"]', state="attached")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"message\"][data-state=\"queued\"]').length === 0")
    stored = web_host.history(session_id, token)
    assert [m["payload"]["text"] for m in stored] == ["first", "second", "third"]
    assert len({m["client_id"] for m in stored}) == 3
    assert page.eval_on_selector_all(MESSAGE, "els => els.map(e => e.dataset.seq)") == ["1", "2", "3"]
    screenshot(page, "queue-drained")


def invite(host: WebHost, session_id: str, member: str) -> None:
    """alice invites ``member``: the page has no invite control, so a Socket.IO client does it."""
    alice = socketio.Client(reconnection=False)
    alice.connect(host.url, namespaces=["/chat"], auth={"token": make_token("alice", secret=TEST_JWT_SECRET)}, transports=["websocket"])
    try:
        ack = alice.call("session:invite", {"session_id": session_id, "member": {"id": member, "kind": "user"}}, namespace="/chat")
        assert ack["ok"], ack
    finally:
        alice.disconnect()


def test_a_message_seen_by_another_member_shows_as_read(web_host, page, browser):
    sign_in(page, web_host)
    session_id = new_session(page, "Receipts")
    invite(web_host, session_id, "bob")
    bob = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    try:
        bob.goto(f"{web_host.url}/?session={session_id}#token={make_token('bob')}")
        bob.wait_for_selector(f'{STATUS}[data-state="online"]')
        bob.wait_for_selector('#composer-form:not([hidden])')
        send(page, "did you see this?")
        bob.wait_for_selector(f'{MESSAGE}[data-sender="alice"] >> text=did you see this?')
        page.wait_for_selector(f'{MESSAGE}[data-sender="alice"][data-state="read"]')
        assert "Read" in page.inner_text(f'{MESSAGE}[data-sender="alice"] .message-footer')
        screenshot(page, "read")
    finally:
        bob.context.close()


TASK_PANEL_ON = "[plugins.flags.flags]\ntask_panel = true\n"
TASK_PANEL_OFF = "[plugins.flags.flags]\ntask_panel = false\n"


def send_task(web_host: WebHost, session_id: str) -> None:
    other = socketio.Client(reconnection=False)
    other.connect(web_host.url, namespaces=["/chat"], auth={"token": make_token("alice")}, transports=["websocket"])
    try:
        for index, (action, extra) in enumerate([("create", {"title": "Write the release notes"}), ("update", {"state": "working"})]):
            ack = other.call("message:send", {"session_id": session_id, "client_id": f"flag-{index}", "type": "task",
                                              "payload": {"task_id": "notes", "action": action, **extra}}, namespace="/chat")
            assert ack["ok"], ack
    finally:
        other.disconnect()


@pytest.mark.web_config(TASK_PANEL_ON)
def test_with_the_task_panel_flag_on_the_tasks_button_opens_the_side_panel(web_host, page):
    """docs/web.md: the task side panel shows only when GET /api/v1/flags says task_panel is on."""
    sign_in(page, web_host)
    session_id = new_session(page, "Flag on")
    send_task(web_host, session_id)
    page.wait_for_selector('html[data-task-panel="on"]')
    page.wait_for_selector("#toggle-tasks:not([hidden])")
    page.click("#toggle-tasks")
    page.wait_for_selector('#tasks-panel:not([hidden]) .task-item[data-task-id="notes"] >> text=Working')


@pytest.mark.web_config(TASK_PANEL_OFF)
def test_with_the_task_panel_flag_off_there_is_no_task_panel(web_host, page):
    sign_in(page, web_host)
    session_id = new_session(page, "Flag off")
    send_task(web_host, session_id)
    page.wait_for_selector('html[data-task-panel="off"]')  # the page has read the flags
    page.wait_for_function("() => document.querySelectorAll('.task-card').length === 2")  # the task did arrive
    assert page.is_hidden("#toggle-tasks") and page.is_hidden("#tasks-panel")


@pytest.mark.web_config(TASK_PANEL_ON)
def test_context_shows_as_a_chip_and_tasks_as_cards_followed_in_the_side_panel(web_host, page, viewport):
    sign_in(page, web_host)
    session_id = new_session(page, "Release")
    other = socketio.Client(reconnection=False)
    other.connect(web_host.url, namespaces=["/chat"], auth={"token": make_token("alice")}, transports=["websocket"])
    sends = [
        ("context", {"context_id": "brief", "data": {"goal": "Ship 1.2", "due": "Friday"}}),
        ("task", {"task_id": "notes", "action": "create", "title": "Write the release notes", "description": "Everything since 1.1"}),
        ("task", {"task_id": "notes", "action": "update", "state": "working", "status_text": "Drafting"}),
        ("task", {"task_id": "notes", "action": "update", "artifact": {"artifact_id": "draft", "name": "notes.md",
                                                                        "parts": [{"kind": "text", "text": "**1.2**: faster joins"}]}}),
    ]
    try:
        for index, (kind, payload) in enumerate(sends):
            ack = other.call("message:send", {"session_id": session_id, "client_id": f"t-{index}", "type": kind, "payload": payload}, namespace="/chat")
            assert ack["ok"], ack
    finally:
        other.disconnect()
    chip = page.wait_for_selector(".context-chip")
    assert "Context · brief" in chip.inner_text()
    chip.click()  # it opens to show the data
    page.wait_for_selector(".context-chip[open] >> text=Ship 1.2")
    page.wait_for_function("() => document.querySelectorAll('.task-card').length === 3")
    page.click("#toggle-tasks")
    # The panel is redrawn on every change: read it once it shows the last one.
    page.wait_for_function("""() => {
        const item = document.querySelector('#tasks-panel .task-item[data-task-id="notes"]');
        return item && item.querySelector('.task-state')?.innerText === 'Working' && item.innerText.includes('notes.md')
            && item.innerText.includes('Drafting') && item.querySelectorAll('.task-history li').length >= 2;
    }""")
    screenshot(page, "tasks")


XSS = [
    '<img src=x onerror="window.__xss = 1">',
    "[click me](javascript:window.__xss=2)",
    "<script>window.__xss = 3</script>",
    '<a href="javascript:window.__xss=4" onclick="window.__xss=5">link</a>',
    "![pic](javascript:window.__xss=6)",
]


def test_an_xss_payload_from_another_member_stays_inert(web_host, page):
    sign_in(page, web_host)
    session_id = new_session(page, "XSS")
    invite(web_host, session_id, "mallory")
    mallory = socketio.Client(reconnection=False)
    mallory.connect(web_host.url, namespaces=["/chat"], auth={"token": make_token("mallory")}, transports=["websocket"])
    try:
        for index, text in enumerate(XSS):
            ack = mallory.call("message:send", {"session_id": session_id, "client_id": f"x-{index}", "type": "text", "payload": {"text": text}},
                               namespace="/chat")
            assert ack["ok"], ack
    finally:
        mallory.disconnect()
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=\"message\"][data-sender=\"mallory\"]').length === {len(XSS)}")
    for link in page.query_selector_all(f'{MESSAGE}[data-sender="mallory"] a'):
        link.click(modifiers=[])
    # A sentinel round trip after the clicks: anything they could run has run.
    assert page.evaluate("new Promise((resolve) => setTimeout(() => resolve(window.__xss ?? null), 0))") is None
    dangerous = page.evaluate("""() => [...document.querySelectorAll('#message-list *')].flatMap((el) =>
        [...el.attributes].filter((a) => /^on/i.test(a.name) || /^\\s*javascript:/i.test(a.value)).map((a) => el.tagName + ' ' + a.name))""")
    assert dangerous == []
    assert page.query_selector("#message-list script") is None
    screenshot(page, "xss-inert")


def test_a_remote_image_in_a_message_shows_as_a_link_and_does_not_load(web_host, page):
    sign_in(page, web_host)
    session_id = new_session(page, "Tracking")
    invite(web_host, session_id, "mallory")
    remote = f"https://127.0.0.1:{web_host.port + 1}/p.png?u=alice"  # another origin than the page's
    mallory = socketio.Client(reconnection=False)
    mallory.connect(web_host.url, namespaces=["/chat"], auth={"token": make_token("mallory")}, transports=["websocket"])
    try:
        for index, text in enumerate([f"![pixel]({remote})", "![](data:image/png;base64,iVBORw0KGgo=)", "sentinel"]):
            ack = mallory.call("message:send", {"session_id": session_id, "client_id": f"i-{index}", "type": "text",
                                                  "payload": {"text": text, "format": "markdown"}},
                               namespace="/chat")
            assert ack["ok"], ack
    finally:
        mallory.disconnect()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"message\"][data-sender=\"mallory\"]').length === 3")
    sources = page.eval_on_selector_all("#message-list img", "els => els.map((e) => e.getAttribute('src'))")
    assert sources == []
    link = page.wait_for_selector(f'{MESSAGE}[data-sender="mallory"] a.remote-image')
    assert link.get_attribute("href") == remote and "pixel" in link.inner_text()
    screenshot(page, "remote-image")


@pytest.mark.web_config("[plugins.ratelimit]\nmessages_per_second = 0.25\nmessage_burst = 1\n")
def test_a_rate_limit_error_shows_its_hint_and_a_countdown(web_host, page):
    token = sign_in(page, web_host)
    session_id = new_session(page, "Limits")
    send(page, "one")
    send(page, "two")
    notice = page.wait_for_selector('[data-testid="error"][data-code="rate_limit.exceeded"]')
    text = notice.inner_text()
    assert re.search(r"Retrying in \d+ s", text), text
    assert "{" not in text and "Traceback" not in text
    hint = notice.query_selector(".notice-hint").inner_text()
    assert hint.strip()
    screenshot(page, "rate-limited")
    # The queue waits for retry_after, then sends; both are stored once, in order.
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"message\"][data-state=\"queued\"]').length === 0", timeout=30_000)
    assert [m["payload"]["text"] for m in web_host.history(session_id, token)] == ["one", "two"]


def test_an_expired_credential_signs_out_with_a_reason(web_host, page):
    page.goto(f"{web_host.url}/#token={make_token('alice', ttl=-120)}")
    page.wait_for_selector(f'{STATUS}[data-state="signed-out"]')
    reason = page.wait_for_selector("#signin-reason:not([hidden])").inner_text()
    assert "expired" in reason.lower()
    assert page.is_visible("#signin-form")
    screenshot(page, "signed-out")


def test_the_sign_in_form_takes_a_token(web_host, page, viewport):
    page.goto(web_host.url)
    page.wait_for_selector("#signin-form")
    screenshot(page, "sign-in-form")
    page.fill("#credential", make_token("alice"))
    page.click('#signin-form button[type="submit"]')
    page.wait_for_selector(f'{STATUS}[data-state="online"]')


def test_poll_votes_are_clickable_through_the_renderer_hook(web_host, page):
    token = sign_in(page, web_host)
    session_id = new_session(page, "Lunch")
    page.evaluate("""(sid) => window.tkrClient.send(sid, {type: 'poll', payload: {action: 'open', poll_id: 'lunch',
        question: 'Where do we eat?', options: ['pizza', 'sushi', 'tacos']}})""", session_id)
    page.wait_for_selector('.poll-option >> text=sushi').click()
    page.wait_for_selector('.poll-option[data-voted="true"] >> text=sushi')
    page.wait_for_function("() => document.querySelector('.poll-option[data-index=\"1\"] .poll-count')?.innerText.trim() === '1'")
    votes = [m for m in web_host.history(session_id, token) if m["type"] == "poll" and m["payload"]["action"] == "vote"]
    assert [v["payload"]["option"] for v in votes] == [1]
    screenshot(page, "poll")


def test_a_type_whose_renderer_cannot_load_shows_as_a_generic_card(web_host, browser):
    # The poll renderer's module is refused, as a broken plugin's would be. No
    # service worker here: its cache would serve the module past the route.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, service_workers="block")
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.route("**/static/renderers/poll/**", lambda route: route.abort())
    sign_in(page, web_host)
    session_id = new_session(page, "Generic")
    page.evaluate("""(sid) => window.tkrClient.send(sid, {type: 'poll', payload: {action: 'open', poll_id: 'p',
        question: 'Tea or coffee?', options: ['tea', 'coffee']}})""", session_id)
    card = page.wait_for_selector(f'{MESSAGE}[data-type="poll"] .generic-card')
    text = card.inner_text()
    assert "poll" in text and "Tea or coffee?" in text
    screenshot(page, "generic-card")
    context.close()


def test_a_message_the_host_refuses_shows_as_failed_with_the_reason_and_can_be_discarded(web_host, page):
    token = sign_in(page, web_host)
    session_id = new_session(page, "Refused")
    send(page, "x" * 40_000)  # over the 32768 characters of a text payload
    failed = page.wait_for_selector(f'{MESSAGE}[data-state="failed"]')
    assert failed.get_attribute("data-seq") == ""
    page.wait_for_selector('[data-testid="error"][data-code^="validation."]')
    screenshot(page, "failed")
    page.click(f'{MESSAGE}[data-state="failed"] >> text=Discard')
    page.wait_for_selector(f'{MESSAGE}[data-state="failed"]', state="detached")
    send(page, "short enough")
    page.wait_for_selector(f'{MESSAGE}[data-state="sent"]')
    assert [m["payload"]["text"] for m in web_host.history(session_id, token)] == ["short enough"]


def test_a_message_whose_outbox_write_fails_stays_in_the_composer(web_host, page):
    sign_in(page, web_host)
    new_session(page, "Full disk")
    # From now on every write to IndexedDB fails, as with a full disk.
    page.evaluate("""() => { IDBObjectStore.prototype.put = function () {
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError'); }; }""")
    send(page, "do not lose me")
    page.wait_for_selector('[data-testid="error"][data-code="internal.outbox"]')
    assert page.input_value('[data-testid="composer"]') == "do not lose me"
    assert page.query_selector_all(MESSAGE) == []
    assert page.page_errors == []
    screenshot(page, "outbox-write-failed")


def test_without_a_working_indexeddb_the_page_keeps_its_queue_in_memory(web_host, page):
    # IndexedDB exists but cannot be opened (some private windows, a blocked profile).
    page.add_init_script("""IDBFactory.prototype.open = function () {
        throw new DOMException('The operation is not allowed.', 'InvalidStateError'); };""")
    token = sign_in(page, web_host)
    session_id = new_session(page, "No IndexedDB")
    send(page, "still sent")
    page.wait_for_selector(f'{MESSAGE}[data-state="sent"]')
    assert [m["payload"]["text"] for m in web_host.history(session_id, token)] == ["still sent"]
    assert page.page_errors == []


def test_sign_out_forgets_the_outbox_and_the_conversation_list(web_host, page):
    sign_in(page, web_host)
    new_session(page, "Private")
    send(page, "x" * 40_000)  # refused for good: it stays in the outbox, marked failed
    page.wait_for_selector(f'{MESSAGE}[data-state="failed"]')
    assert page.evaluate("Object.keys(sessionStorage).filter((key) => key.startsWith('tkr.sessions'))") != []
    page.click("#sign-out")
    page.wait_for_selector("#signin-form")
    assert page.evaluate("Object.keys(sessionStorage).filter((key) => key.startsWith('tkr.'))") == []
    outbox = page.evaluate("""() => new Promise((resolve, reject) => {
        const request = indexedDB.open('tkr-client', 1);
        request.onsuccess = () => {
            const read = request.result.transaction('outbox').objectStore('outbox').getAll();
            read.onsuccess = () => resolve(read.result.map((entry) => entry.payload?.text?.length ?? 0));
            read.onerror = () => reject(read.error);
        };
        request.onerror = () => reject(request.error);
    })""")
    assert outbox == []


def test_a_message_taller_than_the_screen_counts_as_read_once_it_fills_the_view(web_host, page, browser):
    sign_in(page, web_host)
    session_id = new_session(page, "Tall")
    invite(web_host, session_id, "bob")
    bob = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    try:
        bob.goto(f"{web_host.url}/?session={session_id}#token={make_token('bob')}")
        bob.wait_for_selector(f'{STATUS}[data-state="online"]')
        bob.wait_for_selector('#composer-form:not([hidden])')
        tall = "\n\n".join(f"Paragraph {i} of a long report." for i in range(80))  # several screens high
        page.evaluate("([sid, text]) => window.tkrClient.send(sid, {type: 'text', payload: {text, format: 'markdown'}})", [session_id, tall])
        shown = bob.wait_for_selector(f'{MESSAGE}[data-sender="alice"] >> text=Paragraph 79 of a long report.')
        assert bob.evaluate("(el) => el.closest('[data-testid=\"message\"]').offsetHeight > window.innerHeight", shown)
        page.wait_for_selector(f'{MESSAGE}[data-sender="alice"][data-state="read"]')
        screenshot(page, "tall-read")
    finally:
        bob.context.close()


ANNOUNCED = """(el) => { const copy = el.cloneNode(true);
    copy.querySelectorAll('[aria-hidden="true"], [hidden]').forEach((node) => node.remove());
    return copy.textContent.replace(/\\s+/g, ' ').trim(); }"""


def test_the_indicator_announces_state_changes_not_the_countdown(web_host, page):
    sign_in(page, web_host)
    # Every text the live region exposes to assistive technology, as it changes.
    page.evaluate(f"""() => {{ const el = document.querySelector('{STATUS}'); const announced = ({ANNOUNCED});
        window.__announced = [announced(el)]; window.__shown = [el.textContent.trim()];
        new MutationObserver(() => {{ window.__announced.push(announced(el)); window.__shown.push(el.textContent.trim()); }})
            .observe(el, {{subtree: true, childList: true, characterData: true, attributes: true}}); }}""")
    web_host.kill()
    # Until the visible countdown has ticked: three different "in N s" texts were shown.
    page.wait_for_function("() => new Set(window.__shown.filter((t) => /in \\d+ s/.test(t))).size >= 3", timeout=60_000)
    shown = page.evaluate("window.__shown")
    announced = page.evaluate("window.__announced")
    assert any(re.search(r"Reconnecting in \d+ s \(attempt \d+\)", text) for text in shown), shown
    assert not any(re.search(r"\d+ s", text) for text in announced), announced
    assert any(text.startswith("Reconnecting") for text in announced), announced


def test_a_streaming_reply_grows_in_place_and_keeps_the_focus_on_stop(web_host, echo_agent, page):
    sign_in(page, web_host)
    new_session(page, "In place", ("echo",))
    send(page, LONG)
    page.wait_for_selector(f'{MESSAGE}[data-streaming="true"]')
    page.wait_for_selector("#agent-status .agent-activity")
    page.evaluate("""() => { const item = document.querySelector('[data-streaming="true"]'); item.__mark = 'same';
        document.querySelector('#agent-status .agent-activity').__mark = 'same';
        item.querySelector('[data-testid="stop-stream"]').focus(); }""")
    start = page.evaluate("document.querySelector('[data-streaming=\"true\"]').innerText.length")
    page.wait_for_function(f"() => (document.querySelector('[data-streaming=\"true\"]')?.innerText.length ?? 0) > {start} + 20")
    state = page.evaluate("""() => { const item = document.querySelector('[data-streaming="true"]');
        return { same: item.__mark === 'same', busy: item.getAttribute('aria-busy'),
                 focused: document.activeElement?.dataset.testid === 'stop-stream' && item.contains(document.activeElement),
                 status: document.querySelector('#agent-status .agent-activity')?.__mark === 'same' }; }""")
    assert state == {"same": True, "busy": "true", "focused": True, "status": True}
    reply = echo_reply(page)
    assert reply.get_attribute("aria-busy") is None
