"""StreamRegistry, directly: open streams by session and socket, and stopped
streams remembered for their agent only, within a bound (docs/protocol.md,
``stream:stop`` and ``conflict.stream_closed``)."""

from __future__ import annotations

from tkr_host._streams import MAX_STOPPED, OpenStream, StreamRegistry
from tkr_host.types import Principal

AGENT = Principal(id="helper", kind="agent")
OTHER = Principal(id="other", kind="agent")


def stream(message_id: str, session_id: str = "s1", sid: str = "sock-1", principal: Principal = AGENT) -> OpenStream:
    return OpenStream(message_id=message_id, session_id=session_id, principal=principal, sid=sid)


def test_chunks_add_up_and_are_reported_as_session_join_lists_them() -> None:
    reply = stream("m1")
    assert reply.add("Hel") == 0
    assert reply.add("lo") == 1
    assert reply.text == "Hello" and reply.length == 5
    assert reply.to_wire() == {"message_id": "m1", "sender": {"id": "helper", "kind": "agent"}, "index": 1, "text": "Hello"}


def test_open_streams_are_found_by_id_session_and_socket() -> None:
    registry = StreamRegistry()
    one, two, three = stream("m1"), stream("m2", sid="sock-2"), stream("m3", session_id="s2")
    for item in (one, two, three):
        registry.open(item)
    assert registry.get("m2") is two
    assert [s["message_id"] for s in registry.of_session("s1")] == ["m1", "m2"]
    assert registry.of_socket("sock-1") == [one, three]
    assert registry.close("m1") is one
    assert registry.close("m1") is None
    assert registry.get("m1") is None
    assert len(registry) == 2


def test_a_stopped_stream_is_remembered_for_its_own_agent_only() -> None:
    registry = StreamRegistry()
    reply = stream("m1")
    registry.open(reply)
    registry.close("m1")
    registry.mark_stopped(reply)
    assert registry.was_stopped("m1", "helper")
    assert not registry.was_stopped("m1", "other")  # another agent's chunk is not_found.stream
    registry.unmark_stopped("m1")
    assert not registry.was_stopped("m1", "helper")


def test_stopped_streams_are_bounded_and_the_oldest_go_first() -> None:
    registry = StreamRegistry()
    for index in range(3 * MAX_STOPPED):
        registry.mark_stopped(stream(f"m{index}"))
    assert not registry.was_stopped("m0", "helper")
    assert registry.was_stopped(f"m{3 * MAX_STOPPED - 1}", "helper")
    remembered = sum(registry.was_stopped(f"m{index}", "helper") for index in range(3 * MAX_STOPPED))
    assert remembered <= MAX_STOPPED
