"""The multi-process kit: ``tkr-host serve`` subprocesses on the test PostgreSQL and Redis.

Every host listens on a socket this test process bound first and hands over as
``fd://N`` (no race for a port). PostgreSQL tables live in a schema of the
test's own, dropped afterwards; Redis keys live under a channel of the test's
own, deleted afterwards. Processes run in a session of their own, so the
teardown's SIGKILL reaches their workers too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tkr_host.testing import POSTGRES_ENV, REDIS_ENV, TEST_JWT_SECRET, bound_listener, wait_ready

BIN = Path(sys.executable).parent


@dataclass
class Services:
    dsn: str
    redis_url: str
    channel: str
    schema: str = field(default_factory=lambda: f"tkr_mn_{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def services(redis_prefix: str) -> AsyncIterator[Services]:
    """The test PostgreSQL and Redis; a schema of the test's own (dropped afterwards) and the kit's
    ``redis_prefix`` as the channel (its keys deleted afterwards)."""
    dsn = os.environ.get(POSTGRES_ENV)
    redis_url = os.environ.get(REDIS_ENV)
    if not dsn or not redis_url:
        pytest.skip(f"multi-node tests need {POSTGRES_ENV} and {REDIS_ENV}")
    made = Services(dsn, redis_url, channel=redis_prefix)
    yield made
    import asyncpg

    with contextlib.suppress(Exception):
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{made.schema}" CASCADE')
        finally:
            await connection.close()


@dataclass
class Node:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else ""


def config_text(services: Services, fd: int, workers: int = 1, redis_url: str | None = None, ttl_s: float = 30.0,
                extra: str = "") -> str:
    return (
        f'bind = ["fd://{fd}"]\nworkers = {workers}\ngraceful_timeout = 5\n'
        # A slow heartbeat: a killed node is noticed by its closed TCP connections,
        # and a busy test machine must not time out a live client.
        "[host]\nping_interval_s = 5\nping_timeout_s = 10\ndrain_timeout_s = 10\n"
        '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
        f'[plugins.store_peewee]\nurl = "{services.dsn}"\npg_schema = "{services.schema}"\n'
        f'[plugins.redis]\nurl = "{redis_url or services.redis_url}"\nchannel = "{services.channel}"\npresence_ttl_s = {ttl_s}\n'
        + extra
    )


@pytest.fixture
def spawn_node(tmp_path: Path) -> Iterator:
    """``spawn_node(services, name, workers=1, redis_url=None, ttl_s=30)``: a started node (not yet ready)."""
    started: list[Node] = []

    def spawn(services: Services, name: str, **options: object) -> Node:
        listener = bound_listener()
        fd = listener.fileno()
        config = tmp_path / f"{name}.toml"
        config.write_text(config_text(services, fd, **options))  # type: ignore[arg-type]
        log = tmp_path / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen([str(BIN / "tkr-host"), "serve", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                       cwd=tmp_path, pass_fds=[fd], start_new_session=True,
                                       env={**os.environ, "TKR_JWT_SECRET": TEST_JWT_SECRET})
        node = Node(url=f"http://127.0.0.1:{listener.getsockname()[1]}", process=process, log=log)
        # Only the node holds the socket now: once it dies, a connect is refused at once.
        listener.close()
        started.append(node)
        return node

    yield spawn
    for node in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait(10)


async def ready(node: Node, timeout: float = 60.0) -> Node:
    await wait_ready(node.url, node.process, node.log, timeout)
    return node


@pytest.fixture
def node_ready():
    return ready
