"""Error codes of docs/protocol.md that had no test (issue 13, item 5): the connect
timeout's log line, and a ``stream:stop`` whose reply cannot be stored.

Every expected value is quoted from docs/protocol.md next to its assertion.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from tkr_host.testing import eventually, frames_until_closed, raw_socket

# --- protocol.connect_timeout -------------------------------------------------------
# protocol.md: "`protocol.connect_timeout` | host | no namespace was connected in time;
# the session is closed (in the log only: there is no namespace to send it to)".


@pytest.mark.tkr_settings({"host": {"connect_timeout_s": 0.5}})
async def test_a_session_closed_for_no_namespace_logs_protocol_connect_timeout(tkr_host, caplog):
    caplog.set_level(logging.INFO)
    async with raw_socket(tkr_host.url) as ws:  # the only Engine.IO session of this host
        await frames_until_closed(ws)
        assert ws.closed
    closing = await eventually(lambda: [r for r in caplog.records if r.name == "tkr_host.server" and "no namespace" in r.getMessage()],
                               what="the log line of the session closed for no namespace")
    assert len(closing) == 1 and "protocol.connect_timeout" in closing[0].getMessage()


# --- stream:stop, store.unavailable -------------------------------------------------
# protocol.md (stream:stop): "If the reply cannot be stored (`store.unavailable`), the
# stream stays open and the agent is not told, so the stop can be sent again."

# A writer gives up on the lock at once, and tkr-recovery (when installed) retries only
# briefly: the refusal comes quickly.
LOCKED_STORE = {"plugins": {"store_peewee": {"sqlite_busy_timeout_s": 0.05},
                            "recovery": {"retry_budget_s": 0.5, "breaker_failure_threshold": 1000}}}


def database_of(tkr_store_url: str) -> Path:
    return Path(tkr_store_url.removeprefix("sqlite:///"))


@pytest.mark.tkr_settings(LOCKED_STORE)
async def test_a_stop_that_cannot_be_stored_is_store_unavailable_and_can_be_sent_again(tkr_client, tkr_store_url):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    asked = (await alice.send_text(session_id, "talk", to="echo"))["message"]["id"]
    message_id = (await echo.ok("stream:start", {"session_id": session_id, "in_reply_to": asked}))["message_id"]
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "half"})

    # Another connection holds SQLite's write lock, as another process would.
    locker = sqlite3.connect(database_of(tkr_store_url), isolation_level=None, timeout=10)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        refused = await alice.call("stream:stop", {"session_id": session_id, "message_id": message_id})
        locker.execute("ROLLBACK")
    finally:
        locker.close()
    assert refused["ok"] is False and refused["error"]["code"] == "store.unavailable", refused

    # "the stream stays open": the agent may still write to it.
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": " more"})
    # "so the stop can be sent again": now the store answers, and it is stored.
    stopped = await alice.ok("stream:stop", {"session_id": session_id, "message_id": message_id})
    assert stopped["message"]["id"] == message_id
    # "the agent is not told" of the refused stop: the stop that worked is the sentinel,
    # and the agent got exactly one stream:stop, that one.
    told = await echo.wait_for("stream:stop")
    assert told["by"] == "alice"
    assert len(echo.received("stream:stop")) == 1
    history = await alice.history(session_id)
    assert [(m["id"], m["status"], m["payload"]["text"]) for m in history][-1] == (message_id, "stopped", "half more")


# --- registry links that did not send their event (issue 13, item 5) -----------------


async def test_task_get_of_a_missing_task_or_an_unknown_session_is_not_found_task(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    tasks = await tkr_client("alice", namespace="/tasks")
    # protocol.md (/tasks): "`task:get {session_id, task_id}` → `{ok, task}`. ... an existing
    # task, a missing one and an unknown session answer the same `not_found.task`, word for word".
    missing = await tasks.call("task:get", {"session_id": session_id, "task_id": "no-such-task"})
    unknown_session = await tasks.call("task:get", {"session_id": "no-such-session", "task_id": "t1"})
    for ack in (missing, unknown_session):
        assert ack["ok"] is False and ack["error"]["code"] == "not_found.task", ack
    assert missing["error"]["message"] == unknown_session["error"]["message"]


async def test_stream_end_of_no_open_stream_of_this_agent_is_not_found_stream(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo", "other"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    other = await tkr_client("other", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "mine"})
    # protocol.md: "`not_found.stream` | `stream:chunk` or `stream:end` names no open stream
    # of this agent".
    for agent, target in ((echo, "no-such-stream"), (other, message_id)):
        ack = await agent.call("stream:end", {"message_id": target})
        assert ack["ok"] is False and ack["error"]["code"] == "not_found.stream", ack
    # The other agent's end did not end it: its owner still can, once.
    assert (await echo.ok("stream:end", {"message_id": message_id}))["message"]["id"] == message_id
    again = await echo.call("stream:end", {"message_id": message_id})
    assert again["ok"] is False and again["error"]["code"] == "not_found.stream", again
