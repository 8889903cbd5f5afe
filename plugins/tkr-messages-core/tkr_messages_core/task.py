"""The ``task`` type: A2A-style tasks with a lifecycle, artifacts and history.

The check of a move and the save of the new task document both run under
the session's lock (``ctx.checks`` and ``ctx.after_store``), so two updates
of one task cannot both pass against the same old state.
"""

from __future__ import annotations

import copy
import uuid
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from tkr_host import HostError, Message, MessageContext, MessageDraft, TaskWrite, format_ts, utc_now
from tkr_messages_core.lifecycle import TaskState, check_move


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class TextPart(Strict):
    kind: Literal["text"]
    text: str = Field(max_length=65_536)


class DataPart(Strict):
    kind: Literal["data"]
    data: dict[str, Any]


class UrlPart(Strict):
    kind: Literal["url"]
    url: str = Field(min_length=1, max_length=4096)
    media_type: str | None = Field(default=None, max_length=200)
    filename: str | None = Field(default=None, max_length=500)


Part = Annotated[TextPart | DataPart | UrlPart, Field(discriminator="kind")]


class Artifact(Strict):
    artifact_id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=200)
    parts: list[Part] = Field(max_length=100)
    append: bool = False
    last_chunk: bool = False


class TaskPayload(Strict):
    task_id: str = Field(min_length=1, max_length=128)
    action: Literal["create", "update", "cancel"]
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=8000)
    assignee: str | None = Field(default=None, min_length=1, max_length=200)
    state: TaskState | None = None
    status_text: str | None = Field(default=None, max_length=4000)
    artifact: Artifact | None = None
    reference_task_ids: list[str] | None = Field(default=None, max_length=50)


class TaskType:
    """Enforces the lifecycle, stores the task, and tells ``/tasks`` subscribers."""

    name: ClassVar[str] = "task"
    payload_model: ClassVar[type[BaseModel]] = TaskPayload

    async def handle(self, ctx: MessageContext, draft: MessageDraft) -> None:
        request = TaskPayload.model_validate(draft.payload)
        if request.assignee is not None and request.assignee not in ctx.session.agent_ids():
            raise HostError("validation.recipient", message="The assignee must be an agent of the session.")
        # The message's id is chosen now, so that the task document can name the
        # message that made it and be saved in the message's own transaction.
        draft.id = draft.id or str(uuid.uuid4())
        document: dict[str, Any] = {}

        async def check(checked: MessageDraft) -> None:
            # Under the session's lock: the state the move is checked against
            # cannot change before the message and the task commit together.
            current = await ctx.host.store.get_task(ctx.session.id, request.task_id)
            document.update(apply(current, request, ctx), updated_by_message=checked.id)
            checked.writes.append(TaskWrite(ctx.session.id, request.task_id, document))

        async def publish(message: Message) -> None:
            await ctx.host.publish_task(document)

        ctx.checks.append(check)
        ctx.after_store.append(publish)
        # The assignee gets the message (on /agents) unless it sent it itself.
        current = await ctx.host.store.get_task(ctx.session.id, request.task_id)
        assignee = request.assignee or (current or {}).get("assignee")
        if assignee and assignee != ctx.principal.id:
            ctx.deliver_to.add(assignee)


def apply(current: dict[str, Any] | None, request: TaskPayload, ctx: MessageContext) -> dict[str, Any]:
    """The task document after ``request``, or HostError when it is not allowed."""
    now, actor = format_ts(utc_now()), ctx.principal.id
    if request.action == "create":
        if current is not None:
            raise HostError("conflict.task_exists", message="A task with that task_id already exists.",
                            hint="Use action update, or pick a new task_id.")
        if request.state not in (None, "submitted"):
            raise HostError("conflict.task_state", message="A new task starts as submitted.", hint="Leave `state` out on create.")
        document: dict[str, Any] = {
            "task_id": request.task_id, "session_id": ctx.session.id, "title": request.title or "", "description": request.description or "",
            "created_by": actor, "assignee": request.assignee, "state": "submitted", "status_text": request.status_text or "",
            "artifacts": [], "reference_task_ids": request.reference_task_ids or [], "history": [{"state": "submitted", "at": now, "by": actor}],
        }
    else:
        if current is None:
            raise HostError("not_found.task", message="There is no such task in this session.",
                            hint="Create the task first, or check its id.")
        if actor not in {current.get("created_by"), current.get("assignee"), ctx.session.created_by}:
            raise HostError("permission.task")
        document = copy.deepcopy(current)
        target = "canceled" if request.action == "cancel" else (request.state or current["state"])
        check_move(current["state"], target)
        if target != current["state"]:
            document["state"] = target
            document["history"].append({"state": target, "at": now, "by": actor})
        for key in ("title", "description", "assignee", "status_text", "reference_task_ids"):
            value = getattr(request, key)
            if value is not None:
                document[key] = value
    if request.artifact is not None:
        merge_artifact(document["artifacts"], request.artifact)
    return document


def merge_artifact(artifacts: list[dict[str, Any]], artifact: Artifact) -> None:
    """Add or replace an artifact; ``append`` extends the parts of the one with that id."""
    incoming = artifact.model_dump(mode="json", exclude={"append"}, exclude_none=True)
    for existing in artifacts:
        if existing["artifact_id"] == artifact.artifact_id:
            if artifact.append:
                existing["parts"].extend(incoming["parts"])
                existing["last_chunk"] = artifact.last_chunk
                if artifact.name is not None:
                    existing["name"] = artifact.name
            else:
                existing.clear()
                existing.update(incoming)
            return
    artifacts.append(incoming)
