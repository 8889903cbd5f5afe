"""Presence, directly: per member, not per socket, and agent statuses that lapse
with their agent (docs/protocol.md, "Presence" and "Agent status")."""

from __future__ import annotations

from tkr_host._presence import Presence
from tkr_host.types import Member

ALICE = Member(id="alice", kind="user")
AGENT = Member(id="helper", kind="agent")


def test_a_member_goes_online_with_its_first_socket_only() -> None:
    presence = Presence()
    assert presence.arrive("s1", ALICE, "tab-1") is True
    assert presence.arrive("s1", ALICE, "tab-2") is False  # a second tab sends no second online
    assert presence.arrive("s2", ALICE, "tab-1") is True  # per session


def test_a_member_goes_offline_with_its_last_socket_only() -> None:
    presence = Presence()
    presence.arrive("s1", ALICE, "tab-1")
    presence.arrive("s1", ALICE, "tab-2")
    assert presence.depart("s1", "alice", "tab-1") is False
    assert presence.depart("s1", "alice", "tab-2") is True
    assert len(presence) == 0


def test_departing_twice_or_unknown_is_no_offline() -> None:
    presence = Presence()
    presence.arrive("s1", ALICE, "tab-1")
    assert presence.depart("s1", "alice", "other-socket") is False
    assert presence.depart("s1", "bob", "tab-1") is False
    assert presence.depart("s1", "alice", "tab-1") is True
    assert presence.depart("s1", "alice", "tab-1") is False


def test_only_an_online_agent_has_a_status() -> None:
    presence = Presence()
    assert presence.set_status("s1", AGENT, "thinking", None) is None
    presence.arrive("s1", AGENT, "agent-sock")
    status = presence.set_status("s1", AGENT, "working", "step 2")
    assert status is not None and status.to_wire()["state"] == "working"
    assert status.to_wire()["detail"] == "step 2"
    assert [s.agent.id for s in presence.statuses("s1")] == ["helper"]
    assert presence.statuses("s2") == []


def test_a_status_lapses_when_the_agent_goes_offline_in_the_session() -> None:
    presence = Presence()
    presence.arrive("s1", AGENT, "agent-sock")
    presence.set_status("s1", AGENT, "thinking", None)
    assert presence.latest_state("helper") == "thinking"
    presence.depart("s1", "helper", "agent-sock")
    assert presence.statuses("s1") == []
    assert presence.latest_state("helper") is None
    # Back online: no status until it sets one again.
    presence.arrive("s1", AGENT, "agent-sock-2")
    assert presence.statuses("s1") == []
