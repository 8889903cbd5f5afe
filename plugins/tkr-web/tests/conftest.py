"""Fixtures for tkr-web's tests.

The HTTP tests use the ``tkr_host`` fixture of ``tkr_host.testing`` (a real
Hypercorn in the test's loop). The browser tests need a host they can kill and
start again on the same port and database, and the example echo agent, so they
run both as subprocesses: ``tkr-host serve`` and ``tkr-agent run``. Chromium is
Debian's ``/usr/bin/chromium``, driven by Playwright through
``executable_path``; no browser is ever downloaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tkr_host.testing import TEST_JWT_SECRET, bound_listener, make_token

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: Seconds between the echo agent's words: slow enough to reload or stop mid-stream.
ECHO_DELAY_S = "0.25"


def wait_until(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class WebHost:
    """``tkr-host serve`` in a subprocess, killed and started again at will."""

    def __init__(self, directory: Path, extra_config: str = "") -> None:
        self.directory = directory
        self.extra_config = extra_config
        # Pre-bound (no race for a port) and handed down as ``fd://N``; only the child keeps it, so
        # that a killed host's port refuses connections, as a host that is down does.
        self.listener: socket.socket | None = bound_listener()
        self.port = int(self.listener.getsockname()[1])
        self.config = directory / "config.toml"
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self, fd: int) -> None:
        self.config.write_text(
            f'bind = ["fd://{fd}"]\nworkers = 1\ngraceful_timeout = 1\n'
            "[host]\nping_interval_s = 1\nping_timeout_s = 2\ndrain_timeout_s = 1\n"
            '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
            f'[plugins.store_peewee]\nurl = "sqlite:///{self.directory}/tkr.db"\n{self.extra_config}'
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.listener is None:
            # A restart binds the same port again (the page's origin): were it taken meanwhile,
            # this fails here, saying so, instead of a test talking to another server.
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(("127.0.0.1", self.port))
            self.listener.listen(128)
        listener, self.listener = self.listener, None
        self.write_config(listener.fileno())
        with (self.directory / "host.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "tkr-host"), "serve", "--config", str(self.config)], stdout=log, stderr=subprocess.STDOUT,
                cwd=self.directory, start_new_session=True, env={**os.environ, "TKR_JWT_SECRET": TEST_JWT_SECRET},
                pass_fds=[listener.fileno()],
            )
        listener.close()
        process = self.process

        def ready() -> bool:
            assert process.poll() is None, f"tkr-host exited with {process.returncode}; see {self.directory}/host.log"
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                    return bool(response.status == 200)
            except (OSError, urllib.error.URLError):
                return False

        wait_until(ready, timeout=30, what="the host to be ready")

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is drained."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def get(self, path: str, token: str) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def history(self, session_id: str, token: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.get(f"/api/v1/sessions/{session_id}/messages?limit=200", token)["messages"]
        return messages


class EchoAgent:
    """``tkr-agent run examples/echo_agent.py:agent``: the example agent, for real."""

    def __init__(self, host: WebHost) -> None:
        with (host.directory / "echo.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "tkr-agent"), "run", str(REPO / "examples" / "echo_agent.py") + ":agent", "--url", host.url],
                stdout=log, stderr=subprocess.STDOUT, cwd=host.directory, start_new_session=True,
                env={**os.environ, "TKR_TOKEN": make_token("echo", kind="agent", ttl=3600), "TKR_ECHO_DELAY_S": ECHO_DELAY_S},
            )
        user = make_token("probe")
        wait_until(lambda: any(a["id"] == "echo" for a in host.get("/api/v1/agents", user)["agents"]), what="the echo agent online")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def web_host(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[WebHost]:
    marker = request.node.get_closest_marker("web_config")
    host = WebHost(tmp_path, marker.args[0] if marker else "")
    host.start()
    yield host
    host.kill()
    if host.listener is not None:
        host.listener.close()


@pytest.fixture
def echo_agent(web_host: WebHost) -> Iterator[EchoAgent]:
    agent = EchoAgent(web_host)
    yield agent
    agent.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "web_config(toml): extra config tables for the web_host fixture")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(params=["desktop", "phone"])
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    return {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}[request.param]


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (its own IndexedDB and sessionStorage) and page."""
    size = {"width": 1280, "height": 800}
    if "viewport" in request.fixturenames:
        size = request.getfixturevalue("viewport")
    context = browser.new_context(viewport=size, service_workers="allow")
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.page_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()
