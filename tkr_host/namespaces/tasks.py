"""``/tasks``: following the state of tasks (PROTOCOL.md, ``/tasks``).

Only members of a task's session may read or follow it. A subscription first
receives the whole task as ``task:update``, then every change.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tkr_host.dispatch import NamespaceSpec
from tkr_host.errors import HostError
from tkr_host.host import Connection, Host
from tkr_host.pipeline import member_session
from tkr_host.rooms import task_room


class TaskRef(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    task_id: str = Field(min_length=1, max_length=128)


async def readable_task(host: Host, conn: Connection, task_id: str) -> dict[str, Any]:
    """The task document, when the principal is a member of its session."""
    document = await host.store.get_task(task_id)
    if document is None:
        raise HostError("not_found.task", message="There is no such task.", hint="Check the task id.")
    await member_session(host, conn, document["session_id"])
    return document


async def subscribe(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = TaskRef.model_validate(data)
    await readable_task(host, conn, request.task_id)
    await host.sio.enter_room(conn.sid, task_room(request.task_id), namespace="/tasks")
    try:
        # Read again after joining the room, so no change falls between the two.
        await host.publish_task(await readable_task(host, conn, request.task_id), to=conn.sid)
    except BaseException:
        await host.sio.leave_room(conn.sid, task_room(request.task_id), namespace="/tasks")
        raise
    return {}


async def unsubscribe(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = TaskRef.model_validate(data)
    await readable_task(host, conn, request.task_id)  # members only, as for subscribe
    await host.sio.leave_room(conn.sid, task_room(request.task_id), namespace="/tasks")
    return {}


async def get(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = TaskRef.model_validate(data)
    return {"task": await readable_task(host, conn, request.task_id)}


def namespace() -> NamespaceSpec:
    return NamespaceSpec(path="/tasks", events={"task:subscribe": subscribe, "task:unsubscribe": unsubscribe, "task:get": get})
