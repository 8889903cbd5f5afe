"""The A2A task lifecycle, in one table. Every state change goes through
:func:`check_move`; nothing else decides whether a move is allowed."""

from __future__ import annotations

from typing import Literal

from tkr_host import HostError

TaskState = Literal["submitted", "working", "input-required", "auth-required", "completed", "failed", "canceled", "rejected"]

FINAL: frozenset[str] = frozenset({"completed", "failed", "canceled", "rejected"})

ALLOWED: dict[str, frozenset[str]] = {
    "submitted": frozenset({"working", "rejected", "canceled", "failed"}),
    "working": frozenset({"input-required", "auth-required", "completed", "failed", "canceled"}),
    "input-required": frozenset({"working", "canceled", "failed"}),
    "auth-required": frozenset({"working", "canceled", "failed"}),
}


def check_move(current: str, target: str) -> None:
    """Raise ``conflict.task_state`` unless ``current`` → ``target`` is allowed."""
    if current == target and current not in FINAL:
        return  # a status update that keeps the state
    if target in ALLOWED.get(current, frozenset()):
        return
    if current in FINAL:
        hint = "The task is finished; start a new task that names it in reference_task_ids."
    else:
        allowed = ", ".join(sorted(ALLOWED[current]))
        hint = f"From {current} a task may move to: {allowed}."
    raise HostError("conflict.task_state", message=f"A task cannot move from {current} to {target}.", hint=hint,
                    details={"from": current, "to": target})
