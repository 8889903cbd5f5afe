"""`validation.payload`'s `details.fields` and message, as docs/protocol.md ("Error") gives them.

Up to 20 problems `{field, problem}`, dotted field names (a list item by its index),
`payload.<field>` inside a message's payload and `payload` for the payload as a whole,
`(unknown field)` for an unknown key, `(key)` for a client's key that is not a plain
name, an unknown tag named by its field and the values it takes, and the message
`Invalid fields: <field>, <field>.`. The payload-size check of the acknowledgements
section is here too: a payload of exactly `host.max_payload_bytes` passes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tkr_host.testing import TkrClient

Payload = dict[str, Any]


def refused_fields(ack: Payload) -> list[Payload]:
    assert ack["ok"] is False and ack["error"]["code"] == "validation.payload", ack
    fields: list[Payload] = ack["error"]["details"]["fields"]
    assert all(set(problem) == {"field", "problem"} and problem["problem"] for problem in fields), fields
    return fields


def text_message(session_id: str, payload: Payload, type_: str = "text") -> Payload:
    return {"session_id": session_id, "client_id": f"c-{json.dumps(payload, sort_keys=True)}"[:64], "type": type_, "payload": payload}


async def test_the_documented_example_of_an_invalid_payload(tkr_client: Any) -> None:
    alice: TkrClient = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.call("message:send", text_message(session_id, {"text": ""}))
    # docs/protocol.md's example, word for word.
    assert refused_fields(ack) == [{"field": "payload.text", "problem": "String should have at least 1 character"}]
    assert ack["error"]["message"] == "Invalid fields: payload.text."


async def test_a_field_of_an_event_is_named_alone_and_a_list_item_by_its_index(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    limit = await alice.call("message:history", {"session_id": session_id, "limit": "5"})
    assert [problem["field"] for problem in refused_fields(limit)] == ["limit"]
    assert limit["error"]["message"] == "Invalid fields: limit."
    agents = await alice.call("session:create", {"agents": ["echo", 5, 6]})
    assert [problem["field"] for problem in refused_fields(agents)] == ["agents.1", "agents.2"]
    assert agents["error"]["message"] == "Invalid fields: agents.1, agents.2."


async def test_an_unknown_key_is_named_unknown_field(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    top = await alice.call("session:create", {"title": "t", "colour": "red"})
    assert [problem["field"] for problem in refused_fields(top)] == ["(unknown field)"]
    inner = await alice.call("message:send", text_message(session_id, {"text": "hi", "colour": "red"}))
    assert [problem["field"] for problem in refused_fields(inner)] == ["payload.(unknown field)"]


async def test_at_most_20_problems_are_listed(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    ack = await alice.call("session:create", {"agents": list(range(30))})
    fields = refused_fields(ack)
    assert len(fields) == 20
    assert {problem["field"] for problem in fields} <= {f"agents.{i}" for i in range(30)}


async def test_a_key_that_is_not_a_plain_name_is_named_key(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    # The value is not JSON (NaN), so the host names where it is: under a key of the client's.
    ack = await alice.call("session:create", {"metadata": {"a<b>": float("nan"), "fine": 1}})
    assert [problem["field"] for problem in refused_fields(ack)] == ["metadata.(key)"]
    assert ack["error"]["message"] == "Invalid fields: metadata.(key)."


@pytest.mark.parametrize("payload", [{"action": "bogus-tag"}, {"action": "vote-again", "poll_id": "p", "option": 0}])
async def test_an_unknown_tag_is_a_problem_of_the_payload_naming_the_values_it_takes(tkr_client: Any, payload: Payload) -> None:
    # tkr-poll's payload is told apart by `action` (docs/writing-a-plugin.md).
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.call("message:send", text_message(session_id, payload, type_="poll"))
    assert refused_fields(ack) == [{"field": "payload", "problem": "The value of 'action' must be one of 'open', 'vote'"}]
    assert ack["error"]["message"] == "Invalid fields: payload."


@pytest.mark.tkr_settings({"host": {"max_payload_bytes": 1000}})
async def test_a_payload_of_exactly_max_payload_bytes_passes(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    payload = text_message(session_id, {"text": ""})
    # docs/configuration.md: counted as UTF-8 bytes of the payload's compact JSON; "é" is 2 of them.
    base = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    payload["payload"]["text"] = "é" * ((1000 - base) // 2) + "e" * ((1000 - base) % 2)
    assert len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()) == 1000
    assert (await alice.call("message:send", payload))["ok"] is True
    payload["payload"]["text"] += "e"  # refused by its size before anything else is looked at
    over = await alice.call("message:send", payload)
    assert over["error"]["code"] == "validation.too_large" and over["error"]["details"] == {"size": 1001, "limit": 1000}


async def test_a_value_that_is_not_json_is_named_with_the_documented_problem(tkr_client: Any) -> None:
    # docs/protocol.md, Acknowledgements: the three problems of a value that is not JSON.
    alice = await tkr_client("alice")
    cases = [
        ({"metadata": {"score": float("inf")}}, "metadata.score", "NaN and Infinity are not JSON numbers"),
        ({"title": "a\ud800b"}, "title", "a string with a lone surrogate, which is not valid UTF-8"),
        ({"metadata": {"notes": {"\udfff": 1}}}, "metadata.notes", "a key with a lone surrogate, which is not valid UTF-8"),
        ({"\ud800": 1}, "", "a key with a lone surrogate, which is not valid UTF-8"),
    ]
    for payload, field, problem in cases:
        ack = await alice.call("session:create", payload)
        assert refused_fields(ack) == [{"field": field, "problem": problem}], payload
        assert ack["error"]["message"] == f"Invalid fields: {field or '(payload)'}."
