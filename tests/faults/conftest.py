"""The fault tests' kit: a host served by ``tkr-host serve`` in a subprocess, and
clients that keep sending the way a real client does.

Each fault test breaks something real (a locked or unwritable SQLite file, a
stopped PostgreSQL, a killed host) while clients send, then counts messages
acked against messages stored. A client sends each message until it is acked:
a refused send is resent with the same ``client_id`` after ``retry_after`` (or
a short pause when there is none), and a send that gets no answer (the host
died) is resent after a reconnect and a ``session:join`` with ``since_seq``.

Fixtures:

* ``served_host(store_url, plugins=None)``: a started :class:`ServedHost`, killed
  at teardown if it still runs.
* ``run_load(url, clients=…, messages=…, fault=…)``: owner creates a session,
  invites the others, every client sends; ``fault(progress)`` runs alongside.
  Returns a :class:`LoadResult` with ``check(stored)`` and ``report(name, stored)``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
import socketio

from tkr_host.testing import TEST_JWT_SECRET, bound_listener, connect_client, make_token, wait_ready

BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 30.0
#: Pause before resending a send refused without ``retry_after``, or unanswered.
RESEND_DELAY_S = 0.2
RECONNECT_DELAY_S = 0.2
#: The host's own plugins that would refuse or ban a flood of retries from 127.0.0.1.
NO_LIMITS = ["ratelimit", "guard"]


# --- a host in a subprocess --------------------------------------------------------


def to_toml(config: dict[str, Any], prefix: str = "") -> str:
    """Plain TOML for the config dict (strings, numbers, booleans, lists, tables).

    JSON's literals are TOML's for these types, so values go through json.dumps.
    """
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.items() if not isinstance(value, dict)]
    for key, value in config.items():
        if isinstance(value, dict):
            name = f"{prefix}.{key}" if prefix else key
            lines += ["", f"[{name}]", to_toml(value, name)]
    return "\n".join(lines)


def _pump(stream: IO[bytes], path: Path) -> None:
    """Copy the host's output to its log file. A pipe, not the file itself, so that
    a host whose file-size limit is 0 (see test_sqlite_faults.py) still logs."""
    with stream, path.open("ab") as log:
        for line in iter(stream.readline, b""):
            log.write(line)
            log.flush()


class JoinRefused(Exception):
    """A ``session:join`` answered with an error while the host recovers: worth another try.

    Its own type, so that the retry loop never swallows a failed assertion.
    """


@dataclass
class StoredRow:
    seq: int
    id: str
    sender_id: str
    client_id: str | None


class ServedHost:
    """``tkr-host serve --config FILE`` on 127.0.0.1, restartable on the same port and store."""

    def __init__(self, directory: Path, store: dict[str, Any], plugins: dict[str, Any] | None = None) -> None:
        self.directory = directory
        # Bound once and kept until close(): every start of this host serves on it (fd://N), so a
        # restart gets the same port and nothing can take it in between. Connects made while the
        # host is down wait in its backlog and are answered by the next start.
        self.listener = bound_listener()
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = store
        config: dict[str, Any] = {
            "bind": [f"fd://{self.listener.fileno()}"],
            "workers": 1,
            "graceful_timeout": 5,
            "host": {"ping_interval_s": 1, "ping_timeout_s": 2, "drain_timeout_s": 2, "disable_plugins": NO_LIMITS},
            "plugins": {"auth_jwt": {"secret": "env:TKR_JWT_SECRET"}, "store_peewee": dict(store)},
        }
        for name, table in (plugins or {}).items():
            config["plugins"].setdefault(name, {}).update(table)
        self.config_path = directory / f"host-{self.port}.toml"
        self.config_path.write_text(to_toml(config) + "\n")
        self.log_path = directory / f"host-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._pumps: list[threading.Thread] = []

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def start(self) -> None:
        """Start the host (again: same port, config and store) and wait until /readyz answers 200."""
        self._spawn()
        await self.wait_ready()

    def _spawn(self) -> None:
        assert not self.running(), "the host is already running"
        self.process = subprocess.Popen([str(BIN / "tkr-host"), "serve", "--config", str(self.config_path)], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, cwd=self.directory,
                                        pass_fds=[self.listener.fileno()], env={**os.environ, "TKR_JWT_SECRET": TEST_JWT_SECRET})
        assert self.process.stdout is not None
        pump = threading.Thread(target=_pump, args=(self.process.stdout, self.log_path), name=f"host-{self.port}-log", daemon=True)
        pump.start()
        self._pumps.append(pump)
        self.starts += 1

    async def wait_ready(self) -> None:
        assert self.process is not None
        await wait_ready(self.url, self.process, self.log_path, timeout=READY_TIMEOUT_S)

    async def kill(self) -> None:
        """SIGKILL: no drain, no shutdown hooks, the store is not closed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait, 10)

    async def stop(self) -> None:
        """SIGTERM (a draining stop), then SIGKILL if it does not exit."""
        if not self.running():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, 20)
        except subprocess.TimeoutExpired:
            await self.kill()

    def close(self) -> None:
        """Teardown: nothing may outlive the test."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for pump in self._pumps:
            pump.join(10)
        self.listener.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def log_count(self, text: str) -> int:
        try:
            return self.log_path.read_text(errors="replace").count(text)
        except FileNotFoundError:
            return 0

    async def metric(self, name: str, **labels: str) -> float:
        """One sample of the host's /metrics (0 when absent)."""
        wanted = name + ("{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}" if labels else "")
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/metrics") as response:
            text = await response.text()
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    async def stored(self, session_id: str) -> list[StoredRow]:
        """The session's messages as the database holds them, by seq."""
        url = self.store["url"]
        query = "SELECT seq, id, sender_id, client_id FROM messages WHERE session_id = {} ORDER BY seq"
        if url.startswith("sqlite:///"):
            connection = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10)
            try:
                rows = connection.execute(query.format("?"), (session_id,)).fetchall()
            finally:
                connection.close()
            return [StoredRow(int(seq), id_, sender, client) for seq, id_, sender, client in rows]
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(url, server_settings={"search_path": self.store["pg_schema"]})
        try:
            records = await connection.fetch(query.format("$1"), session_id)
        finally:
            await connection.close()
        return [StoredRow(int(r["seq"]), r["id"], r["sender_id"], r["client_id"]) for r in records]


@pytest.fixture
async def served_host(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[ServedHost]]]:
    hosts: list[ServedHost] = []

    async def serve(store: dict[str, Any], plugins: dict[str, Any] | None = None) -> ServedHost:
        host = ServedHost(tmp_path, store, plugins)
        hosts.append(host)
        await host.start()
        return host

    try:
        yield serve
    finally:
        for host in hosts:
            await asyncio.to_thread(host.close)


# --- clients that keep sending -------------------------------------------------------


class Progress:
    """Messages acked so far, across every client: faults start at a point of the load."""

    def __init__(self) -> None:
        self.acked = 0

    async def reached(self, acked: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < acked:
            if time.monotonic() > deadline:
                raise AssertionError(f"the load never reached {acked} acked messages (at {self.acked})")
            await asyncio.sleep(0.005)


def _setter(event: asyncio.Event) -> Callable[..., Awaitable[None]]:
    async def set_event(*args: Any) -> None:
        event.set()

    return set_event


class Sender:
    """One member of the session that sends ``count`` messages, in order, each until acked."""

    def __init__(self, url: str, principal_id: str, count: int, tag: str, progress: Progress, pace_s: float, call_timeout_s: float) -> None:
        self.url, self.principal_id, self.count, self.tag = url, principal_id, count, tag
        self.progress, self.pace_s, self.call_timeout_s = progress, pace_s, call_timeout_s
        self.session_id = ""
        self.sio: socketio.AsyncClient | None = None
        self._dropped = asyncio.Event()
        #: client_id → the ack's message {id, seq, ts}
        self.acked: dict[str, dict[str, Any]] = {}
        self.refused: Counter[str] = Counter()
        self.unanswered = 0
        self.resent = 0
        self.duplicates = 0
        self.connects = 0
        #: seq → message id, from live `message` events, join replays and own acks
        self.view: dict[int, str] = {}
        self.fetched = 0
        self.conflicts: list[str] = []

    # connection -----------------------------------------------------------------

    def connected(self) -> bool:
        return self.sio is not None and self.sio.connected and "/chat" in self.sio.namespaces and not self._dropped.is_set()

    async def connect(self, deadline: float, join: bool = True) -> None:
        """(Re)connect; then join the session with ``since_seq``, replaying what was missed."""
        while True:
            await self.close()
            try:
                sio = await connect_client(self.url, make_token(self.principal_id))
            except socketio.exceptions.ConnectionError as exc:  # the host is down or restarting
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.principal_id} could not reconnect before the deadline: {exc}") from None
                await asyncio.sleep(RECONNECT_DELAY_S)
                continue
            self.sio, self.connects = sio, self.connects + 1
            # One event per connection: a late disconnect of the old one cannot mark the new one dropped.
            self._dropped = asyncio.Event()
            sio.on("disconnect", _setter(self._dropped), namespace="/chat")

            async def on_message(message: dict[str, Any]) -> None:
                if message.get("session_id") == self.session_id:
                    self.see(message["seq"], message["id"])

            sio.on("message", on_message, namespace="/chat")
            if not join:
                return
            try:
                await self.rejoin()
                return
            except (socketio.exceptions.SocketIOError, JoinRefused):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(RECONNECT_DELAY_S)

    async def rejoin(self) -> None:
        while True:
            since = self.contiguous()
            ack = await self.call("session:join", {"session_id": self.session_id, "since_seq": since})
            if not ack.get("ok"):
                # A join the restarting host refused (store.unavailable, or no
                # answer): the connect loop tries again until its deadline.
                raise JoinRefused(f"{self.principal_id}: session:join failed: {ack}")
            for message in ack["messages"]:
                self.see(message["seq"], message["id"])
            if not ack["truncated"]:
                return

    async def call(self, event: str, data: dict[str, Any]) -> Any:
        """Emit with an ack; a dropped connection ends the wait at once (as the SDK does)."""
        assert self.sio is not None
        call = asyncio.ensure_future(self.sio.call(event, data, namespace="/chat", timeout=self.call_timeout_s))
        dropped = asyncio.ensure_future(self._dropped.wait())
        try:
            await asyncio.wait({call, dropped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dropped.cancel()
        if not call.done():
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
            raise socketio.exceptions.DisconnectedError("the connection dropped before the ack")
        return call.result()

    async def close(self) -> None:
        if self.sio is not None:
            sio, self.sio = self.sio, None
            await sio.disconnect()

    # the view -----------------------------------------------------------------------

    def see(self, seq: int, message_id: str) -> None:
        known = self.view.setdefault(seq, message_id)
        if known != message_id:
            self.conflicts.append(f"seq {seq}: {known} and {message_id}")

    def contiguous(self) -> int:
        """The last seq up to which this client has seen everything: its ``since_seq``."""
        seq = 0
        while seq + 1 in self.view:
            seq += 1
        return seq

    async def fill_gaps(self, last_seq: int) -> None:
        """What PROTOCOL.md tells a client that sees a gap: fetch it with message:history."""
        for seq in range(1, last_seq + 1):
            if seq not in self.view:
                ack = await self.call("message:history", {"session_id": self.session_id, "before_seq": seq + 1, "limit": 1})
                assert ack.get("ok"), f"{self.principal_id}: message:history failed: {ack}"
                for message in ack["messages"]:
                    self.see(message["seq"], message["id"])
                self.fetched += 1

    # sending ------------------------------------------------------------------------

    def client_id(self, index: int) -> str:
        return f"{self.tag}-{self.principal_id}-{index:03d}"

    async def run(self, deadline: float) -> None:
        for index in range(self.count):
            client_id = self.client_id(index)
            attempts = 0
            while client_id not in self.acked:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.principal_id}: {client_id} was not acked before the deadline "
                                         f"(refused {dict(self.refused)}, unanswered {self.unanswered})")
                if attempts:
                    self.resent += 1
                attempts += 1
                await self._send(client_id, index, deadline)
            if self.pace_s:
                await asyncio.sleep(self.pace_s)

    async def _send(self, client_id: str, index: int, deadline: float) -> None:
        if not self.connected():
            await self.connect(deadline)
        data = {"session_id": self.session_id, "client_id": client_id, "type": "text", "payload": {"text": f"{self.principal_id} #{index}"}}
        try:
            ack = await self.call("message:send", data)
        except socketio.exceptions.SocketIOError:  # no answer: timed out, or the connection dropped
            self.unanswered += 1
            await asyncio.sleep(RESEND_DELAY_S)
            return
        if ack.get("ok"):
            message = ack["message"]
            self.acked[client_id] = message
            self.duplicates += bool(ack.get("duplicate"))
            self.see(message["seq"], message["id"])
            self.progress.acked += 1
            return
        error = ack["error"]
        self.refused[error["code"]] += 1
        assert error["recoverable"], f"{self.principal_id}: {client_id} was refused for good: {error}"
        await asyncio.sleep(error.get("retry_after") or RESEND_DELAY_S)


@dataclass
class LoadResult:
    session_id: str
    senders: list[Sender]
    counts: Counter[str] = field(default_factory=Counter)

    def acked(self) -> dict[tuple[str, str], str]:
        """(sender, client_id) → the acked message id."""
        return {(s.principal_id, client_id): m["id"] for s in self.senders for client_id, m in s.acked.items()}

    def totals(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for s in self.senders:
            totals["sent"] += s.count
            totals["acked"] += len(s.acked)
            totals["refused"] += sum(s.refused.values())
            totals["unanswered"] += s.unanswered
            totals["resent"] += s.resent
            totals["duplicate acks"] += s.duplicates
            totals["reconnects"] += s.connects - 1
            totals["gap fetches"] += s.fetched
        return totals

    def refusals(self) -> Counter[str]:
        codes: Counter[str] = Counter()
        for s in self.senders:
            codes.update(s.refused)
        return codes

    def report(self, name: str, stored: list[StoredRow]) -> str:
        totals = self.totals()
        codes = ", ".join(f"{code}={n}" for code, n in sorted(self.refusals().items())) or "none"
        seqs = f"1..{stored[-1].seq}" if stored else "none"
        extra = "".join(f" {key}={value}" for key, value in self.counts.items())
        return (f"\nfaults[{name}]: clients={len(self.senders)} sent={totals['sent']} acked={totals['acked']} refused={totals['refused']} "
                f"({codes}) unanswered={totals['unanswered']} resent={totals['resent']} duplicate_acks={totals['duplicate acks']} "
                f"reconnects={totals['reconnects']} gap_fetches={totals['gap fetches']} stored={len(stored)} seqs={seqs}{extra}")

    def check(self, stored: list[StoredRow], gap_fetches_allowed: bool = False) -> None:
        """Acked == stored, each client_id once, seqs gapless, every client saw every seq."""
        assert [row.seq for row in stored] == list(range(1, len(stored) + 1)), "the stored seqs have a gap or a duplicate"
        assert len({row.id for row in stored}) == len(stored), "a message id is stored twice"
        stored_by_key = {(row.sender_id, row.client_id): row.id for row in stored}
        assert len(stored_by_key) == len(stored), "a (sender, client_id) is stored twice"
        assert all(len(s.acked) == s.count for s in self.senders), "a client gave up with messages unacked"
        acked = self.acked()
        assert set(acked.values()) == {row.id for row in stored}, (
            f"acked ids != stored ids: {len(set(acked.values()) - {row.id for row in stored})} acked but not stored, "
            f"{len({row.id for row in stored} - set(acked.values()))} stored but never acked")
        assert acked == stored_by_key, "an ack named another message than the one stored for its client_id"
        by_seq = {row.seq: row.id for row in stored}
        for s in self.senders:
            assert not s.conflicts, f"{s.principal_id} saw two messages with one seq: {s.conflicts[:3]}"
            missing = sorted(set(by_seq) - set(s.view))
            assert not missing, f"{s.principal_id} never saw seqs {missing[:10]} ({len(missing)} in all)"
            wrong = [seq for seq, message_id in s.view.items() if by_seq.get(seq) != message_id]
            assert not wrong, f"{s.principal_id} saw seqs {wrong[:10]} with ids other than the stored ones"
        if not gap_fetches_allowed:
            assert self.totals()["gap fetches"] == 0, "live events and join replays missed messages"


async def _wait_for_views(senders: list[Sender], last_seq: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    # Polling: the views fill from socket.io handlers, and this runs once per test.
    while any(s.contiguous() < last_seq for s in senders) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def _run_load(url: str, *, clients: int, messages: int, fault: Callable[[Progress], Awaitable[Any]], tag: str,
                    deadline_s: float = 90.0, pace_s: float = 0.01, call_timeout_s: float = 10.0) -> LoadResult:
    """``clients`` members each send ``messages`` text messages while ``fault`` runs."""
    deadline = time.monotonic() + deadline_s
    progress = Progress()
    senders = [Sender(url, f"user{i:02d}", messages, tag, progress, pace_s, call_timeout_s) for i in range(clients)]
    owner = senders[0]
    tasks: list[asyncio.Task[Any]] = []
    try:
        await owner.connect(deadline, join=False)
        created = await owner.call("session:create", {"title": f"faults {tag}"})
        assert created.get("ok"), f"session:create failed: {created}"
        session_id = created["session"]["id"]
        for sender in senders:
            sender.session_id = session_id
        for sender in senders[1:]:
            invited = await owner.call("session:invite", {"session_id": session_id, "member": {"id": sender.principal_id, "kind": "user"}})
            assert invited.get("ok"), f"session:invite failed: {invited}"
        await asyncio.gather(*(sender.connect(deadline) for sender in senders[1:]))
        tasks = [asyncio.create_task(sender.run(deadline), name=sender.principal_id) for sender in senders]
        tasks.append(asyncio.create_task(fault(progress), name="fault"))
        await asyncio.gather(*tasks)
        last_seq = max((m["seq"] for s in senders for m in s.acked.values()), default=0)
        await _wait_for_views(senders, last_seq, timeout=10)
        for sender in senders:
            if not sender.connected():
                await sender.connect(deadline)
            await sender.fill_gaps(last_seq)
        return LoadResult(session_id, senders)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sender in senders:
            await sender.close()


@pytest.fixture
def run_load() -> Callable[..., Awaitable[LoadResult]]:
    return _run_load
