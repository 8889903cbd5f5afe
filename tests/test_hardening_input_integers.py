"""Integers past any bound, over sockets and HTTP (issue 7, item 2).

docs/protocol.md ("Limits of integer fields"): every integer field of every
event and route lies in 0..2^53-1 (the integers every JavaScript client holds
exactly) or a narrower documented range. A value outside answers
``validation.payload`` naming the field (HTTP: 400 with an Error body), never
``internal.error``, a 500 or a traceback in the log.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Iterator
from types import ModuleType, UnionType
from typing import Any

import aiohttp
import annotated_types
import pytest
from pydantic import BaseModel

import tkr_host.namespaces.agents
import tkr_host.namespaces.chat
import tkr_host.namespaces.tasks
import tkr_host.pipeline

MAX_SAFE_INTEGER = 2**53 - 1
#: Past 64 bits and beyond; each once positive and once negative.
OUT_OF_RANGE = [2**53, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1, -(2**64), -1]


def fields_of(ack: dict[str, Any]) -> set[str]:
    return {problem["field"] for problem in ack["error"]["details"]["fields"]}


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    bad = [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]
    assert not bad, [record.getMessage() for record in bad]


async def test_every_integer_field_of_every_event_refuses_values_out_of_range(tkr_client, caplog):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    await alice.send_text(session_id, "one")

    def context(ttl: int) -> dict[str, Any]:
        return {"session_id": session_id, "client_id": f"ctx-{ttl}", "type": "context", "payload": {"context_id": "c", "data": {}, "ttl_s": ttl}}

    cases = [
        ("session:join", lambda value: {"session_id": session_id, "since_seq": value}, "since_seq"),
        ("message:history", lambda value: {"session_id": session_id, "before_seq": value}, "before_seq"),
        ("message:history", lambda value: {"session_id": session_id, "limit": value}, "limit"),
        ("message:receipt", lambda value: {"session_id": session_id, "seq": value, "status": "read"}, "seq"),
        ("message:send", context, "payload.ttl_s"),
    ]
    for event, build, field in cases:
        for value in OUT_OF_RANGE:
            ack = await alice.call(event, build(value))
            assert ack["ok"] is False and ack["error"]["code"] == "validation.payload", (event, value, ack)
            assert field in fields_of(ack), (event, value, ack)
    assert_no_traceback(caplog)


async def test_the_largest_safe_integer_is_still_accepted(tkr_client, caplog):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    await alice.send_text(session_id, "one")
    joined = await alice.ok("session:join", {"session_id": session_id, "since_seq": MAX_SAFE_INTEGER})
    assert joined["messages"] == []
    history = await alice.ok("message:history", {"session_id": session_id, "before_seq": MAX_SAFE_INTEGER})
    assert [m["seq"] for m in history["messages"]] == [1]
    receipt = await alice.call("message:receipt", {"session_id": session_id, "seq": MAX_SAFE_INTEGER, "status": "read"})
    assert receipt["error"]["code"] == "not_found.message"
    assert_no_traceback(caplog)


async def test_the_history_route_answers_400_for_any_number_out_of_range_or_not_a_whole_number(tkr_host, tkr_client, tkr_token, caplog):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    url = f"{tkr_host.url}/api/v1/sessions/{session_id}/messages"
    texts = [str(value) for value in OUT_OF_RANGE] + ["0", "1" * 5000, " 5", "5_0", "\u0665", "1e3", "0x10", ""]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {tkr_token('alice')}"}) as http:
        for name in ("before_seq", "limit"):
            for text in texts:
                async with http.get(url, params={name: text}) as response:
                    body = await response.json(content_type=None)
                    assert (response.status, body["error"]["code"]) == (400, "validation.payload"), (name, text, body)
                    assert body["error"]["hint"] and body["error"]["request_id"]
        async with http.get(url, params={"before_seq": str(MAX_SAFE_INTEGER), "limit": "200"}) as response:
            assert response.status == 200
    assert_no_traceback(caplog)


# --- the whole class: every integer field of every request model is bounded ----------------


REQUEST_MODULES: list[ModuleType] = [tkr_host.namespaces.chat, tkr_host.namespaces.agents, tkr_host.namespaces.tasks, tkr_host.pipeline]


def models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from models_in(argument)


def is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, UnionType, typing.Annotated):
        return any(is_int(argument) for argument in typing.get_args(annotation))
    return False


def unbounded_integers(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[str]:
    """``Model.field`` for each integer field without bounds inside the safe range."""
    if model in seen:
        return []
    seen.add(model)
    found = []
    for name, info in model.model_fields.items():
        if is_int(info.annotation):
            low = next((m.ge if isinstance(m, annotated_types.Ge) else m.gt for m in info.metadata
                        if isinstance(m, annotated_types.Ge | annotated_types.Gt)), None)
            high = next((m.le if isinstance(m, annotated_types.Le) else m.lt for m in info.metadata
                         if isinstance(m, annotated_types.Le | annotated_types.Lt)), None)
            if low is None or high is None or low < -MAX_SAFE_INTEGER or high > MAX_SAFE_INTEGER:
                found.append(f"{model.__module__}.{model.__name__}.{name}")
        for nested in models_in(info.annotation):
            found += unbounded_integers(nested, seen)
    return found


async def test_every_integer_field_of_every_request_model_has_bounds(tkr_host):
    models = [value for module in REQUEST_MODULES for value in vars(module).values()
              if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__]
    models += [message_type.payload_model for message_type in tkr_host.host.message_types.values()]
    assert len(models) > 10
    seen: set[type[BaseModel]] = set()
    assert [field for model in models for field in unbounded_integers(model, seen)] == []
