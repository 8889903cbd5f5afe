"""A task or a context commits in the same transaction as its message
(PROTOCOL.md 1.1): both are stored, or neither. The test makes the second write
of the transaction fail for real, with an SQLite trigger on the test's own file."""

from __future__ import annotations

import sqlite3
import uuid

import pytest


def refuse_inserts_into(store_url: str, table: str) -> None:
    with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
        db.execute(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")


def send(session_id: str, type_: str, payload: dict) -> dict:
    return {"session_id": session_id, "client_id": f"c-{uuid.uuid4().hex[:10]}", "type": type_, "payload": payload}


@pytest.mark.parametrize(("table", "type_", "payload"), [
    ("tasks", "task", {"task_id": "t1", "action": "create", "title": "never half-stored"}),
    ("contexts", "context", {"context_id": "c1", "data": {"k": "v"}}),
])
async def test_a_message_whose_side_effect_cannot_be_saved_is_not_stored_either(tkr_client, tkr_host, tkr_store_url, table, type_, payload):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["worker"])
    refuse_inserts_into(tkr_store_url, table)
    refused = await alice.call("message:send", send(session_id, type_, payload))
    assert refused["ok"] is False
    # Nothing of it: no message, no seq taken, no task or context.
    assert await alice.history(session_id) == []
    assert (await tkr_host.host.store.get_session(session_id)).last_seq == 0
    assert await tkr_host.host.store.get_task(session_id, "t1") is None
    worker = await tkr_client("worker", kind="agent", namespace="/agents")
    assert (await worker.ok("context:list", {"session_id": session_id}))["contexts"] == []


async def test_a_task_and_its_message_name_each_other_once_stored(tkr_client, tkr_host):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["worker"])
    ack = await alice.ok("message:send", send(session_id, "task", {"task_id": "t1", "action": "create"}))
    document = await tkr_host.host.store.get_task(session_id, "t1")
    assert document["updated_by_message"] == ack["message"]["id"]
    [message] = await alice.history(session_id)
    assert message["id"] == ack["message"]["id"] and message["payload"]["task_id"] == "t1"
