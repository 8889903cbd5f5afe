"""The context of the log lines written while the dispatcher handles a connect or an event.

docs/operations.md ("Logs"): `request_id`, `sid`, `principal`, `namespace` and `event`
are on every line written while an event or a connect was handled, whichever module
wrote it; a connect's `event` is `connect`. The error line of an unexpected failure
reads as the page's example, `/chat message:send failed [request_id=…]`.
docs/protocol.md (Error): an unexpected failure is `internal.error`, and the server log
holds the traceback under the same request id; a connect is refused with it too.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from tkr_host import Principal, hookimpl
from tkr_host.testing import ConnectRefused

log = logging.getLogger("tests.dispatch_logs")


class Talkative:
    """A plugin that logs a line from its on_connect (and fails the connect of ``broken``), and fails every message."""

    @hookimpl
    def on_connect(self, host: Any, principal: Principal, sid: str, namespace: str, peer: str) -> None:
        if principal.id == "broken":
            raise RuntimeError("on_connect failed on purpose")
        log.warning("on_connect saw %s", principal.id)

    @hookimpl
    async def before_store(self, host: Any, draft: Any, principal: Principal) -> None:
        raise RuntimeError("failed on purpose")


@pytest.fixture
def tkr_plugins() -> list[Any]:
    return [Talkative()]


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_line_written_during_a_connect_carries_the_connect_context(tkr_client: Any, json_log: io.StringIO) -> None:
    alice = await tkr_client("alice")
    [line] = [line for line in lines_of(json_log) if line["message"] == "on_connect saw alice"]
    assert (line["event"], line["namespace"], line["sid"]) == ("connect", "/chat", alice.sio.get_sid("/chat"))
    assert line["request_id"]


async def test_an_unexpected_failure_is_logged_as_the_example_says(tkr_client: Any, json_log: io.StringIO) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.send_text(session_id, "boom")
    request_id = ack["error"]["request_id"]
    assert ack["error"]["code"] == "internal.error"
    failed = [line for line in lines_of(json_log) if line["level"] == "error" and line.get("request_id") == request_id]
    assert [line["message"] for line in failed] == [f"/chat message:send failed [request_id={request_id}]"]
    assert "failed on purpose" in failed[0]["exception"]


async def test_a_connect_that_fails_unexpectedly_is_refused_as_internal_with_its_traceback_logged(
        tkr_connect: Any, tkr_token: Any, json_log: io.StringIO) -> None:
    with pytest.raises(ConnectRefused) as refused:
        await tkr_connect(tkr_token("broken"))
    error = refused.value.error
    assert (error["code"], error["recoverable"]) == ("internal.error", True)
    assert "on purpose" not in str(error)
    logged = [line for line in lines_of(json_log) if line.get("request_id") == error["request_id"] and "exception" in line]
    assert len(logged) == 1 and "on_connect failed on purpose" in logged[0]["exception"]
