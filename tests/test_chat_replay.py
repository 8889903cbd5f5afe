"""`session:join` with `since_seq` on a store that has the `Store` protocol's methods only.

tkr_host/types.py's `Store` protocol reads a replay with `messages_after`; a store may
also hand out the wire form itself (`wire_messages_after`, tkr-store-peewee's, not part
of the protocol; docs/performance.md), and the join uses it when it is there. A store
plugin without it must replay the same (docs/protocol.md, session:join): the first
`host.resume_limit` messages after `since_seq`, oldest first, `truncated` when more follow.
The store here is the test host's own, seen through a view that lacks the optional method.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


class ProtocolOnly:
    """The host's store, without the optional ``wire_messages_after``."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name == "wire_messages_after":
            raise AttributeError(name)
        return getattr(self._store, name)


@pytest.fixture
def protocol_store(tkr_host: Any) -> Iterator[ProtocolOnly]:
    host = tkr_host.host
    real = host.store
    host.store = view = ProtocolOnly(real)
    yield view
    host.store = real


@pytest.mark.tkr_settings({"host": {"resume_limit": 3}})
async def test_a_store_without_the_wire_form_replays_the_same(tkr_client: Any, protocol_store: ProtocolOnly) -> None:
    assert not hasattr(protocol_store, "wire_messages_after")
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    for i in range(7):
        await alice.send_text(session_id, f"m{i}")
    first = await alice.join(session_id, since_seq=0)
    assert [m["seq"] for m in first["messages"]] == [1, 2, 3] and first["truncated"] is True
    assert [m["payload"]["text"] for m in first["messages"]] == ["m0", "m1", "m2"]
    # Exactly resume_limit left: all of them, not truncated.
    rest = await alice.join(session_id, since_seq=4)
    assert [m["seq"] for m in rest["messages"]] == [5, 6, 7] and rest["truncated"] is False
    assert (await alice.join(session_id, since_seq=7))["messages"] == []
