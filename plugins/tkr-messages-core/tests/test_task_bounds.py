"""The documented bounds of a `task` payload and of the `/tasks` events, at both edges.

Every number here is docs/protocol.md's ("Built-in message types", the `task` row and
the Part/artifact paragraph; "`/tasks`"), never the code's: a length at its bound is
accepted, one past it answers `validation.payload` and stores nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

Payload = dict[str, Any]


def task(session_id: str, **payload: Any) -> Payload:
    return {"session_id": session_id, "client_id": f"c-{uuid.uuid4().hex[:10]}", "type": "task", "payload": payload}


def artifact(**fields: Any) -> Payload:
    return {"artifact": {"artifact_id": "a", "parts": [{"kind": "text", "text": "x"}], **fields}}


def url_part(**fields: Any) -> Payload:
    return artifact(parts=[{"kind": "url", "url": "https://example.test/r", **fields}])


#: (what, the fields of a `create`, accepted at the bound or not). docs/protocol.md:
#: task_id 1–128, title ≤ 200, description ≤ 8000, status_text ≤ 4000, reference_task_ids
#: ≤ 50; an artifact's artifact_id 1–128, name ≤ 200, parts ≤ 100; a text Part's text
#: ≤ 65536; a url Part's url 1–4096, media_type ≤ 200, filename ≤ 500.
CASES: list[tuple[str, Payload, bool]] = [
    ("task_id of 1", {"task_id": "t"}, True),
    ("task_id of 128", {"task_id": "t" * 128}, True),
    ("empty task_id", {"task_id": ""}, False),
    ("task_id of 129", {"task_id": "t" * 129}, False),
    ("title of 200", {"title": "x" * 200}, True),
    ("title of 201", {"title": "x" * 201}, False),
    ("description of 8000", {"description": "x" * 8000}, True),
    ("description of 8001", {"description": "x" * 8001}, False),
    ("status_text of 4000", {"status_text": "x" * 4000}, True),
    ("status_text of 4001", {"status_text": "x" * 4001}, False),
    ("50 reference_task_ids", {"reference_task_ids": [f"r{i}" for i in range(50)]}, True),
    ("51 reference_task_ids", {"reference_task_ids": [f"r{i}" for i in range(51)]}, False),
    ("artifact_id of 1", artifact(artifact_id="a"), True),
    ("artifact_id of 128", artifact(artifact_id="a" * 128), True),
    ("empty artifact_id", artifact(artifact_id=""), False),
    ("artifact_id of 129", artifact(artifact_id="a" * 129), False),
    ("artifact name of 200", artifact(name="n" * 200), True),
    ("artifact name of 201", artifact(name="n" * 201), False),
    ("100 parts", artifact(parts=[{"kind": "text", "text": "x"}] * 100), True),
    ("101 parts", artifact(parts=[{"kind": "text", "text": "x"}] * 101), False),
    ("text of 65536", artifact(parts=[{"kind": "text", "text": "x" * 65536}]), True),
    ("text of 65537", artifact(parts=[{"kind": "text", "text": "x" * 65537}]), False),
    ("url of 1", artifact(parts=[{"kind": "url", "url": "u"}]), True),
    ("url of 4096", artifact(parts=[{"kind": "url", "url": "u" * 4096}]), True),
    ("empty url", artifact(parts=[{"kind": "url", "url": ""}]), False),
    ("url of 4097", artifact(parts=[{"kind": "url", "url": "u" * 4097}]), False),
    ("media_type of 200", url_part(media_type="m" * 200), True),
    ("media_type of 201", url_part(media_type="m" * 201), False),
    ("filename of 500", url_part(filename="f" * 500), True),
    ("filename of 501", url_part(filename="f" * 501), False),
]


@pytest.mark.parametrize(("fields", "accepted"), [pytest.param(f, a, id=what) for what, f, a in CASES])
async def test_a_task_payload_is_accepted_at_its_bound_and_refused_past_it(tkr_client: Any, fields: Payload, accepted: bool) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.call("message:send", task(session_id, **{"task_id": "t1", "action": "create", **fields}))
    if accepted:
        assert ack["ok"], ack
    else:
        assert ack["ok"] is False and ack["error"]["code"] == "validation.payload", ack
        assert await alice.history(session_id) == []


@pytest.mark.parametrize(("assignee", "code"), [("w", "validation.recipient"), ("w" * 200, "validation.recipient"),
                                                  ("w" * 201, "validation.payload"), ("", "validation.payload")])
async def test_an_assignee_is_an_agent_id_of_1_to_200_characters(tkr_client: Any, assignee: str, code: str) -> None:
    # Within 1–200 the payload is fine and the next check answers: no such agent in the session.
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.call("message:send", task(session_id, task_id="t1", action="create", assignee=assignee))
    assert ack["ok"] is False and ack["error"]["code"] == code, ack


async def test_append_and_last_chunk_are_false_when_left_out(tkr_client: Any) -> None:
    # docs/protocol.md: "`append` and `last_chunk` false when left out"; the task keeps
    # each artifact as {artifact_id, name?, parts, last_chunk}.
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    await alice.ok("message:send", task(session_id, task_id="t1", action="create", **artifact(last_chunk=True)))
    await alice.ok("message:send", task(session_id, task_id="t1", action="update", **artifact()))
    tasks = await tkr_client("alice", namespace="/tasks")
    document = (await tasks.ok("task:get", {"session_id": session_id, "task_id": "t1"}))["task"]
    assert document["artifacts"] == [{"artifact_id": "a", "parts": [{"kind": "text", "text": "x"}], "last_chunk": False}]


@pytest.mark.parametrize("event", ["task:subscribe", "task:unsubscribe", "task:get"])
async def test_tasks_events_take_a_task_id_of_1_to_128_characters(tkr_client: Any, event: str) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    tasks = await tkr_client("alice", namespace="/tasks")
    for task_id in ("t", "t" * 128):  # fine: the task is just not there
        ack = await tasks.call(event, {"session_id": session_id, "task_id": task_id})
        assert ack["ok"] is False and ack["error"]["code"] == "not_found.task", (task_id, ack)
    for task_id in ("", "t" * 129):
        ack = await tasks.call(event, {"session_id": session_id, "task_id": task_id})
        assert ack["ok"] is False and ack["error"]["code"] == "validation.payload", (task_id, ack)


@pytest.mark.parametrize("fields", [
    pytest.param({"colour": "red"}, id="unknown key"),
    pytest.param(artifact(colour="red"), id="unknown artifact key"),
    pytest.param(artifact(append="true"), id="append as a string"),
    pytest.param(artifact(last_chunk=1), id="last_chunk as a number"),
    pytest.param(artifact(parts=[{"kind": "text", "text": "x", "colour": "red"}]), id="unknown Part key"),
])
async def test_a_task_payload_is_strict(tkr_client: Any, fields: Payload) -> None:
    # docs/protocol.md, Acknowledgements: the built-in types' payloads are strict: an unknown
    # key is refused, and types are not converted.
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.call("message:send", task(session_id, **{"task_id": "t1", "action": "create", **fields}))
    assert ack["ok"] is False and ack["error"]["code"] == "validation.payload", ack


async def test_an_appended_chunk_renames_its_artifact_when_it_names_it(tkr_client: Any) -> None:
    # docs/protocol.md: with `append: true`, "a `name` it gives renames the artifact".
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    await alice.ok("message:send", task(session_id, task_id="t1", action="create", **artifact(name="draft")))
    await alice.ok("message:send", task(session_id, task_id="t1", action="update", **artifact(name="final", append=True)))
    tasks = await tkr_client("alice", namespace="/tasks")
    document = (await tasks.ok("task:get", {"session_id": session_id, "task_id": "t1"}))["task"]
    assert [(a["name"], len(a["parts"])) for a in document["artifacts"]] == [("final", 2)]
