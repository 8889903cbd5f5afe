"""Generated bad input at every event of every namespace (hypothesis).

One real host serves the whole module from a loop in a background thread, so
hypothesis drives it from ordinary synchronous tests. Every payload must be
answered with an ack (or, for a packet the library cannot even parse, a clean
disconnect); nothing refused may be stored; no ack may carry a stack trace or
an ``internal.*`` error; and the host must keep serving a well-behaved client.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any

import aiohttp
import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tkr_host import Member
from tkr_host.testing import TkrClient, connect_client, default_settings, loop_count, make_token, start_host

EVENTS = {
    "/chat": ["session:create", "session:list", "session:join", "session:leave", "session:invite", "message:send", "message:history",
              "message:receipt", "no:such-event"],
    "/agents": ["message:ack", "message:send", "stream:start", "stream:chunk", "stream:end", "context:list", "no:such-event"],
    "/tasks": ["task:subscribe", "task:unsubscribe", "task:get", "no:such-event"],
}
#: Each example is sent to every event: 600 × 20 = 12,000 payloads in CI (``CI=true``), 150 × 20
#: = 3,000 locally (the kit's loop_count); TKR_FUZZ_EXAMPLES=N sets it either way. The test's
#: thresholds follow it.
EXAMPLES = int(os.environ.get("TKR_FUZZ_EXAMPLES", str(loop_count(full=600, local=150))))
#: The examples are run as this many tests, each on a host of its own where pytest-xdist gives
#: them workers of their own, so that the full count does not make one worker the suite's long pole.
SHARDS = 4
SHARD_EXAMPLES = -(-EXAMPLES // SHARDS)
TALLY: Counter[str] = Counter()
#: Ids of messages the host acked as stored, by fuzzed message:send and stream:end.
ACKED_IDS: set[str] = set()
#: Ids of streams the host opened: an agent that is reconnected mid-stream
#: leaves its reply stored as incomplete (PROTOCOL.md, /agents).
STREAM_IDS: set[str] = set()

EDGE_STRINGS = st.sampled_from([
    "", " ", "\x00", "\ud800", "\u202e\u200f", "🙂" * 300, "a" * 70_000, "é" * 140_000, "null", "0", "-1", "1e309",
    "../../etc/passwd", "<script>alert(1)</script>", "'; DROP TABLE messages; --", "%s%s%n", "\\u0000", "\r\n" * 50,
])
SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False) | st.text(max_size=50) | EDGE_STRINGS
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=20)
WITH_BINARY = st.recursive(SCALARS | st.binary(max_size=64), lambda inner: st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=6)


ENGINEIO_MAX_PACKET = 1_048_576


def has_binary(payload: Any) -> bool:
    if isinstance(payload, bytes | bytearray):
        return True
    if isinstance(payload, dict):
        return any(has_binary(value) for value in payload.values())
    if isinstance(payload, list):
        return any(has_binary(value) for value in payload)
    return False


def packet_size(payload: Any) -> int:
    """About what the payload weighs on the wire, as python-socketio's client
    encodes it (ASCII-escaped JSON; binary parts counted by length)."""
    return len(json.dumps(payload, default=lambda part: "x" * len(part)))


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = {"n": value} if level % 2 else [value]
    return value


DEEP = st.integers(min_value=1, max_value=400).map(nested)
#: Integers at and past every bound: the JS safe range (2^53 - 1), 64 bits, and far beyond.
BIG_INTEGERS = (st.sampled_from([2**53 - 1, 2**53, 2**63 - 1, 2**63, 2**64, 10**30, -1, -(2**63), -(2**63) - 1, -(2**64)])
                | st.integers(min_value=2**53) | st.integers(max_value=-(2**53)))
INTEGERS = BIG_INTEGERS | st.integers(min_value=-5, max_value=300)
KEYS = ["session_id", "client_id", "type", "payload", "to", "in_reply_to", "since_seq", "before_seq", "limit", "seq", "status",
        "title", "agents", "metadata", "member", "message_id", "delta", "task_id"]


@st.composite
def almost_valid(draw: st.DrawFn, session_id: str) -> dict[str, Any]:
    """Objects with the protocol's keys and values of the wrong (or right) kind."""
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=8, unique=True))
    value = st.one_of(st.just(session_id), st.sampled_from(["text", "context", "task", "poll", "Nope!"]), JSON, EDGE_STRINGS, INTEGERS)
    payload = {key: draw(value) for key in keys}
    if draw(st.booleans()):
        payload["payload"] = draw(st.fixed_dictionaries({}, optional={
            "text": EDGE_STRINGS | st.text(max_size=20), "format": st.sampled_from(["plain", "markdown", "html"]),
            "context_id": st.text(max_size=5), "data": JSON, "task_id": st.text(max_size=5),
            "action": st.sampled_from(["create", "update", "cancel", "explode"]), "state": st.sampled_from(["working", "done"]),
        }))
    return payload


@st.composite
def integer_fields(draw: st.DrawFn, session_id: str) -> dict[str, Any]:
    """A payload that is right but for the integers: one for each integer field of each event
    and message type, with values in and far out of range (issue 7: 2^63 reached the store)."""
    number = draw(INTEGERS)
    templates: list[dict[str, Any]] = [
        {"session_id": session_id, "since_seq": number},
        {"session_id": session_id, "before_seq": number, "limit": draw(INTEGERS)},
        {"session_id": session_id, "seq": number, "status": draw(st.sampled_from(["delivered", "read"]))},
        {"session_id": session_id, "client_id": f"int-{number}", "type": "context", "payload": {"context_id": "c", "data": {}, "ttl_s": number}},
        {"session_id": session_id, "client_id": f"int-{number}", "type": "poll", "payload": {"action": "vote", "poll_id": "p", "option": number}},
    ]
    return draw(st.sampled_from(templates))


def payloads(session_id: str) -> st.SearchStrategy[Any]:
    return st.one_of(almost_valid(session_id), integer_fields(session_id), JSON, WITH_BINARY, DEEP, EDGE_STRINGS, st.binary(max_size=32))


class Harness:
    """A host and its clients on a loop in a background thread."""

    def __init__(self, tmp: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.store_url = f"sqlite:///{tmp}/fuzz.db"
        self.clients: dict[str, TkrClient] = {}
        self.disconnects = 0
        #: One reconnect at a time per namespace: the sends of one example run at once.
        self.reconnecting: dict[str, asyncio.Lock] = {}

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start(self) -> None:
        settings = default_settings(self.store_url)
        # Bans and limits would (rightly) stop a fuzzer; they have their own tests.
        # So would the per-address caps: every request here comes from 127.0.0.1,
        # and each HTTP example opens a connection that lingers in keep-alive.
        settings["host"]["disable_plugins"] = ["guard", "ratelimit"]
        settings["host"]["max_connections_per_address"] = 0
        settings["host"]["max_unconnected_sessions_per_address"] = 10_000
        self.running, self.stop_host = await start_host(settings)
        for namespace, (principal, kind) in {"/chat": ("fuzzer", "user"), "/agents": ("fuzzbot", "agent"),
                                             "/tasks": ("fuzzer", "user")}.items():
            await self.connect(namespace, principal, kind)
        self.session_id = await self.clients["/chat"].create_session("fuzz", agents=["fuzzbot"])

    async def connect(self, namespace: str, principal: str, kind: str) -> None:
        sio = await connect_client(self.running.url, make_token(principal, kind), namespace)
        self.clients[namespace] = TkrClient(sio, principal, namespace)

    async def client(self, namespace: str) -> TkrClient:
        """The namespace's client, connected again if the host closed it."""
        async with self.reconnecting.setdefault(namespace, asyncio.Lock()):
            client = self.clients[namespace]
            if not client.sio.connected:  # a packet the host refused as malformed closed it: reconnect
                self.disconnects += 1
                await client.close()
                await self.connect(namespace, client.principal_id, "agent" if namespace == "/agents" else "user")
                client = self.clients[namespace]
            return client

    async def send(self, namespace: str, event: str, payload: Any) -> Any:
        client = await self.client(namespace)
        try:
            return await client.sio.call(event, payload, namespace=namespace, timeout=5)
        except (TypeError, ValueError):
            return "unsendable"  # the client library itself refused to encode it
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
            # The sends of one example run at once: a packet the host closes the
            # connection for (over 1 MiB, or binary) leaves its siblings with
            # no answer, or with no namespace to send on.
            if not client.sio.connected and packet_size(payload) > ENGINEIO_MAX_PACKET:
                return "closed: over 1 MiB"  # Engine.IO's own rule (PROTOCOL.md, Transport)
            if not client.sio.connected and has_binary(payload):
                return "closed: binary attachments"  # protocol.malformed (docs/protocol.md)
            return f"no answer from {namespace} {event} (connected: {client.sio.connected})"

    async def stop(self) -> None:
        for client in self.clients.values():
            await client.close()
        await self.stop_host()


async def cancel_leftovers() -> None:
    """Cancel what the clients and the host left on the loop, so none outlives it."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    harness = Harness(str(tmp_path_factory.mktemp("fuzz")))
    harness.run(harness.start())
    yield harness
    harness.run(harness.stop())
    harness.run(cancel_leftovers())
    harness.loop.call_soon_threadsafe(harness.loop.stop)
    harness.thread.join(10)
    harness.loop.close()


def check_ack(ack: Any) -> None:
    if ack in ("unsendable", "closed: over 1 MiB", "closed: binary attachments"):
        TALLY[ack] += 1
        return
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
    if not ack["ok"]:
        error = ack["error"]
        assert error["code"].split(".")[0] in {"validation", "not_found", "permission", "conflict", "protocol"}, error
        assert error["hint"] and error["request_id"] and error["message"]
        assert "Traceback" not in str(ack) and "File \"" not in str(ack)
    TALLY["ok" if ack["ok"] else error["code"]] += 1


@settings(max_examples=SHARD_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def fuzz_every_event(harness: Harness, data: st.DataObject) -> None:
    payload = data.draw(payloads(harness.session_id))

    targets = [(namespace, event) for namespace, events in EVENTS.items() for event in events]

    async def send_everywhere() -> list[Any]:
        return await asyncio.gather(*(harness.send(namespace, event, payload) for namespace, event in targets))

    for (_, event), ack in zip(targets, harness.run(send_everywhere()), strict=True):
        TALLY["tried"] += 1
        check_ack(ack)
        if event in ("message:send", "stream:end") and isinstance(ack, dict) and ack["ok"] and not ack.get("duplicate"):
            ACKED_IDS.add(ack["message"]["id"])
        if event == "stream:start" and isinstance(ack, dict) and ack["ok"]:
            STREAM_IDS.add(ack["message_id"])


#: Query strings: numbers in and out of range, and text that is no number (no lone
#: surrogates, which no HTTP client can send, and none longer than a URL may be).
QUERY_TEXT = (INTEGERS.map(str) | st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
              | EDGE_STRINGS.filter(lambda text: len(text) < 200 and "\ud800" not in text))


@settings(max_examples=max(EXAMPLES // 4, 50), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(before_seq=st.none() | QUERY_TEXT, limit=st.none() | QUERY_TEXT)
def test_the_history_route_answers_generated_query_strings(harness: Harness, before_seq: str | None, limit: str | None) -> None:
    params = {name: value for name, value in (("before_seq", before_seq), ("limit", limit)) if value is not None}

    async def fetch() -> tuple[int, Any]:
        url = f"{harness.running.url}/api/v1/sessions/{harness.session_id}/messages"
        async with (aiohttp.ClientSession(headers={"Authorization": f"Bearer {make_token('fuzzer')}"}) as http,
                    http.get(url, params=params) as response):
            return response.status, await response.json(content_type=None)

    status, body = harness.run(fetch())
    TALLY[f"http {status}"] += 1
    assert status in (200, 400), (params, status, body)
    if status == 400:
        assert body["error"]["code"] == "validation.payload" and body["error"]["hint"], body


#: 12,000 payloads take about two minutes on an idle machine, several on a loaded one.
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("shard", range(SHARDS))
def test_every_event_answers_generated_payloads_and_nothing_refused_is_stored(harness: Harness, shard: int) -> None:
    # The storage check is in the same test as the fuzzing it checks, whatever order
    # the tests run in (pytest-randomly), and the count it asserts comes from this run's
    # own TKR_FUZZ_EXAMPLES. Each shard draws examples of its own: hypothesis seeds
    # every run afresh from a Random of its own (no example database, not derandomized).
    TALLY.clear()
    fuzz_every_event(harness)

    async def check() -> None:
        chat = await harness.client("/chat")  # the last example may have closed it
        store = harness.running.host.store
        stored: list[Any] = []
        for session in await store.list_sessions(Member(id="fuzzer")) + await store.list_sessions(Member(id="fuzzbot", kind="agent")):
            stored += await store.messages_after(session.id, 0, 100_000)
        stored_ids = {message.id for message in stored}
        assert stored_ids >= ACKED_IDS, "an acked message is missing"
        unacked = [message for message in stored if message.id not in ACKED_IDS]
        assert all(message.id in STREAM_IDS and message.status == "incomplete" for message in unacked), unacked
        ack = await chat.send_text(harness.session_id, "still here")
        assert ack["ok"], ack
        ACKED_IDS.add(ack["message"]["id"])  # a later shard on this host finds it stored

    harness.run(check())
    print(f"\nfuzz: {TALLY['tried']} payloads tried at {sum(map(len, EVENTS.values()))} events; answers: {dict(TALLY)}; "
          f"reconnects after a clean disconnect: {harness.disconnects}")
    events = sum(map(len, EVENTS.values()))
    # Every example is sent to every event; hypothesis may stop a little short of max_examples.
    assert TALLY["tried"] >= SHARD_EXAMPLES * events * 0.9, TALLY["tried"]
    assert TALLY["tried"] % events == 0
