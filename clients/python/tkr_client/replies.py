"""What an agent's handler answers with: :class:`Reply` and :class:`ReplyStream`.

``reply.text(...)`` sends one message through the offline queue. Its
``client_id`` is derived from the message being answered, so a handler that
runs again after a crash (before its ack reached the host) sends a duplicate
the host recognises, not a second answer.

``async with reply.stream() as s`` streams one. A member's ``stream:stop``
cancels the block at once (as ``asyncio.timeout`` does) and the code after the
block goes on; ``s.stopped`` says it happened. An exception inside the block
ends the stream as ``incomplete`` and propagates.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tkr_client.errors import StreamStopped, TkrError
from tkr_client.queue import Outgoing
from tkr_client.types import AgentState, Message, SentMessage

if TYPE_CHECKING:
    from tkr_client.agent import Agent

log = logging.getLogger("tkr_client")


def reply_client_id(message_id: str, index: int) -> str:
    """The same id for the same answer to the same message, across restarts."""
    return "r-" + hashlib.sha256(f"{message_id}:{index}".encode()).hexdigest()[:40]


class Reply:
    """The handler's way to answer ``message`` in its session."""

    def __init__(self, agent: Agent, message: Message) -> None:
        self._agent = agent
        self.message = message
        self._sent = 0

    @property
    def session_id(self) -> str:
        return self.message["session_id"]

    def _next_client_id(self) -> str:
        client_id = reply_client_id(self.message["id"], self._sent)
        self._sent += 1
        return client_id

    async def text(self, text: str, *, format: str | None = None) -> SentMessage:
        """Answer with one text message; return the ack's ``{id, seq, ts}``."""
        payload: dict[str, Any] = {"text": text}
        if format is not None:
            payload["format"] = format
        return await self.send("text", payload)

    async def send(self, type: str, payload: dict[str, Any], *, to: str | None = None) -> SentMessage:
        """Answer with a message of any type."""
        entry = Outgoing(client_id=self._next_client_id(), session_id=self.session_id, type=type, payload=payload, to=to,
                         in_reply_to=self.message["id"])
        return await self._agent.send_entry(entry)

    def stream(self) -> ReplyStream:
        """A streamed answer: ``async with reply.stream() as s: await s.write(delta)``."""
        return ReplyStream(self._agent, self.session_id, self.message["id"])

    async def status(self, state: AgentState, detail: str | None = None) -> None:
        """Show the session what the agent is doing (``agent:status``)."""
        await self._agent.set_status(self.session_id, state, detail)


class ReplyStream:
    """One streamed reply. Use it as an async context manager."""

    def __init__(self, agent: Agent, session_id: str, in_reply_to: str | None) -> None:
        self._agent = agent
        self.session_id = session_id
        self.in_reply_to = in_reply_to
        self.message_id: str | None = None
        self.stopped = False
        self.stopped_by: str | None = None
        self.result: SentMessage | None = None
        self.text = ""
        self._task: asyncio.Task[Any] | None = None
        self._inside = False
        self._cancelling = False

    async def __aenter__(self) -> ReplyStream:
        body: dict[str, Any] = {"session_id": self.session_id, "type": "text"}
        if self.in_reply_to is not None:
            body["in_reply_to"] = self.in_reply_to
        ack = await self._agent.call("stream:start", body)
        self.message_id = str(ack["message_id"])
        self._task = asyncio.current_task()
        self._agent.streams[self.message_id] = self
        self._inside = True
        return self

    async def write(self, delta: str) -> None:
        """Send the next piece; raises :class:`StreamStopped` if a member stopped the stream."""
        if self.stopped or self.message_id is None:
            raise StreamStopped("conflict.stream_closed", "A member stopped this stream.", hint="Stop writing to it.")
        if not delta:
            return
        try:
            await self._agent.call("stream:chunk", {"message_id": self.message_id, "delta": delta})
        except TkrError as error:
            if error.code == "conflict.stream_closed":
                self.stopped = True
                raise StreamStopped(error.code, error.message, hint=error.hint) from None
            raise
        self.text += delta

    def stop(self, by: str | None) -> None:
        """The host said a member stopped it: cancel the block, as a timeout would."""
        if self.stopped:
            return
        self.stopped, self.stopped_by = True, by
        if self._inside and self._task is not None and not self._task.done():
            self._cancelling = True
            self._task.cancel()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        assert self.message_id is not None
        self._inside = False
        try:
            if self.stopped:
                if self._cancelling and self._task is not None:
                    self._cancelling = False
                    if self._task.uncancel() > 0:
                        return False  # someone else cancels the task too: let it through
                    # Our own cancellation: the code after the block goes on.
                    return exc_type is None or issubclass(exc_type, asyncio.CancelledError | StreamStopped)
                return exc_type is None or issubclass(exc_type, StreamStopped)
            if exc_type is None:
                try:
                    ack = await self._agent.call("stream:end", {"message_id": self.message_id})
                except TkrError as error:
                    if error.code != "conflict.stream_closed":
                        raise
                    self.stopped = True  # stopped while it was ending: stored as `stopped`
                    return False
                message = ack.get("message") or {}
                self.result = {"id": message.get("id", self.message_id), "seq": message.get("seq", 0), "ts": message.get("ts", "")}
                return False
            # The handler failed mid-reply: keep what was sent, marked incomplete.
            try:
                await self._agent.call("stream:end", {"message_id": self.message_id, "status": "incomplete"})
            except TkrError as error:
                log.warning("could not end stream %s as incomplete: %s", self.message_id, error)
            return False
        finally:
            self._agent.streams.pop(self.message_id, None)
