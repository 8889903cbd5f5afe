"""The documented nesting bound of an event payload, through a real host.

docs/protocol.md, "Transport and limits": a payload may nest objects and arrays 32
levels deep, the event's own object being level 1; a deeper one is refused with
`validation.payload` before anything is stored, `details.fields` naming the event's
top-level field, with the problem `nested deeper than 32 levels`.

Before the bound, a `session:create` whose `metadata` nested about 300 levels was
stored and then answered `internal.error`, and every later `session:list` of its
creator failed the same way.
"""

from __future__ import annotations

from typing import Any

import pytest

DOCUMENTED_DEPTH = 32
DOCUMENTED_PROBLEM = "nested deeper than 32 levels"


def nested_dicts(levels: int) -> Any:
    """A value that is ``levels`` levels of objects (1 for ``{"a": 1}``)."""
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def nested_lists(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def refused_field(ack: dict[str, Any]) -> dict[str, Any]:
    assert ack["ok"] is False and ack["error"]["code"] == "validation.payload", ack
    (field,) = ack["error"]["details"]["fields"]
    return dict(field)


@pytest.mark.parametrize("nest", [nested_dicts, nested_lists])
async def test_a_payload_of_32_levels_is_taken_and_33_refused(tkr_client: Any, nest: Any) -> None:
    alice = await tkr_client("alice")
    # The event's object is level 1, so `metadata` may hold 31 more.
    made = await alice.ok("session:create", {"metadata": {"deep": nest(DOCUMENTED_DEPTH - 2)}})
    assert made["session"]["metadata"] == {"deep": nest(DOCUMENTED_DEPTH - 2)}
    ack = await alice.call("session:create", {"metadata": {"deep": nest(DOCUMENTED_DEPTH - 1)}})
    assert refused_field(ack) == {"field": "metadata", "problem": DOCUMENTED_PROBLEM}


async def test_a_deeply_nested_metadata_is_refused_and_stores_nothing(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    before = await alice.ok("session:list", {})
    ack = await alice.call("session:create", {"title": "deep", "metadata": nested_dicts(300)})
    assert refused_field(ack) == {"field": "metadata", "problem": DOCUMENTED_PROBLEM}
    after = await alice.ok("session:list", {})
    assert after["sessions"] == before["sessions"]


async def test_a_message_nested_too_deep_is_refused_naming_payload(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session = (await alice.ok("session:create", {}))["session"]
    ack = await alice.call("message:send", {"session_id": session["id"], "type": "context",
                                            "payload": {"data": nested_lists(200)}, "client_id": "deep-1"})
    assert refused_field(ack) == {"field": "payload", "problem": DOCUMENTED_PROBLEM}
    history = await alice.ok("message:history", {"session_id": session["id"]})
    assert history["messages"] == []



def test_the_depth_walk_does_not_recurse() -> None:
    # The host measures a payload's size with the json encoder, which gives up near
    # Python's recursion limit; a payload past that is still refused for its depth, so the
    # walk that names its field must not recurse itself (its answer is the same one).
    from tkr_host.dispatch import too_deep

    assert too_deep({"metadata": nested_lists(5000)}) == "metadata"
    assert too_deep({"title": "t", "metadata": nested_dicts(DOCUMENTED_DEPTH - 2)}) is None
