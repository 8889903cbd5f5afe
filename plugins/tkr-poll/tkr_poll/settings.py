"""``[plugins.poll]``: the plugin's config table."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PollSettings(BaseModel):
    """Who may open polls. Every member of a session may vote in its polls."""

    model_config = ConfigDict(extra="forbid")

    #: Roles allowed to open a poll; a principal needs one of them. Empty (the
    #: default): every member of the session may open polls.
    open_roles: list[str] = Field(default_factory=list)
