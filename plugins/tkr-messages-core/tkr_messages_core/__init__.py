"""tkr-messages-core: the built-in message types, offered like any plugin's."""

from __future__ import annotations

from tkr_host import ErrorCode, HostAPI, MessageType, hookimpl
from tkr_messages_core.context import ContextType
from tkr_messages_core.task import TaskType
from tkr_messages_core.text import TextType


@hookimpl
def error_codes() -> dict[str, ErrorCode]:
    # The task type's own codes (not_found.task is the core's: /tasks raises it too).
    return {
        "permission.task": ErrorCode("Only the task's creator, its assignee or the session's creator may change it.",
                                     "Ask one of them to make the change.",
                                     when="only the task's creator, its assignee or the session's creator may change it"),
        "conflict.task_state": ErrorCode("The task cannot move to that state.", "Reload the task; finished tasks take a new task naming them.",
                                         when="a task message asks for a move its lifecycle forbids (`details: {from, to}`), "
                                              "or creates a task in a state other than `submitted`"),
        "conflict.task_exists": ErrorCode("A task with that id already exists.", "Use action update, or pick a new task_id.",
                                          when="a task `create` names a `task_id` the session has already"),
    }


@hookimpl
def register_message_types(host: HostAPI) -> list[MessageType]:
    return [TextType(), ContextType(), TaskType()]
