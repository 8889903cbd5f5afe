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
