"""Per-session delivery state: ``seq`` order, each ``seq`` once, and streamed replies.

A :class:`Feed` holds the last ``seq`` delivered to the application and the
messages that came early. A message is released only when every ``seq``
before it has been released (or held: a message this client sent itself is
known from its ack, and is not delivered back to it). A ``seq`` already
delivered is dropped. What stays waiting is a gap, which the client fills from
``message:history``.

:class:`StreamTracker` remembers how much of each streamed reply the
application has seen, so the ``streams`` of a ``session:join`` after a
reconnect continues a reply without repeating text.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from tkr_client.types import Chunk, Message

#: Streams remembered at once; a reply whose final message never came is forgotten first.
MAX_TRACKED_STREAMS = 256
#: Chunks held per session while a join is in flight.
MAX_EARLY_CHUNKS = 1000


@dataclass
class Feed:
    """One followed session."""

    session_id: str
    #: The last seq released to the application; None until the first join answered.
    last: int | None = None
    waiting: dict[int, Message | None] = field(default_factory=dict)
    #: A join is in flight: every chunk waits for its ``streams``.
    joining: bool = False
    early_chunks: list[Chunk] = field(default_factory=list)

    def offer(self, message: Message, deliver: bool = True) -> list[Message]:
        """Take a message from any source; return those now ready, in seq order."""
        seq = message["seq"]
        if (self.last is not None and seq <= self.last) or seq in self.waiting:
            return []  # held already: dropped
        self.waiting[seq] = message if deliver else None
        return self.release()

    def hold(self, seq: int) -> list[Message]:
        """A seq this client knows without delivering it (its own send)."""
        if (self.last is not None and seq <= self.last) or self.waiting.get(seq) is not None:
            return []
        self.waiting[seq] = None
        return self.release()

    def start_at(self, last: int) -> list[Message]:
        """The first join answered: everything up to ``last`` is the caller's."""
        self.last = last if self.last is None else max(self.last, last)
        for seq in [seq for seq in self.waiting if seq <= self.last]:
            del self.waiting[seq]
        return self.release()

    def release(self) -> list[Message]:
        ready: list[Message] = []
        if self.last is None:
            return ready
        while self.last + 1 in self.waiting:
            self.last += 1
            message = self.waiting.pop(self.last)
            if message is not None:
                ready.append(message)
        return ready

    def gap(self) -> tuple[int, int] | None:
        """The missing seqs ``(first, last)`` before the earliest waiting message."""
        if self.last is None or not self.waiting:
            return None
        return self.last + 1, min(self.waiting) - 1


@dataclass
class StreamState:
    session_id: str
    next_index: int = 0
    text: str = ""


class StreamTracker:
    """How much of each streamed reply the application has been given."""

    def __init__(self) -> None:
        self._streams: OrderedDict[str, StreamState] = OrderedDict()

    def _state(self, session_id: str, message_id: str) -> StreamState:
        state = self._streams.get(message_id)
        if state is None:
            state = self._streams[message_id] = StreamState(session_id)
            while len(self._streams) > MAX_TRACKED_STREAMS:
                self._streams.popitem(last=False)
        return state

    def known(self, message_id: str) -> bool:
        return message_id in self._streams

    def skips(self, chunk: Chunk) -> bool:
        """Whether a live chunk comes after a gap: chunks before it were never given."""
        state = self._streams.get(chunk["message_id"])
        return chunk["index"] > (state.next_index if state is not None else 0)

    def chunk(self, chunk: Chunk) -> Chunk | None:
        """A live chunk: itself when new, None when already given."""
        state = self._state(chunk["session_id"], chunk["message_id"])
        if chunk["index"] < state.next_index:
            return None
        state.next_index = chunk["index"] + 1
        state.text += chunk["delta"]
        return chunk

    def pick_up(self, session_id: str, message_id: str, index: int, text: str) -> Chunk | None:
        """A stream listed by ``session:join``: one chunk holding the text not yet given."""
        state = self._state(session_id, message_id)
        if index < state.next_index:
            return None
        missing = text[len(state.text):] if text.startswith(state.text) else text
        state.next_index = index + 1
        state.text = text
        return {"session_id": session_id, "message_id": message_id, "index": index, "delta": missing}

    def finished(self, message_id: str) -> None:
        """The final message arrived: the stream is over."""
        self._streams.pop(message_id, None)

    # --- the followed sessions' chunks, across joins and lost broadcasts ---------------

    def live(self, feed: Feed | None, chunk: Chunk) -> tuple[list[Chunk], bool]:
        """A live chunk: the chunks to deliver now, and whether to join the session again."""
        rejoin = False
        if feed is not None and not feed.joining and feed.last is not None and self.skips(chunk):
            # Chunks before this one were lost (a missed broadcast): the `streams`
            # of a new join hold the text so far.
            feed.joining = rejoin = True
        if feed is not None and feed.joining:
            # Every chunk waits for the join's `streams`, known stream or not: one that
            # went first would move the stream past the text the join brings.
            if len(feed.early_chunks) < MAX_EARLY_CHUNKS:
                feed.early_chunks.append(chunk)
            return [], rejoin
        fresh = self.chunk(chunk)
        return ([fresh] if fresh is not None else []), rejoin

    def joined(self, feed: Feed | None, session_id: str, streams: list[Any], deliver: bool) -> list[Chunk]:
        """A join's ``streams`` arrived: what to deliver of them, then of the chunks that waited."""
        ready: list[Chunk] = []
        for stream in streams:
            if not isinstance(stream, dict) or not isinstance(stream.get("index"), int) or stream["index"] < 0:
                continue
            picked = self.pick_up(session_id, str(stream["message_id"]), stream["index"], str(stream.get("text") or ""))
            if picked is not None and deliver:
                ready.append(picked)
        if feed is not None:
            feed.joining = False
            early, feed.early_chunks = feed.early_chunks, []
            ready.extend(fresh for fresh in map(self.chunk, early) if fresh is not None)
        return ready

    def message_done(self, feed: Feed | None, message_id: str) -> None:
        """A reply's final message is delivered: no chunk of it may come after."""
        self.finished(message_id)
        if feed is not None and feed.early_chunks:
            feed.early_chunks = [chunk for chunk in feed.early_chunks if chunk["message_id"] != message_id]
