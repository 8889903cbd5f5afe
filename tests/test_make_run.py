"""``make run`` as a newcomer runs it: the host and the echo agent start, the printed
sign-in link works, the first message to ``echo`` gets a streamed answer, and Ctrl-C
stops both processes (README.md)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tkr_host.testing import TkrClient, bound_listener, connect_client

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(http://127\.0\.0\.1:\d+)/#token=(\S+)")
DEADLINE_S = 60.0


def processes_of_group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    found.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return found


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
async def test_make_run_serves_the_page_link_and_the_echo_agent_answers_then_ctrl_c_stops_both(tmp_path):
    listener = bound_listener()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'bind = ["fd://{listener.fileno()}"]\nworkers = 1\n'
        "[host]\nping_interval_s = 1\nping_timeout_s = 2\ndrain_timeout_s = 2\n"
        '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
        f'[plugins.store_peewee]\nurl = "sqlite:///{tmp_path}/tkr.db"\n'
    )
    log = tmp_path / "make-run.log"
    env = {**os.environ, "TKR_ECHO_DELAY_S": "0.01"}
    env.pop("MAKEFLAGS", None)
    with log.open("wb") as out:
        make = subprocess.Popen(["make", "--no-print-directory", "run", f"CONFIG={config}", f"RUN_URL={url}"], cwd=ROOT,  # noqa: ASYNC220
                                stdout=out, stderr=subprocess.STDOUT, pass_fds=[listener.fileno()], start_new_session=True, env=env)
    listener.close()
    alice = None
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not LINK.search(log.read_text()):
            assert make.poll() is None and time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.1)
        base, token = LINK.search(log.read_text()).groups()
        assert base == url
        while True:  # the host is up once the link's token connects
            try:
                alice = TkrClient(await connect_client(url, token), "alice", "/chat")
                break
            except Exception:
                assert make.poll() is None and time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.2)
        session_id = await alice.create_session(agents=["echo"])
        # The agent may still be connecting: its pending delivery reaches it when it does.
        asked = await alice.send_text(session_id, "hello newcomer", to="echo")
        assert asked["ok"], asked
        reply = await alice.wait_for("message", lambda m: m["sender"]["id"] == "echo", timeout=DEADLINE_S)
        assert reply["payload"]["text"] == "echo: hello newcomer" and reply["in_reply_to"] == asked["message"]["id"]
        assert [c["delta"] for c in alice.received("message:chunk") if c["message_id"] == reply["id"]] == ["echo: ", "hello ", "newcomer"]
        await alice.close()
        alice = None
        # Ctrl-C reaches the whole foreground process group: make, the host and the agent.
        os.killpg(make.pid, signal.SIGINT)
        await asyncio.to_thread(make.wait, 30)
        while processes_of_group(make.pid):
            assert time.monotonic() < deadline + 30, f"still running after Ctrl-C: {processes_of_group(make.pid)}\n{log.read_text()}"
            await asyncio.sleep(0.1)
    finally:
        if alice is not None:
            await alice.close()
        if make.poll() is None or processes_of_group(make.pid):
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(10)
    assert (ROOT / "var" / "echo-key").stat().st_mode & 0o077 == 0, "the agent's key is readable by others"
    key = (ROOT / "var" / "echo-key").read_text().strip()
    assert key.startswith("tkr_ak_") and key not in log.read_text(), "make run printed the agent's key"
