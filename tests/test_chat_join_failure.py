"""A `session:join` that fails after the socket entered the room leaves the socket as it was.

docs/protocol.md, `session:join`: the socket enters the session's room before the host
reads the messages; a join that then fails (the store refuses the read,
`store.unavailable`) leaves it as it was: a socket that did not follow the session
gets none of its `message` events, and one that did keeps getting them. The store is
the test host's own; one read of it is refused, as `tkr-recovery` or a store plugin
would refuse it when the database is away (clients/python/tests/test_give_up.py does
the same for the SDK's resume).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tkr_host.errors import HostError
from tkr_host.testing import TkrClient


@contextmanager
def one_refused_history_read(store: Any) -> Iterator[list[str]]:
    """The store's next ``messages_before`` (a join's read without ``since_seq``) answers ``store.unavailable``."""
    real = store.messages_before
    refused: list[str] = []

    async def read(session_id: str, *args: Any, **kwargs: Any) -> Any:
        if not refused:
            refused.append(session_id)
            raise HostError("store.unavailable")
        return await real(session_id, *args, **kwargs)

    store.messages_before = read
    try:
        yield refused
    finally:
        store.messages_before = real


async def _shared(alice: TkrClient, bob: TkrClient) -> str:
    session_id = await alice.create_session("team")
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": bob.principal_id, "kind": "user"}})
    return session_id


async def _delivered_to_bob(alice: TkrClient, bob: TkrClient, session_id: str, sentinel_session: str) -> bool:
    """Whether bob's socket gets a message of ``session_id``; decided once a later sentinel in a session he follows arrived."""
    probe = await alice.send_text(session_id, "probe")
    sentinel = await alice.send_text(sentinel_session, "sentinel")
    await bob.wait_for("message", lambda m: m["id"] == sentinel["message"]["id"])
    return any(m["id"] == probe["message"]["id"] for m in bob.received("message"))


async def test_a_failed_first_join_leaves_the_socket_out_of_the_session(tkr_client: Any, tkr_host: Any) -> None:
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id, sentinel_session = await _shared(alice, bob), await _shared(alice, bob)
    await bob.join(sentinel_session)
    with one_refused_history_read(tkr_host.host.store) as refused:
        ack = await bob.call("session:join", {"session_id": session_id})
    assert refused == [session_id]
    assert ack["ok"] is False and ack["error"]["code"] == "store.unavailable"
    assert not await _delivered_to_bob(alice, bob, session_id, sentinel_session)


async def test_a_failed_join_again_keeps_the_socket_in_the_session(tkr_client: Any, tkr_host: Any) -> None:
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id, sentinel_session = await _shared(alice, bob), await _shared(alice, bob)
    await bob.join(sentinel_session)
    await bob.join(session_id)
    with one_refused_history_read(tkr_host.host.store) as refused:
        ack = await bob.call("session:join", {"session_id": session_id})
    assert refused == [session_id]
    assert ack["ok"] is False and ack["error"]["code"] == "store.unavailable"
    assert await _delivered_to_bob(alice, bob, session_id, sentinel_session)
