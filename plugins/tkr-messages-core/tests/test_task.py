"""The task type and /tasks through a real host."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tkr_messages_core.lifecycle import ALLOWED, FINAL, check_move


def task(session_id: str, **payload) -> dict:
    return {"session_id": session_id, "client_id": f"c-{uuid.uuid4().hex[:10]}", "type": "task", "payload": payload}


async def setup(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["worker"])
    return alice, session_id


# --- the lifecycle table, without a host -------------------------------------------


#: PROTOCOL.md's lifecycle table, written out here (never read from the code).
STATES = ["submitted", "working", "input-required", "auth-required", "completed", "failed", "canceled", "rejected"]
DOCUMENTED_MOVES = {
    "submitted": {"working", "rejected", "canceled", "failed"},
    "working": {"input-required", "auth-required", "completed", "failed", "canceled"},
    "input-required": {"working", "canceled", "failed"},
    "auth-required": {"working", "canceled", "failed"},
}
DOCUMENTED_FINAL = {"completed", "failed", "canceled", "rejected"}


@pytest.mark.parametrize(("current", "target"), [(c, t) for c, targets in DOCUMENTED_MOVES.items() for t in sorted(targets)])
def test_every_allowed_move_passes(current, target):
    check_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c in STATES for t in STATES if t not in DOCUMENTED_MOVES.get(c, set()) and not (c == t and c not in DOCUMENTED_FINAL)],
)
def test_every_move_the_table_does_not_list_is_refused(current, target):
    from tkr_host import HostError

    with pytest.raises(HostError) as error:
        check_move(current, target)
    assert error.value.code == "conflict.task_state"


def test_the_code_knows_the_documented_table():
    assert {state: set(targets) for state, targets in ALLOWED.items()} == DOCUMENTED_MOVES
    assert set(FINAL) == DOCUMENTED_FINAL


@pytest.mark.parametrize("current", sorted(FINAL))
@pytest.mark.parametrize("target", ["working", "completed", "submitted", "canceled"])
def test_nothing_leaves_a_final_state(current, target):
    from tkr_host import HostError

    with pytest.raises(HostError) as error:
        check_move(current, target)
    assert error.value.code == "conflict.task_state"
    assert "reference_task_ids" in error.value.to_wire()["hint"]


def test_a_skipped_step_is_refused_with_the_allowed_moves_in_the_hint():
    from tkr_host import HostError

    with pytest.raises(HostError) as error:
        check_move("submitted", "completed")
    assert "working" in error.value.to_wire()["hint"]


# --- through the host ----------------------------------------------------------------


async def test_create_assign_work_and_complete_with_history(tkr_client):
    alice, session_id = await setup(tkr_client)
    worker = await tkr_client("worker", kind="agent", namespace="/agents")
    created = await alice.call("message:send", task(session_id, task_id="t1", action="create", title="Summarise", assignee="worker"))
    assert created["ok"], created
    delivered = await worker.wait_for("message", lambda m: m["type"] == "task")
    assert delivered["payload"]["task_id"] == "t1"
    assert (await worker.call("message:send", task(session_id, task_id="t1", action="update", state="working")))["ok"]
    done = await worker.call("message:send", task(session_id, task_id="t1", action="update", state="completed", status_text="done"))
    assert done["ok"], done
    tasks = await tkr_client("alice", namespace="/tasks")
    document = (await tasks.ok("task:get", {"session_id": session_id, "task_id": "t1"}))["task"]
    assert document["state"] == "completed" and document["status_text"] == "done"
    assert [(h["state"], h["by"]) for h in document["history"]] == [("submitted", "alice"), ("working", "worker"), ("completed", "worker")]
    assert document["created_by"] == "alice" and document["assignee"] == "worker"


async def test_an_illegal_move_is_refused_and_stores_nothing(tkr_client):
    alice, session_id = await setup(tkr_client)
    await alice.ok("message:send", task(session_id, task_id="t1", action="create"))
    refused = await alice.call("message:send", task(session_id, task_id="t1", action="update", state="completed"))
    assert refused["error"]["code"] == "conflict.task_state"
    assert refused["error"]["details"] == {"from": "submitted", "to": "completed"}
    assert [m["payload"]["action"] for m in await alice.history(session_id)] == ["create"]
    twice = await alice.call("message:send", task(session_id, task_id="t1", action="create"))
    assert twice["error"]["code"] == "conflict.task_exists"
    unknown = await alice.call("message:send", task(session_id, task_id="nope", action="update", state="working"))
    assert unknown["error"]["code"] == "not_found.task"


async def test_only_creator_assignee_or_session_creator_may_change_a_task(tkr_client):
    alice, session_id = await setup(tkr_client)
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    bob = await tkr_client("bob")
    await bob.ok("message:send", task(session_id, task_id="t-bob", action="create", assignee="worker"))
    carol_session = session_id
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "carol", "kind": "user"}})
    carol = await tkr_client("carol")
    refused = await carol.call("message:send", task(carol_session, task_id="t-bob", action="cancel"))
    assert refused["error"]["code"] == "permission.task"
    # alice created the session, so she may cancel bob's task.
    assert (await alice.call("message:send", task(session_id, task_id="t-bob", action="cancel")))["ok"]


async def test_an_artifact_sent_again_without_append_replaces_the_old_one(tkr_client):
    # docs/protocol.md: "with `append: true` its parts extend the artifact of that id
    # instead of replacing it": without `append`, the artifact of that id is replaced.
    alice, session_id = await setup(tkr_client)
    worker = await tkr_client("worker", kind="agent", namespace="/agents")
    await alice.ok("message:send", task(session_id, task_id="t1", action="create", assignee="worker"))
    for text in ("draft", "final"):
        await worker.ok("message:send", task(session_id, task_id="t1", action="update",
                                             artifact={"artifact_id": "a", "parts": [{"kind": "text", "text": text}]}))
    tasks = await tkr_client("alice", namespace="/tasks")
    document = (await tasks.ok("task:get", {"session_id": session_id, "task_id": "t1"}))["task"]
    assert [[part["text"] for part in artifact["parts"]] for artifact in document["artifacts"]] == [["final"]]


async def test_artifacts_append_and_reference_tasks(tkr_client):
    alice, session_id = await setup(tkr_client)
    worker = await tkr_client("worker", kind="agent", namespace="/agents")
    await alice.ok("message:send", task(session_id, task_id="t1", action="create", assignee="worker"))
    await worker.ok("message:send", task(session_id, task_id="t1", action="update", state="working",
                                         artifact={"artifact_id": "a", "name": "report", "parts": [{"kind": "text", "text": "Part 1. "}]}))
    await worker.ok("message:send", task(session_id, task_id="t1", action="update", artifact={
        "artifact_id": "a", "parts": [{"kind": "text", "text": "Part 2."}, {"kind": "data", "data": {"n": 2}}], "append": True, "last_chunk": True}))
    await worker.ok("message:send", task(session_id, task_id="t1", action="update", state="completed"))
    tasks = await tkr_client("alice", namespace="/tasks")
    document = (await tasks.ok("task:get", {"session_id": session_id, "task_id": "t1"}))["task"]
    assert document["artifacts"] == [{"artifact_id": "a", "name": "report", "last_chunk": True, "parts": [
        {"kind": "text", "text": "Part 1. "}, {"kind": "text", "text": "Part 2."}, {"kind": "data", "data": {"n": 2}}]}]
    follow = await alice.call("message:send", task(session_id, task_id="t2", action="create", reference_task_ids=["t1"]))
    assert follow["ok"]
    bad_part = await worker.call("message:send", task(session_id, task_id="t2", action="update", artifact={
        "artifact_id": "b", "parts": [{"kind": "video"}]}))
    assert bad_part["error"]["code"] == "validation.payload"


async def test_subscribers_get_a_snapshot_then_every_change(tkr_client):
    alice, session_id = await setup(tkr_client)
    await alice.ok("message:send", task(session_id, task_id="t1", action="create", assignee="worker", title="T"))
    follower = await tkr_client("alice", namespace="/tasks")
    await follower.ok("task:subscribe", {"session_id": session_id, "task_id": "t1"})
    snapshot = await follower.wait_for("task:update")
    assert snapshot["task"]["state"] == "submitted" and snapshot["task"]["title"] == "T"
    await alice.ok("message:send", task(session_id, task_id="t1", action="update", state="working"))
    change = await follower.wait_for("task:update", lambda u: u["task"]["state"] == "working")
    assert change["task"]["history"][-1]["state"] == "working"
    await follower.ok("task:unsubscribe", {"session_id": session_id, "task_id": "t1"})
    await alice.ok("message:send", task(session_id, task_id="t1", action="cancel"))
    # A sentinel: another task the follower still follows changes after the cancel.
    await alice.ok("message:send", task(session_id, task_id="t2", action="create"))
    await follower.ok("task:subscribe", {"session_id": session_id, "task_id": "t2"})
    await alice.ok("message:send", task(session_id, task_id="t2", action="cancel"))
    await follower.wait_for("task:update", lambda u: u["task"]["task_id"] == "t2" and u["task"]["state"] == "canceled")
    assert [u["task"]["state"] for u in follower.received("task:update") if u["task"]["task_id"] == "t1"] == ["submitted", "working"]


async def test_tasks_namespace_is_for_members_only(tkr_client):
    alice, session_id = await setup(tkr_client)
    await alice.ok("message:send", task(session_id, task_id="t1", action="create"))
    mallory = await tkr_client("mallory", namespace="/tasks")
    # PROTOCOL.md 1.1: to a non-member an existing task and a missing one answer the same.
    answers = []
    for event in ("task:get", "task:subscribe", "task:unsubscribe"):
        for ref in ({"session_id": session_id, "task_id": "t1"}, {"session_id": session_id, "task_id": "missing"},
                    {"session_id": "no-such-session", "task_id": "t1"}):
            error = (await mallory.call(event, ref))["error"]
            assert error["code"] == "not_found.task", (event, ref, error)
            answers.append((error["message"], error["hint"], error["details"]))
    # docs/protocol.md, `/tasks`: word for word "There is no such task.", hint "Check the session id and the task id."
    assert set(map(str, answers)) == {str(("There is no such task.", "Check the session id and the task id.", {}))}
    assert mallory.received("task:update") == []


async def test_two_sessions_may_use_the_same_task_id_without_learning_of_each_other(tkr_client):
    alice, first = await setup(tkr_client)
    bob = await tkr_client("bob")
    second = await bob.create_session(agents=["worker"])
    assert (await alice.call("message:send", task(first, task_id="shared", action="create", title="alice's")))["ok"]
    # Not conflict.task_exists: the id is unique within its session only.
    assert (await bob.call("message:send", task(second, task_id="shared", action="create", title="bob's")))["ok"]
    assert (await bob.call("message:send", task(second, task_id="shared", action="update", state="working")))["ok"]
    alice_tasks, bob_tasks = await tkr_client("alice", namespace="/tasks"), await tkr_client("bob", namespace="/tasks")
    mine = (await alice_tasks.ok("task:get", {"session_id": first, "task_id": "shared"}))["task"]
    theirs = (await bob_tasks.ok("task:get", {"session_id": second, "task_id": "shared"}))["task"]
    assert (mine["title"], mine["state"], mine["session_id"]) == ("alice's", "submitted", first)
    assert (theirs["title"], theirs["state"], theirs["session_id"]) == ("bob's", "working", second)
    # A subscriber of one session's task hears nothing of the other's.
    await alice_tasks.ok("task:subscribe", {"session_id": first, "task_id": "shared"})
    await bob.ok("message:send", task(second, task_id="shared", action="cancel"))
    await alice.ok("message:send", task(first, task_id="shared", action="cancel"))
    await alice_tasks.wait_for("task:update", lambda u: u["task"]["state"] == "canceled")
    assert {u["task"]["session_id"] for u in alice_tasks.received("task:update")} == {first}


async def test_concurrent_updates_cannot_both_pass_against_the_same_state(tkr_client):
    alice, session_id = await setup(tkr_client)
    await alice.ok("message:send", task(session_id, task_id="t1", action="create"))
    await alice.ok("message:send", task(session_id, task_id="t1", action="update", state="working"))
    acks = await asyncio.gather(
        alice.call("message:send", task(session_id, task_id="t1", action="update", state="completed")),
        alice.call("message:send", task(session_id, task_id="t1", action="update", state="failed")),
    )
    assert sorted(ack["ok"] for ack in acks) == [False, True]
    assert next(ack for ack in acks if not ack["ok"])["error"]["code"] == "conflict.task_state"


async def test_unsubscribe_is_for_members_only(tkr_client):
    alice, session_id = await setup(tkr_client)
    await alice.ok("message:send", task(session_id, task_id="t1", action="create"))
    mallory = await tkr_client("mallory", namespace="/tasks")
    assert (await mallory.call("task:unsubscribe", {"session_id": session_id, "task_id": "t1"}))["error"]["code"] == "not_found.task"


#: A documented way to bring a new (``submitted``) task to each non-final state.
PATH_TO = {"submitted": [], "working": ["working"], "input-required": ["working", "input-required"],
           "auth-required": ["working", "auth-required"]}


async def test_every_documented_move_is_accepted_through_the_host(tkr_client):
    # The table of docs/protocol.md, through message:send: a state the payload model did not
    # accept (a typo in its list of states) answers validation.payload here.
    alice, session_id = await setup(tkr_client)
    moves = [(current, target) for current, targets in DOCUMENTED_MOVES.items() for target in sorted(targets)]
    for number, (current, target) in enumerate(moves):
        task_id = f"t{number}"
        await alice.ok("message:send", task(session_id, task_id=task_id, action="create"))
        for step in [*PATH_TO[current], target]:
            ack = await alice.call("message:send", task(session_id, task_id=task_id, action="update", state=step))
            assert ack["ok"], (current, target, step, ack)
    tasks = await tkr_client("alice", namespace="/tasks")
    for number, (_, target) in enumerate(moves):
        assert (await tasks.ok("task:get", {"session_id": session_id, "task_id": f"t{number}"}))["task"]["state"] == target


async def test_a_move_back_to_submitted_is_a_lifecycle_conflict_not_a_bad_payload(tkr_client):
    # `submitted` is a state (docs/protocol.md), only no move leads to it.
    alice, session_id = await setup(tkr_client)
    await alice.ok("message:send", task(session_id, task_id="t1", action="create"))
    await alice.ok("message:send", task(session_id, task_id="t1", action="update", state="working"))
    refused = await alice.call("message:send", task(session_id, task_id="t1", action="update", state="submitted"))
    assert refused["error"]["code"] == "conflict.task_state"
    assert refused["error"]["details"] == {"from": "working", "to": "submitted"}


@pytest.mark.parametrize("event", ["task:subscribe", "task:unsubscribe", "task:get"])
async def test_tasks_events_take_strict_payloads(tkr_client, event):
    # docs/protocol.md, Acknowledgements: payloads are strict (an unknown key is refused, types
    # are not converted); `session_id` is 1-64 characters (the path of a message).
    _, session_id = await setup(tkr_client)
    tasks = await tkr_client("alice", namespace="/tasks")
    bad = [{"session_id": 5, "task_id": "t1"}, {"session_id": session_id, "task_id": "t1", "extra": 1},
           {"session_id": "", "task_id": "t1"}, {"session_id": "s" * 65, "task_id": "t1"}, {"session_id": session_id},
           {"task_id": "t1"}, {"session_id": session_id, "task_id": 1}]
    for payload in bad:
        ack = await tasks.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "validation.payload", (payload, ack)
    # At the bounds the payload is fine: the task is just not there.
    for edge in ("s", "s" * 64):
        ack = await tasks.call(event, {"session_id": edge, "task_id": "t1"})
        assert ack["ok"] is False and ack["error"]["code"] == "not_found.task", (edge, ack)


async def test_an_unsubscribed_socket_gets_no_more_updates(tkr_client):
    alice, session_id = await setup(tkr_client)
    await alice.ok("message:send", task(session_id, task_id="t1", action="create"))
    leaving = await tkr_client("alice", namespace="/tasks")
    staying = await tkr_client("alice", namespace="/tasks")
    for socket in (leaving, staying):
        await socket.ok("task:subscribe", {"session_id": session_id, "task_id": "t1"})
        await socket.wait_for("task:update")
    await leaving.ok("task:unsubscribe", {"session_id": session_id, "task_id": "t1"})
    await alice.ok("message:send", task(session_id, task_id="t1", action="update", state="working"))
    # The sentinel: the socket that stayed gets the change; the one that left would have by then.
    await staying.wait_for("task:update", lambda update: update["task"]["state"] == "working")
    assert [update["task"]["state"] for update in leaving.received("task:update")] == ["submitted"]


async def test_the_task_names_the_message_that_changed_it_last(tkr_client):
    # docs/protocol.md, `/tasks`: "`updated_by_message` is the id of the `task` message that made the change."
    alice, session_id = await setup(tkr_client)
    tasks = await tkr_client("alice", namespace="/tasks")
    for payload in ({"action": "create"}, {"action": "update", "state": "working"}):
        sent = await alice.ok("message:send", task(session_id, task_id="t1", **payload))
        document = (await tasks.ok("task:get", {"session_id": session_id, "task_id": "t1"}))["task"]
        assert document["updated_by_message"] == sent["message"]["id"]


async def test_an_update_by_another_member_reaches_the_tasks_assignee(tkr_client):
    # docs/protocol.md, the `task` row: the host "delivers the message [...] to the assignee
    # (unless the assignee sent it)", also when the update does not name the assignee again.
    alice, session_id = await setup(tkr_client)
    worker = await tkr_client("worker", kind="agent", namespace="/agents")
    await alice.ok("message:send", task(session_id, task_id="t1", action="create", assignee="worker"))
    update = await alice.ok("message:send", task(session_id, task_id="t1", action="update", status_text="any news?"))
    delivered = await worker.wait_for("message", lambda m: m["id"] == update["message"]["id"])
    assert delivered["payload"]["status_text"] == "any news?"


async def test_a_create_may_name_the_submitted_state_and_no_other(tkr_client):
    # docs/protocol.md: `create` makes a task `submitted`; a create "in a state other than
    # `submitted`" is conflict.task_state (the table of codes), so naming `submitted` is fine.
    alice, session_id = await setup(tkr_client)
    await alice.ok("message:send", task(session_id, task_id="t1", action="create", state="submitted"))
    refused = await alice.call("message:send", task(session_id, task_id="t2", action="create", state="working"))
    assert refused["error"]["code"] == "conflict.task_state", refused


async def test_a_task_created_with_nothing_but_its_id_has_every_field_empty(tkr_client):
    # docs/protocol.md, `/tasks`: the task's fields, and "a field never given is empty".
    alice, session_id = await setup(tkr_client)
    sent = await alice.ok("message:send", task(session_id, task_id="t1", action="create"))
    tasks = await tkr_client("alice", namespace="/tasks")
    document = (await tasks.ok("task:get", {"session_id": session_id, "task_id": "t1"}))["task"]
    assert set(document) == {"task_id", "session_id", "title", "description", "created_by", "assignee", "state", "status_text",
                             "artifacts", "reference_task_ids", "history", "updated_by_message"}
    assert (document["title"], document["description"], document["status_text"]) == ("", "", "")
    assert (document["assignee"], document["artifacts"], document["reference_task_ids"]) == (None, [], [])
    assert (document["task_id"], document["session_id"], document["created_by"], document["state"]) == ("t1", session_id, "alice", "submitted")
    assert document["updated_by_message"] == sent["message"]["id"]


async def test_a_task_keeps_what_its_create_gave_and_its_creator_may_change_it(tkr_client):
    # docs/protocol.md: the task's creator (here not the session's creator) may update it;
    # the task holds the fields its create gave; history entries are {state, at, by}.
    alice, session_id = await setup(tkr_client)
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    bob = await tkr_client("bob")
    await bob.ok("message:send", task(session_id, task_id="t1", action="create", status_text="queued", reference_task_ids=["t0"]))
    await bob.ok("message:send", task(session_id, task_id="t1", action="update", state="working"))
    tasks = await tkr_client("alice", namespace="/tasks")
    document = (await tasks.ok("task:get", {"session_id": session_id, "task_id": "t1"}))["task"]
    assert (document["status_text"], document["reference_task_ids"], document["state"]) == ("queued", ["t0"], "working")
    assert [set(entry) for entry in document["history"]] == [{"state", "at", "by"}] * 2
    assert [(entry["state"], entry["by"]) for entry in document["history"]] == [("submitted", "bob"), ("working", "bob")]
