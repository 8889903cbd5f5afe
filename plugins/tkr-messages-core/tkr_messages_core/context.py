"""The ``context`` type: shared context for the session's agents, with an expiry."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tkr_host import ContextRecord, HostError, MessageContext, MessageDraft, utc_now

MAX_DATA_BYTES = 64 * 1024
DEFAULT_TTL_S = 1800
MAX_TTL_S = 7 * 24 * 3600


class ContextPayload(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    context_id: str = Field(min_length=1, max_length=128)
    data: dict[str, Any]
    targets: list[str] | None = Field(default=None, max_length=50)
    ttl_s: int = Field(default=DEFAULT_TTL_S, ge=1, le=MAX_TTL_S)

    @field_validator("data")
    @classmethod
    def _at_most_64_kib(cls, data: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if size > MAX_DATA_BYTES:
            raise ValueError(f"data is {size} bytes as JSON; at most {MAX_DATA_BYTES} are allowed")
        return data


class ContextType:
    """Stored with an expiry and sent to its target agents (default: every agent member)."""

    name: ClassVar[str] = "context"
    payload_model: ClassVar[type[BaseModel]] = ContextPayload

    async def handle(self, ctx: MessageContext, draft: MessageDraft) -> None:
        payload = ContextPayload.model_validate(draft.payload)
        agents = ctx.session.agent_ids()
        targets = list(dict.fromkeys(payload.targets)) if payload.targets is not None else agents
        strangers = [target for target in targets if target not in agents]
        if strangers:
            raise HostError("validation.recipient", message=f"{len(strangers)} of the context's targets are no agents of the session.",
                            hint="Name only agent members in `targets`, or leave it out to reach every agent.")
        draft.payload["targets"] = targets
        ctx.deliver_to.update(targets)
        expires_at = utc_now() + timedelta(seconds=payload.ttl_s)
        # Saved in the message's own transaction: the context and the message
        # are both stored, or neither.
        draft.id = draft.id or str(uuid.uuid4())
        draft.writes.append(ContextRecord(session_id=draft.session_id, context_id=payload.context_id, data=payload.data,
                                          targets=tuple(targets), created_by=draft.sender.id, expires_at=expires_at, message_id=draft.id))
