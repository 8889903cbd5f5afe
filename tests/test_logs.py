"""Logs that can be searched: `[host] log_format = "json"` (docs/configuration.md, docs/operations.md)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tkr_host import hookimpl
from tkr_host.logs import JsonFormatter
from tkr_host.testing import TEST_JWT_SECRET, bound_listener, wait_ready

BIN = Path(sys.executable).parent
#: The fields docs/operations.md promises on every JSON line, and those it promises where known.
ALWAYS = {"time", "level", "logger", "message"}
CONTEXT = {"request_id", "sid", "principal", "namespace", "event"}


class Broken:
    """A plugin whose before_store fails: the host answers internal.error and logs why."""

    @hookimpl
    async def before_store(self, host, draft, principal):
        raise RuntimeError("the broken plugin failed on purpose")


@pytest.fixture
def tkr_plugins():
    return [Broken()]


def lines_of(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_an_error_ack_and_its_log_line_carry_the_same_request_id_and_context(tkr_client, json_log):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.send_text(session_id, "boom")
    assert ack["error"]["code"] == "internal.error"
    request_id = ack["error"]["request_id"]
    lines = lines_of(json_log)
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert mine, lines
    failed = next(line for line in mine if line["level"] == "error")
    assert set(failed) >= ALWAYS | CONTEXT
    assert (failed["namespace"], failed["event"], failed["principal"]) == ("/chat", "message:send", "user:alice")
    assert failed["sid"] and failed["time"].endswith("Z")
    # The traceback stays inside the line, never in the client's answer.
    assert "the broken plugin failed on purpose" in failed["exception"]
    assert "broken plugin" not in json.dumps(ack)


async def test_errors_refused_on_purpose_also_carry_the_events_request_id(tkr_client, json_log):
    alice = await tkr_client("alice")
    first = await alice.call("session:join", {"session_id": "nope"})
    second = await alice.call("session:join", {"session_id": "nope"})
    # One request id per event: two events, two ids.
    assert first["error"]["code"] == "not_found.session"
    assert first["error"]["request_id"] != second["error"]["request_id"]


def test_a_json_line_is_one_line_even_with_a_traceback():
    record = logging.LogRecord("tkr_host.x", logging.ERROR, __file__, 1, "failed: %s", ("why",), None)
    try:
        raise ValueError("multi\nline")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "failed: why" and parsed["level"] == "error" and "ValueError" in parsed["exception"]


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_serve_prints_every_line_in_the_configured_format(tmp_path, log_format):
    listener = bound_listener()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'bind = ["fd://{listener.fileno()}"]\nworkers = 1\n'
        f'[host]\nlog_format = "{log_format}"\n'
        '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
        f'[plugins.store_peewee]\nurl = "sqlite:///{tmp_path}/tkr.db"\n'
    )
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(BIN / "tkr-host"), "serve", "--config", str(config)], stdout=out,  # noqa: ASYNC220
                                  stderr=subprocess.STDOUT,
                                  pass_fds=[listener.fileno()], start_new_session=True,
                                  env={**os.environ, "TKR_JWT_SECRET": TEST_JWT_SECRET})
    try:
        await wait_ready(url, server, log)
        server.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.wait, 20) == 0, log.read_text()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        listener.close()
    lines = log.read_text().splitlines()
    assert any("Running on" in line for line in lines), lines  # Hypercorn's own line comes through
    assert len([line for line in lines if "Running on" in line]) == 1  # once
    if log_format == "json":
        parsed = [json.loads(line) for line in lines]
        assert all(set(line) >= ALWAYS for line in parsed)
        assert {line["logger"] for line in parsed} >= {"hypercorn.error", "tkr_host.serve"}
    else:
        assert not any(line.startswith("{") for line in lines)
