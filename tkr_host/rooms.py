"""Room names, in one place so that every emit and join agrees on them."""

from __future__ import annotations

from tkr_host.types import Member


def session_room(session_id: str) -> str:
    """The /chat sockets that joined a session."""
    return f"session:{session_id}"


def principal_room(principal: Member) -> str:
    """Every /chat socket of one principal (receipts go there): its kind and id,
    so that ``agent:alice`` never gets what is meant for ``user:alice``."""
    return f"principal:{principal.kind}:{principal.id}"


def agent_room(agent_id: str) -> str:
    """Every /agents socket of one agent."""
    return f"agent:{agent_id}"


def task_room(session_id: str, task_id: str) -> str:
    """The /tasks sockets subscribed to a task: tasks are keyed by session, so
    two sessions' tasks of one id are two rooms."""
    return f"task:{session_id}:{task_id}"
