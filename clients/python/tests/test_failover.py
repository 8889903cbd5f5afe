"""Several URLs: a ChatClient given the nodes of one deployment fails over between them
(docs/client.md, "Several nodes"), through real hosts on one store."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from tkr_client import ChatClient

from tkr_host.testing import TkrClient, connect_client, make_token, start_host


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A port nothing listens on: bound but never listening, so a connect is refused, and held for
    the whole test, so that nothing else can take the port meanwhile (as it could once closed)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


async def test_a_client_given_several_urls_connects_to_one_that_answers(tkr_host, tkr_token, fast, dead_url):
    client = ChatClient([dead_url, tkr_host.url], tkr_token("alice"), backoff=fast)
    try:
        await client.connect(timeout=10)
        session = await client.create_session(title="failover")
        assert session["id"]
        assert client.urls[1] == tkr_host.url
    finally:
        await client.close()


async def test_when_its_node_stops_the_client_resumes_on_the_next_and_misses_nothing(tkr_settings, tkr_plugins, fast, recorder, until):
    node_a, stop_a = await start_host(tkr_settings, tkr_plugins)
    node_b, stop_b = await start_host(tkr_settings, tkr_plugins)  # the same SQLite store
    alice = ChatClient([node_a.url, node_b.url], make_token("alice"), backoff=fast)
    bob: TkrClient | None = None
    a_stopped = False
    try:
        await alice.connect(timeout=10)
        seen = recorder(alice)
        session = await alice.create_session(title="failover")
        await alice.invite(session["id"], "bob")
        bob = TkrClient(await connect_client(node_b.url, make_token("bob")), "bob", "/chat")
        await bob.join(session["id"])
        await alice.send_text(session["id"], "before")
        await stop_a()  # drains: alice is told protocol.shutting_down and dropped
        a_stopped = True
        # Sent on B while alice has no socket: without Redis she can only get it by resuming there.
        await bob.send_text(session["id"], "while she moved")
        await seen.wait("message", lambda m: m["payload"]["text"] == "while she moved", timeout=15)
        assert alice.state == "connected"
        await alice.send_text(session["id"], "after")
        await bob.wait_for("message", lambda m: m["payload"]["text"] == "after")
        texts = [m["payload"]["text"] for m in seen.of("message")]
        assert texts.count("while she moved") == 1
    finally:
        await alice.close()
        if bob is not None:
            await bob.close()
        if not a_stopped:
            await stop_a()
        await stop_b()
