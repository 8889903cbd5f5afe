"""Agent replies being streamed: what ``session:join`` reports in ``streams``.

Chunks are kept in memory only while a stream is open (they are forwarded
without waiting on the database); the whole reply is stored once at the end.
A stream a member stopped (``stream:stop``) is remembered for a while, so the
agent's late chunks answer ``conflict.stream_closed`` rather than
``not_found.stream``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from tkr_host.types import Member, Principal


@dataclass
class OpenStream:
    """A reply an agent is streaming: its chunks so far and where it goes."""

    message_id: str
    session_id: str
    principal: Principal
    sid: str
    in_reply_to: str | None = None
    to: str | None = None
    chunks: list[str] = field(default_factory=list)
    length: int = 0

    @property
    def sender(self) -> Member:
        return self.principal.member()

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def add(self, delta: str) -> int:
        """Append a chunk; return its index."""
        self.chunks.append(delta)
        self.length += len(delta)
        return len(self.chunks) - 1

    def to_wire(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "sender": self.sender.model_dump(),
            "index": len(self.chunks) - 1,
            "text": "".join(self.chunks),
        }


#: Stopped streams remembered for ``conflict.stream_closed``; the oldest are
#: forgotten first, so no number of stops makes the host hold more.
MAX_STOPPED = 4096


class StreamRegistry:
    def __init__(self) -> None:
        self._open: dict[str, OpenStream] = {}
        self._stopped: OrderedDict[str, str] = OrderedDict()  # message id -> agent id

    def open(self, stream: OpenStream) -> None:
        self._open[stream.message_id] = stream

    def get(self, message_id: str) -> OpenStream | None:
        return self._open.get(message_id)

    def close(self, message_id: str) -> OpenStream | None:
        return self._open.pop(message_id, None)

    def mark_stopped(self, stream: OpenStream) -> None:
        self._stopped[stream.message_id] = stream.sender.id
        while len(self._stopped) > MAX_STOPPED:
            self._stopped.popitem(last=False)

    def unmark_stopped(self, message_id: str) -> None:
        self._stopped.pop(message_id, None)

    def was_stopped(self, message_id: str, agent_id: str) -> bool:
        """True when ``agent_id``'s stream ``message_id`` was stopped by a member."""
        return self._stopped.get(message_id) == agent_id

    def of_session(self, session_id: str) -> list[dict[str, Any]]:
        return [stream.to_wire() for stream in self._open.values() if stream.session_id == session_id]

    def of_socket(self, sid: str) -> list[OpenStream]:
        return [stream for stream in self._open.values() if stream.sid == sid]

    def __len__(self) -> int:
        return len(self._open)
