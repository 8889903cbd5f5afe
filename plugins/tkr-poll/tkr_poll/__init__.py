"""tkr-poll: a ``poll`` message type for tkr-host, installed like any third-party plugin.

Entry point ``poll`` in the ``tkr_host`` group; config table ``[plugins.poll]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tkr_host import MessageType, hookimpl
from tkr_poll.handler import PollType
from tkr_poll.settings import PollSettings

__all__ = ["PollSettings", "PollType", "config_model", "register_message_types", "web_renderers"]


@hookimpl
def config_model() -> type[BaseModel]:
    return PollSettings


@hookimpl
def register_message_types(host: Any) -> list[MessageType]:
    # ``host`` is tkr-host's Host, which ``tkr_host`` does not export; the
    # handler reaches it, typed, as ``ctx.host``.
    return [PollType()]


@hookimpl(optionalhook=True)
def web_renderers() -> list[dict[str, Any]]:
    # tkr-web's hook (optional: without tkr-web installed, nobody calls it).
    # The module draws an open poll with clickable options and its tally.
    return [{"type": "poll", "module": str(Path(__file__).with_name("web") / "poll.js")}]
