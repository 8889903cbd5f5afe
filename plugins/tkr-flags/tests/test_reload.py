"""``kill -HUP`` reads the flags again in a real ``tkr-host serve`` process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tkr_host.testing import TEST_JWT_SECRET, make_token

BIN = Path(sys.executable).parent
DEADLINE_S = 30.0


@dataclass
class Served:
    url: str
    config: Path
    log: Path
    process: subprocess.Popen[bytes]
    fd_bind: str

    def write_flags(self, flags: str) -> None:
        self.config.write_text(
            f'bind = ["{self.fd_bind}"]\nworkers = 1\n'
            '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
            f'[plugins.store_peewee]\nurl = "sqlite:///{self.config.parent}/tkr.db"\n'
            f"[plugins.flags.flags]\n{flags}\n"
        )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    # The test binds the port and hands the socket down: no race for it.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    log = tmp_path / "server.log"
    served = Served(f"http://127.0.0.1:{port}", tmp_path / "config.toml", log, None, f"fd://{listener.fileno()}")  # type: ignore[arg-type]
    served.write_flags("task_panel = false")
    with log.open("wb") as out:
        served.process = subprocess.Popen([str(BIN / "tkr-host"), "serve", "--config", str(served.config)], stdout=out,
                                          stderr=subprocess.STDOUT, pass_fds=[listener.fileno()], start_new_session=True,
                                          env={**os.environ, "TKR_JWT_SECRET": TEST_JWT_SECRET})
    listener.close()
    yield served
    with contextlib.suppress(ProcessLookupError):
        os.killpg(served.process.pid, signal.SIGKILL)
    served.process.wait(10)


async def flags_of(served: Served, http: aiohttp.ClientSession) -> dict[str, bool] | None:
    assert served.process.poll() is None, served.log.read_text()
    try:
        async with http.get(f"{served.url}/api/v1/flags", headers={"Authorization": f"Bearer {make_token('alice')}"}) as response:
            if response.status == 200:
                flags: dict[str, bool] = (await response.json())["flags"]
                return flags
    except aiohttp.ClientError:
        pass
    return None


async def wait_for_flags(served: Served, expected: dict[str, bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    seen = None
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            seen = await flags_of(served, http)
            if seen == expected:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"flags are {seen}, not {expected}\n{served.log.read_text()}")


async def test_sighup_reloads_the_flags_and_a_bad_table_keeps_the_old_ones(served):
    await wait_for_flags(served, {"task_panel": False})

    served.write_flags('task_panel = true\nbeta = { principals = ["alice"] }')
    served.process.send_signal(signal.SIGHUP)
    await wait_for_flags(served, {"beta": True, "task_panel": True})

    served.write_flags("task_panel = { percent = 250 }")
    served.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + DEADLINE_S
    while "flags not reloaded" not in served.log.read_text():
        assert time.monotonic() < deadline, served.log.read_text()
        await asyncio.sleep(0.05)
    # The refusal was logged (one line, no traceback) and the old flags stay.
    text = served.log.read_text()
    assert "Traceback" not in text
    assert next(line for line in text.splitlines() if "flags not reloaded" in line).count("percent") == 1
    await wait_for_flags(served, {"beta": True, "task_panel": True})

    served.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(served.process.wait, 20) == 0, served.log.read_text()
