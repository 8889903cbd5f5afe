"""Recovery through a real host and a real SQLite file that another process locks."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from tkr_host import HostAPI, RecoveryStrategy, hookimpl
from tkr_host.testing import deep_merge

FAST = {
    "plugins": {
        "store_peewee": {"sqlite_busy_timeout_s": 0.05},
        "recovery": {"retry_attempts": 2, "retry_base_delay_s": 0.01, "retry_max_delay_s": 0.02,
                     "breaker_failure_threshold": 3, "breaker_reset_s": 0.5},
    }
}


def lock(url: str) -> sqlite3.Connection:
    """Take SQLite's write lock from another connection, as another process would."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=5)
    connection.execute("BEGIN EXCLUSIVE")
    return connection


@pytest.mark.tkr_settings(FAST)
async def test_a_locked_store_opens_the_breaker_and_nothing_acked_is_lost(tkr_client, tkr_store_url, tkr_host):
    senders = [await tkr_client(f"user{i}") for i in range(20)]
    owner = senders[0]
    session_id = await owner.create_session()
    for sender in senders[1:]:
        await owner.ok("session:invite", {"session_id": session_id, "member": {"id": sender.principal_id, "kind": "user"}})
    acked: dict[str, str] = {}
    refused: list[dict] = []

    async def send_round(tag: str) -> None:
        acks = await asyncio.gather(*(s.send_text(session_id, f"{tag}-{s.principal_id}", client_id=f"{tag}-{s.principal_id}")
                                      for s in senders))
        for ack in acks:
            if ack["ok"]:
                acked[ack["client_id"]] = ack["message"]["id"]
            else:
                refused.append(ack)

    await send_round("before")
    holder = lock(tkr_store_url)
    try:
        for i in range(3):
            await send_round(f"locked{i}")
    finally:
        holder.rollback()
        holder.close()
    assert refused, "the locked store refused nothing"
    assert {ack["error"]["code"] for ack in refused} == {"store.unavailable"}
    assert all(ack["error"]["recoverable"] and ack["error"]["hint"] for ack in refused)
    assert any(ack["error"].get("details", {}).get("breaker") == "open" and ack["error"]["retry_after"] > 0 for ack in refused)
    await asyncio.sleep(0.6)  # the breaker half-opens
    # Every refused send is resent with its client_id, as the client SDK does.
    for ack in refused:
        sender = next(s for s in senders if ack["client_id"].endswith(s.principal_id))
        again = await sender.send_text(session_id, "resent", client_id=ack["client_id"])
        assert again["ok"], again
        acked[ack["client_id"]] = again["message"]["id"]
    stored = await owner.history(session_id, limit=200)
    assert {m["client_id"]: m["id"] for m in stored} == acked
    assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))
    assert tkr_host.host.extensions["recovery"].strategies[0].state == "closed"


class Probe:
    """A third-party strategy that counts the store operations it sees."""

    __name__ = "probe"

    def __init__(self) -> None:
        self.seen = 0
        self.name = "probe"
        self.handles = frozenset({"store"})

    @hookimpl
    def recovery_strategies(self, host: HostAPI) -> list[RecoveryStrategy]:
        return [self]

    async def run(self, operation, context):
        self.seen += 1
        return await operation()


PROBE = Probe()


@pytest.fixture
def tkr_plugins():
    return [PROBE]


@pytest.mark.tkr_settings({"plugins": {"recovery": {"order": ["circuit_breaker", "probe", "retry"]}}})
async def test_a_third_party_strategy_runs_where_the_order_puts_it(tkr_client):
    before = PROBE.seen
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    await alice.send_text(session_id, "guarded")
    assert PROBE.seen - before == 2  # create_session and append_message


LOCKED_FAST = {"plugins": {"store_peewee": {"sqlite_busy_timeout_s": 0.05},
                           "recovery": {"retry_attempts": 3, "retry_base_delay_s": 0.01, "retry_max_delay_s": 0.02,
                                        "breaker_failure_threshold": 100}}}


async def attempts_seen_by_probe(tkr_client, tkr_store_url) -> int:
    """How many times the probe ran for one send that the locked store refuses."""
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    holder = lock(tkr_store_url)
    try:
        before = PROBE.seen
        ack = await alice.send_text(session_id, "refused")
        assert ack["error"]["code"] == "store.unavailable"
        return PROBE.seen - before
    finally:
        holder.rollback()
        holder.close()


@pytest.mark.tkr_settings(deep_merge(LOCKED_FAST, {"plugins": {"recovery": {"order": ["retry", "probe"]}}}))
async def test_a_strategy_named_after_retry_runs_inside_it_once_per_attempt(tkr_client, tkr_store_url):
    # docs/configuration.md: `order` is outermost first, `retry_attempts` counts the first attempt.
    assert await attempts_seen_by_probe(tkr_client, tkr_store_url) == 3


@pytest.mark.tkr_settings(deep_merge(LOCKED_FAST, {"plugins": {"recovery": {"order": ["probe", "retry"]}}}))
async def test_a_strategy_named_before_retry_wraps_it_and_runs_once(tkr_client, tkr_store_url):
    assert await attempts_seen_by_probe(tkr_client, tkr_store_url) == 1


@pytest.mark.tkr_settings({"plugins": {"recovery": {"order": ["retry", "nope"]}}})
async def test_an_unknown_strategy_in_the_order_stops_start_up(tkr_settings, tkr_plugins):
    from tkr_host.testing import start_host

    # Hypercorn reports the start-up failure as a lifespan error carrying our message.
    with pytest.raises(Exception, match="unknown strategies: nope"):
        await start_host(tkr_settings, tkr_plugins)


