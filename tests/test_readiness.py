"""``/readyz`` runs each plugin's ``readiness_checks`` (docs/plugins.md, docs/protocol.md)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from tkr_host import hookimpl


class Checked:
    """A plugin whose checks the test turns on and off."""

    def __init__(self) -> None:
        self.queue_ok = True
        self.hang = False

    @hookimpl
    def readiness_checks(self, host):
        async def queue() -> bool:
            return self.queue_ok

        async def broker() -> bool:
            if self.hang:
                await asyncio.Event().wait()
            raise ConnectionError("broker refused the connection at 10.0.0.9")

        return {"queue": queue, "broker": broker}


checked = Checked()


@pytest.fixture
def tkr_plugins():
    checked.queue_ok, checked.hang = True, False
    return [checked]


async def readyz(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as response:
        return response.status, await response.json()


async def test_each_plugin_check_is_named_and_a_failing_one_makes_the_node_unready(tkr_host, caplog):
    with caplog.at_level(logging.WARNING, logger="tkr_host"):
        status, body = await readyz(tkr_host.url)
    assert status == 503
    assert body["checks"] == {"plugins": "ok", "store": "ok", "queue": "ok", "broker": "failing"}
    # The reason is in the log, never in the answer.
    assert "10.0.0.9" not in str(body) and "10.0.0.9" in caplog.text


async def test_a_check_that_returns_false_fails(tkr_host):
    checked.queue_ok = False
    status, body = await readyz(tkr_host.url)
    assert status == 503 and body["checks"]["queue"] == "failing"


async def test_a_check_that_never_answers_times_out_and_readyz_still_answers(tkr_host):
    checked.hang = True
    status, body = await readyz(tkr_host.url)
    assert status == 503 and body["checks"]["broker"] == "timeout"
