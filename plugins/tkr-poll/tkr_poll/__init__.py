"""tkr-poll: a ``poll`` message type for tkr-host, installed like any third-party plugin.

Entry point ``poll`` in the ``tkr_host`` group; config table ``[plugins.poll]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tkr_host import ErrorCode, HostAPI, MessageType, hookimpl
from tkr_poll.handler import PollType
from tkr_poll.settings import PollSettings

__all__ = ["PollSettings", "PollType", "config_model", "error_codes", "register_message_types", "web_renderers"]


@hookimpl
def config_model() -> type[BaseModel]:
    return PollSettings


@hookimpl
def error_codes() -> dict[str, ErrorCode]:
    # Every raise gives its own message and hint; these are the defaults the
    # generated table of docs/protocol.md shows.
    return {
        "conflict.poll_exists": ErrorCode("This session already has a poll with that poll_id.",
                                          "Choose another poll_id, or vote in the poll that is open.",
                                          when="an `open` names a `poll_id` the session has already"),
        "conflict.poll_pending": ErrorCode("Another message of yours about this poll is being stored.",
                                           "Wait a moment, then send again; you will then learn whether the first one counted.",
                                           when="a second vote or open by the same member while the first is being stored (`retry_after`)"),
        "permission.poll_open": ErrorCode("You may not open polls in this host.",
                                          when="`open` by a principal without one of `open_roles` (`details.roles`)"),
        "not_found.poll": ErrorCode("No poll with that poll_id was opened in this session.",
                                    "Check the poll_id, or open the poll first with action \"open\".",
                                    when="a vote names a poll that was never opened in the session"),
        "conflict.already_voted": ErrorCode("You have already voted in this poll.", "Each member votes once per poll; your first vote stands.",
                                            when="a member votes a second time in one poll"),
    }


@hookimpl
def register_message_types(host: HostAPI) -> list[MessageType]:
    return [PollType()]


@hookimpl(optionalhook=True)
def web_renderers() -> list[dict[str, Any]]:
    # tkr-web's hook (optional: without tkr-web installed, nobody calls it).
    # The module draws an open poll with clickable options and its tally.
    return [{"type": "poll", "module": str(Path(__file__).with_name("web") / "poll.js")}]
