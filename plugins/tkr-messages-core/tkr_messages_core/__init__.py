"""tkr-messages-core: the built-in message types, offered like any plugin's."""

from __future__ import annotations

from tkr_host import HostAPI, MessageType, hookimpl
from tkr_messages_core.context import ContextType
from tkr_messages_core.task import TaskType
from tkr_messages_core.text import TextType


@hookimpl
def register_message_types(host: HostAPI) -> list[MessageType]:
    return [TextType(), ContextType(), TaskType()]
