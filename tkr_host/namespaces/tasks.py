"""``/tasks``: following the state of tasks (PROTOCOL.md, ``/tasks``).

Tasks are keyed by ``(session_id, task_id)``. Only members of a task's session
may read or follow it, and to anyone else an existing task and a missing one
answer the same ``not_found.task``, so that nobody learns which ids a session
they cannot see uses. A subscription first receives the whole task as
``task:update``, then every change.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tkr_host._host import Connection, Host
from tkr_host.dispatch import NamespaceSpec
from tkr_host.errors import HostError
from tkr_host.rooms import task_room


class TaskRef(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    session_id: str = Field(min_length=1, max_length=64)
    task_id: str = Field(min_length=1, max_length=128)


def no_such_task() -> HostError:
    return HostError("not_found.task", message="There is no such task.", hint="Check the session id and the task id.")


async def readable_task(host: Host, conn: Connection, ref: TaskRef) -> dict[str, Any]:
    """The task document, when the principal is a member of its session.

    A non-member, an unknown session and an unknown task all answer the same
    error, with no security event either way: nothing tells them apart.
    """
    member = conn.principal.member()
    session = await host.sessions.membership(host.store, ref.session_id, member)
    if session is None or not session.has_member(member):
        raise no_such_task()
    document = await host.store.get_task(ref.session_id, ref.task_id)
    if document is None:
        raise no_such_task()
    return document


async def subscribe(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    ref = TaskRef.model_validate(data)
    await readable_task(host, conn, ref)
    room = task_room(ref.session_id, ref.task_id)
    # Under the session's lock, as a task message's store-and-publish is: the
    # snapshot and the room join happen between two changes, so the subscriber
    # gets every change after its snapshot and none before it.
    async with host.sequencer.hold(ref.session_id):
        await host.sio.enter_room(conn.sid, room, namespace="/tasks")
        try:
            await host.publish_task(await readable_task(host, conn, ref), to=conn.sid)
        except BaseException:
            await host.sio.leave_room(conn.sid, room, namespace="/tasks")
            raise
    return {}


async def unsubscribe(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    ref = TaskRef.model_validate(data)
    await readable_task(host, conn, ref)  # members only, as for subscribe
    await host.sio.leave_room(conn.sid, task_room(ref.session_id, ref.task_id), namespace="/tasks")
    return {}


async def get(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    return {"task": await readable_task(host, conn, TaskRef.model_validate(data))}


def namespace() -> NamespaceSpec:
    return NamespaceSpec(path="/tasks", events={"task:subscribe": subscribe, "task:unsubscribe": unsubscribe, "task:get": get})
