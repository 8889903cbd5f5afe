"""The ``text`` type: a message of 1 to 32,768 characters, plain or markdown."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from tkr_host import MessageContext, MessageDraft

MAX_TEXT = 32_768


class TextPayload(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    format: Literal["plain", "markdown"] = "plain"


class TextType:
    """Stored and delivered to the session; the host routes it to the agent in ``to``."""

    name: ClassVar[str] = "text"
    payload_model: ClassVar[type[BaseModel]] = TextPayload

    async def handle(self, ctx: MessageContext, draft: MessageDraft) -> None:
        # Nothing beyond the payload model: the pipeline already routes ``to``.
        return None
