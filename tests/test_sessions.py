"""The session cache: an invite made on another node is seen at once."""

from __future__ import annotations

from tkr_host.testing import TkrClient, connect_client, make_token, start_host


async def test_an_invite_on_another_node_is_honoured_on_this_one(tkr_settings, tkr_plugins):
    node_a, stop_a = await start_host(tkr_settings, tkr_plugins)
    node_b, stop_b = await start_host(tkr_settings, tkr_plugins)  # the same SQLite file
    clients: list[TkrClient] = []
    try:
        async def client(node, principal: str) -> TkrClient:
            made = TkrClient(await connect_client(node.url, make_token(principal)), principal, "/chat")
            clients.append(made)
            return made

        alice_a = await client(node_a, "alice")
        session_id = await alice_a.create_session()
        assert (await alice_a.send_text(session_id, "cached on A"))["ok"]
        assert len(node_a.host.sessions) == 1

        alice_b = await client(node_b, "alice")
        await alice_b.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
        await alice_b.ok("session:invite", {"session_id": session_id, "member": {"id": "echo", "kind": "agent"}})

        bob_a = await client(node_a, "bob")
        assert (await bob_a.send_text(session_id, "invited on B, sending on A"))["ok"]
        assert (await alice_a.send_text(session_id, "to the new agent", to="echo"))["ok"]
        mallory_a = await client(node_a, "mallory")
        assert (await mallory_a.send_text(session_id, "no"))["error"]["code"] == "permission.not_member"
    finally:
        for made in clients:
            await made.close()
        await stop_a()
        await stop_b()


def test_the_cache_is_bounded():
    from tkr_host._sessions import SessionCache
    from tkr_host.types import Member, Session

    cache = SessionCache(capacity=3)
    for i in range(5):
        cache.remember(Session(id=f"s{i}", created_by="a", created_at="t", members=[Member(id="a")]))
    assert len(cache) == 3
    # The least recently used go first; the newest stay.
    assert [f"s{i}" in cache for i in range(5)] == [False, False, True, True, True]


def test_the_cache_keeps_what_was_used_last():
    from tkr_host._sessions import SessionCache
    from tkr_host.types import Member, Session

    def session(name: str) -> Session:
        return Session(id=name, created_by="a", created_at="t", members=[Member(id="a")])

    cache = SessionCache(capacity=2)
    cache.remember(session("old"))
    cache.remember(session("new"))
    cache.remember(session("old"))  # used again: now the most recent
    cache.remember(session("third"))
    assert ("old" in cache, "new" in cache, "third" in cache) == (True, False, True)


class CountingStore:
    """The host's real store, counting its ``get_session`` reads."""

    def __init__(self, store) -> None:
        self.store = store
        self.reads = 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    async def get_session(self, session_id):
        self.reads += 1
        return await self.store.get_session(session_id)


async def test_a_cached_membership_is_answered_without_a_store_read(tkr_host, tkr_client):
    from tkr_host.types import Member

    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    store = CountingStore(tkr_host.host.store)
    cache = type(tkr_host.host.sessions)()  # a fresh cache of the host's own kind
    first = await cache.membership(store, session_id, Member(id="alice"))
    assert first is not None and first.id == session_id and store.reads == 1
    assert session_id in cache
    again = await cache.membership(store, session_id, Member(id="alice"))
    assert again is not None and again.id == session_id
    assert store.reads == 1  # the whole point of the cache
    # A member the cached copy does not list is read again (another node may have invited it).
    assert await cache.membership(store, session_id, Member(id="bob")) is not None
    assert store.reads == 2


async def test_an_unknown_session_is_not_cached(tkr_host):
    from tkr_host.types import Member

    store = CountingStore(tkr_host.host.store)
    cache = type(tkr_host.host.sessions)()
    assert await cache.membership(store, "no-such-session", Member(id="alice")) is None
    assert len(cache) == 0 and "no-such-session" not in cache
