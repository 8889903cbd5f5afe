"""Tasks (the ``task`` message type): helpers to move one through its states,
and :class:`TaskWatcher`, which follows tasks on ``/tasks``.

The states follow the A2A lifecycle: ``submitted`` → ``working`` →
``completed`` (or ``input-required``, ``failed``, ``canceled``, ``rejected``).
Each helper sends one ``task`` message through the agent's offline queue and
returns the ack's ``{id, seq, ts}``; an illegal move raises ``ConflictError``
(``conflict.task_state``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Any

from tkr_client.connection import Backoff, Link, StateChange, TokenSource, Urls
from tkr_client.errors import TkrError, client_error
from tkr_client.types import FINAL_TASK_STATES, Message, SentMessage

if TYPE_CHECKING:
    from tkr_client.agent import Agent


def text_part(text: str) -> dict[str, Any]:
    return {"kind": "text", "text": text}


def data_part(data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "data", "data": data}


class Task:
    """One task of one session, as the agent sees it."""

    def __init__(self, agent: Agent, session_id: str, task_id: str, payload: dict[str, Any], message: Message | None = None) -> None:
        self._agent = agent
        self.session_id = session_id
        self.task_id = task_id
        self.payload = payload
        #: The ``task`` message that brought it (None for a task this agent creates).
        self.message = message
        self._artifacts = 0

    @classmethod
    def from_message(cls, agent: Agent, message: Message) -> Task:
        payload = message["payload"]
        return cls(agent, message["session_id"], str(payload["task_id"]), payload, message)

    @classmethod
    def new(cls, agent: Agent, session_id: str, *, assignee: str, title: str, description: str | None = None,
            task_id: str | None = None, reference_task_ids: list[str] | None = None) -> Task:
        payload: dict[str, Any] = {"task_id": task_id or f"t-{uuid.uuid4().hex[:16]}", "action": "create", "assignee": assignee,
                                   "title": title}
        if description is not None:
            payload["description"] = description
        if reference_task_ids:
            payload["reference_task_ids"] = reference_task_ids
        return cls(agent, session_id, payload["task_id"], payload)

    @property
    def title(self) -> str:
        return str(self.payload.get("title") or "")

    @property
    def description(self) -> str:
        return str(self.payload.get("description") or "")

    @property
    def action(self) -> str:
        return str(self.payload.get("action") or "")

    @property
    def assignee(self) -> str | None:
        value = self.payload.get("assignee")
        return value if isinstance(value, str) else None

    async def _send(self, payload: dict[str, Any]) -> SentMessage:
        return await self._agent.send(self.session_id, "task", {"task_id": self.task_id, **payload})

    async def create(self) -> SentMessage:
        return await self._send({key: value for key, value in self.payload.items() if key != "task_id"})

    async def update(self, state: str | None = None, status_text: str | None = None, artifact: dict[str, Any] | None = None) -> SentMessage:
        """One ``update``: a new state, a status text, an artifact, or several."""
        payload: dict[str, Any] = {"action": "update"}
        if state is not None:
            payload["state"] = state
        if status_text is not None:
            payload["status_text"] = status_text
        if artifact is not None:
            payload["artifact"] = artifact
        return await self._send(payload)

    async def start(self, status_text: str | None = None) -> SentMessage:
        """``submitted`` → ``working``."""
        return await self.update("working", status_text)

    async def complete(self, status_text: str | None = None, *, text: str | None = None, name: str | None = None) -> SentMessage:
        """→ ``completed``; with ``text``, an artifact holding it goes with the move."""
        artifact = self._artifact([text_part(text)], name=name) if text is not None else None
        return await self.update("completed", status_text, artifact)

    async def fail(self, status_text: str | None = None) -> SentMessage:
        return await self.update("failed", status_text)

    async def reject(self, status_text: str | None = None) -> SentMessage:
        return await self.update("rejected", status_text)

    async def require_input(self, status_text: str) -> SentMessage:
        return await self.update("input-required", status_text)

    async def cancel(self) -> SentMessage:
        return await self._send({"action": "cancel"})

    async def add_artifact(self, parts: list[dict[str, Any]] | None = None, *, text: str | None = None, data: dict[str, Any] | None = None,
                           name: str | None = None, artifact_id: str | None = None, append: bool = False,
                           last_chunk: bool | None = None) -> SentMessage:
        """Attach an artifact (parts, or a text or data part); ``append`` extends one of the same id."""
        parts = list(parts or [])
        if text is not None:
            parts.append(text_part(text))
        if data is not None:
            parts.append(data_part(data))
        return await self.update(artifact=self._artifact(parts, name=name, artifact_id=artifact_id, append=append, last_chunk=last_chunk))

    def _artifact(self, parts: list[dict[str, Any]], *, name: str | None = None, artifact_id: str | None = None, append: bool = False,
                  last_chunk: bool | None = None) -> dict[str, Any]:
        if artifact_id is None:
            artifact_id = f"{self.task_id}-a{self._artifacts}"
            self._artifacts += 1
        artifact: dict[str, Any] = {"artifact_id": artifact_id, "parts": parts}
        if name is not None:
            artifact["name"] = name
        if append:
            artifact["append"] = True
        if last_chunk is not None:
            artifact["last_chunk"] = last_chunk
        return artifact

    async def wait(self, timeout: float | None = None, states: frozenset[str] = FINAL_TASK_STATES) -> dict[str, Any]:
        """Follow the task on ``/tasks`` until its state is one of ``states``; return the task document."""
        return await self._agent.tasks.wait(self.session_id, self.task_id, states, timeout)


class TaskWatcher:
    """Subscriptions on ``/tasks``: the latest document of each followed task."""

    def __init__(self, url: Urls, token: TokenSource, backoff: Backoff, transports: list[str] | None = None) -> None:
        self._link = Link(url, "/tasks", token, backoff=backoff, on_connected=self._resubscribe, on_state=self._state, transports=transports)
        self._link.on("task:update", self._updated)
        self._documents: dict[tuple[str, str], dict[str, Any]] = {}
        self._followed: set[tuple[str, str]] = set()
        self._changed = asyncio.Condition()
        self._started = False

    def _state(self, change: StateChange) -> None:
        pass

    async def _subscribe(self, session_id: str, task_id: str) -> None:
        try:
            await self._link.call("task:subscribe", {"session_id": session_id, "task_id": task_id})
        except TkrError as error:
            if error.code != "validation.payload":
                raise
            await self._link.call("task:subscribe", {"task_id": task_id})  # a 1.0 host keys tasks by id alone

    async def _resubscribe(self) -> None:
        for session_id, task_id in sorted(self._followed):
            await self._subscribe(session_id, task_id)

    async def _updated(self, data: Any) -> None:
        task = data.get("task") if isinstance(data, dict) else None
        if isinstance(task, dict) and isinstance(task.get("task_id"), str):
            async with self._changed:
                self._documents[(str(task.get("session_id")), task["task_id"])] = task
                self._changed.notify_all()

    async def follow(self, session_id: str, task_id: str) -> None:
        """Subscribe (once) to a task's updates."""
        if not self._started:
            self._started = True
            await self._link.start()
        key = (session_id, task_id)
        if key not in self._followed:
            self._followed.add(key)
            await self._subscribe(session_id, task_id)

    def latest(self, session_id: str, task_id: str) -> dict[str, Any] | None:
        return self._documents.get((session_id, task_id))

    async def wait(self, session_id: str, task_id: str, states: frozenset[str] = FINAL_TASK_STATES,
                   timeout: float | None = None) -> dict[str, Any]:
        """The task document once its state is one of ``states``."""
        await self.follow(session_id, task_id)

        def reached() -> bool:
            document = self._documents.get((session_id, task_id))
            return document is not None and document.get("state") in states

        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(reached), timeout)
        except TimeoutError:
            raise client_error("timeout", f"Task {task_id} did not reach {sorted(states)} in time.", "Wait longer, or check the task.") from None
        return self._documents[(session_id, task_id)]

    async def close(self) -> None:
        if self._started:
            with contextlib.suppress(Exception):
                await self._link.close()
