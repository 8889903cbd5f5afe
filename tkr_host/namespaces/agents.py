"""``/agents``: where agents receive their work and stream their replies.

Only principals of kind ``agent`` connect. On connect an agent is ``online`` in
every session it belongs to, and gets every message addressed to it that it
has not ``message:ack``ed, oldest first, before live delivery starts. The
pending deliveries are rows in the store, so a host restart loses none.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tkr_host._host import Connection, Host
from tkr_host._presence import AgentState
from tkr_host._streams import OpenStream
from tkr_host.api import MessageContext
from tkr_host.cluster import ClusterHandlers
from tkr_host.dispatch import NamespaceSpec, validation_error
from tkr_host.errors import HostError
from tkr_host.namespaces.chat import announce, depart_all, member_arrives
from tkr_host.pipeline import check_addressing, member_session, send_message, store_and_deliver
from tkr_host.rooms import agent_room, session_room
from tkr_host.types import Member, Message, MessageDraft, MessageStatus, Principal, utc_now

log = logging.getLogger(__name__)

#: Pending deliveries read per page while an agent catches up.
REPLAY_PAGE = 200
#: Streams one socket may hold open at once: each keeps its chunks in memory.
MAX_OPEN_STREAMS = 16
#: Largest streamed reply, in characters: the stored reply is a `text`
#: message, so it has the text type's limit.
MAX_STREAM_TEXT = 32_768


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class Ack(Request):
    message_id: str = Field(min_length=1, max_length=64)


class StreamStart(Request):
    session_id: str = Field(min_length=1, max_length=64)
    in_reply_to: str | None = Field(default=None, min_length=1, max_length=64)
    to: str | None = Field(default=None, min_length=1, max_length=200)
    type: Literal["text"] = "text"


class StreamChunk(Request):
    message_id: str = Field(min_length=1, max_length=64)
    delta: str = Field(max_length=65_536)


class StreamEnd(Request):
    message_id: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any] | None = None
    #: ``incomplete``: the agent gave up mid-reply (its handler failed); what arrived is kept as such.
    status: Literal["complete", "incomplete"] = "complete"


class ContextList(Request):
    session_id: str = Field(min_length=1, max_length=64)


class SetStatus(Request):
    session_id: str = Field(min_length=1, max_length=64)
    state: AgentState
    detail: str | None = Field(default=None, max_length=200)


# --- connect: presence and replay --------------------------------------------------


async def joined(host: Host, conn: Connection) -> None:
    agent = conn.principal
    await host.cluster.agent_connected(agent, conn.sid)
    sessions = await host.store.list_sessions(agent.member())
    for session in sessions:
        conn.sessions.add(session.id)
        if await member_arrives(host, session.id, agent.member(), conn.sid):
            await announce(host, session.id, agent.member(), "online")
    # Replay runs in the background: the connect must be acknowledged before
    # the socket can receive events.
    host.spawn(replay_then_go_live(host, conn))


async def replay_then_go_live(host: Host, conn: Connection) -> None:
    """Send what is pending, oldest first; only then join the live room.

    A message stored between the last page and the join is caught by one more
    read after the join; the agent drops an id it already handled.
    """
    sent: set[str] = set()
    try:
        await _replay(host, conn, sent)
        if host.connection(conn.sid, "/agents") is None:
            return
        await host.sio.enter_room(conn.sid, agent_room(conn.principal.id), namespace="/agents")
        await _replay(host, conn, sent)
    except Exception:
        log.exception("replay to agent %s failed; it will be retried on its next connect", conn.principal.id)


async def _replay(host: Host, conn: Connection, sent: set[str]) -> None:
    after: str | None = None
    while host.connection(conn.sid, "/agents") is not None:
        page = await host.store.pending_deliveries(conn.principal.id, REPLAY_PAGE, after)
        for message in page:
            if message.id not in sent:
                sent.add(message.id)
                await host.sio.emit("message", message.to_wire(), to=conn.sid, namespace="/agents")
        if len(page) < REPLAY_PAGE:
            return
        after = page[-1].id


async def left(host: Host, conn: Connection) -> None:
    await depart_all(host, conn)  # first: bookkeeping must not wait on the streams' stores
    await host.cluster.agent_disconnected(conn.principal, conn.sid)
    for stream in host.streams.of_socket(conn.sid):
        await abort_stream(host, stream)


# --- events --------------------------------------------------------------------


async def ack(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = Ack.model_validate(data)
    # Only the agent a message was delivered to may ack it. To any other agent a
    # message that exists and one that does not answer the same, so an ack
    # tells nothing about other sessions; acking twice is harmless.
    if not await host.store_call(lambda: host.store.ack_delivery(conn.principal.id, request.message_id)):
        raise HostError("not_found.message")
    return {}


async def stream_start(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = StreamStart.model_validate(data)
    session = await check_addressing(host, await member_session(host, conn, request.session_id), request.to, request.in_reply_to)
    if len(host.streams.of_socket(conn.sid)) >= MAX_OPEN_STREAMS:
        raise HostError("rate_limit.streams", message=f"At most {MAX_OPEN_STREAMS} streams may be open on one connection.",
                        hint="End an open stream with stream:end before starting another.")
    stream = OpenStream(message_id=str(uuid.uuid4()), session_id=session.id, principal=conn.principal, sid=conn.sid,
                        in_reply_to=request.in_reply_to, to=request.to)
    host.streams.open(stream)
    await host.cluster.stream_changed(stream)
    return {"message_id": stream.message_id}


def _own_stream(host: Host, conn: Connection, message_id: str) -> OpenStream:
    stream = host.streams.get(message_id)
    if stream is None and host.streams.was_stopped(message_id, conn.principal.id):
        raise HostError("conflict.stream_closed", details={"message_id": message_id})
    if stream is None or stream.sender != conn.principal.member():
        raise HostError("not_found.stream", message="There is no open stream with that id.",
                        hint="Start a stream with stream:start and use the message_id it returns.")
    return stream


async def stream_chunk(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = StreamChunk.model_validate(data)
    stream = _own_stream(host, conn, request.message_id)
    if stream.length + len(request.delta) > MAX_STREAM_TEXT:
        raise HostError("validation.too_large", message=f"A streamed reply may hold at most {MAX_STREAM_TEXT} characters.",
                        hint="End this stream and continue in a new one.")
    index = stream.add(request.delta)
    # Forwarded at once: chunks never wait on the database.
    await host.sio.emit(
        "message:chunk",
        {"session_id": stream.session_id, "message_id": stream.message_id, "index": index, "delta": request.delta},
        room=session_room(stream.session_id),
        namespace="/chat",
    )
    host.metrics.stream_chunks.inc()
    await host.cluster.stream_changed(stream)  # a join on another node lists the text so far
    return {"index": index}


async def stream_end(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = StreamEnd.model_validate(data)
    stream = _own_stream(host, conn, request.message_id)
    # Closed first, so a late chunk or a disconnect cannot touch a reply being
    # stored; opened again if it cannot be stored.
    host.streams.close(stream.message_id)
    await host.cluster.stream_closed(stream)
    if request.status == "incomplete" and request.payload is None and not stream.chunks:
        return {"message": None}  # a reply with no text is not a message
    try:
        message = await _end(host, stream, request)
    except BaseException:
        host.streams.open(stream)
        await host.cluster.stream_changed(stream)
        raise
    return {"message": {"id": message.id, "seq": message.seq, "ts": message.ts}}


async def _end(host: Host, stream: OpenStream, request: StreamEnd) -> Message:
    text_type = host.message_types.get("text")
    if text_type is None:
        raise HostError("validation.unknown_type", message="No plugin provides the `text` type that streamed replies use.")
    payload = request.payload if request.payload is not None else {"text": stream.text}
    try:
        validated = text_type.payload_model.model_validate(payload).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        raise validation_error(exc, prefix="payload.") from None
    return await finish_stream(host, stream, validated, request.status)


async def finish_stream(host: Host, stream: OpenStream, payload: dict[str, Any], status: MessageStatus) -> Message:
    """Store the reply once (its client_id makes a second end a duplicate) and deliver it."""
    session = await host.store.get_session(stream.session_id)
    if session is None:
        raise HostError("not_found.session")
    draft = MessageDraft(session_id=stream.session_id, type="text", sender=stream.sender, payload=payload,
                         client_id=f"stream:{stream.message_id}", to=stream.to, in_reply_to=stream.in_reply_to, status=status,
                         id=stream.message_id)
    ctx = MessageContext(host=host, principal=stream.principal, session=session, namespace="/agents")
    if stream.to is not None:
        ctx.deliver_to.add(stream.to)
    # The reply is a text message: whatever plugin provides `text` sees it as
    # it sees any other (a moderation plugin may refuse it).
    text_type = host.message_types.get("text")
    if text_type is not None:
        await text_type.handle(ctx, draft)
    result = await store_and_deliver(host, draft, ctx)
    return result.message


async def abort_stream(host: Host, stream: OpenStream) -> None:
    """The agent left mid-stream: keep what arrived, marked incomplete, and tell the session."""
    host.streams.close(stream.message_id)
    await host.cluster.stream_closed(stream)
    kept = False
    if stream.chunks:  # a reply with no text is not a message
        try:
            await finish_stream(host, stream, {"text": stream.text}, "incomplete")
            kept = True
        except Exception:
            log.exception("could not store the incomplete stream %s", stream.message_id)
    error = HostError("agent.stream_aborted", message=f"Agent {stream.sender.id} disconnected while replying.",
                      hint="The partial reply was kept; ask again if you need the rest." if kept else "Ask the agent again.",
                      details={"message_id": stream.message_id, "agent_id": stream.sender.id})
    await host.sio.emit("error", {**error.to_wire(), "session_id": stream.session_id}, room=session_room(stream.session_id),
                        namespace="/chat")


class StreamStop(Request):
    session_id: str = Field(min_length=1, max_length=64)
    message_id: str = Field(min_length=1, max_length=64)


async def stream_stop(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """``stream:stop`` on ``/chat``: a member ends an agent's reply at once, as ``stopped``."""
    request = StreamStop.model_validate(data)
    session = await member_session(host, conn, request.session_id)
    result = await stop_here(host, session.id, request.message_id, conn.principal)
    if result is None:  # relayed by another node, or by none
        result = await host.cluster.stop_stream(session.id, request.message_id, conn.principal)
    if result is None:
        raise HostError("not_found.stream", message="No reply with that id is being streamed in this session.",
                        hint="The reply may have ended already; its final `message` holds it.")
    return result


async def stop_here(host: Host, session_id: str, message_id: str, by: Principal) -> dict[str, Any] | None:
    """Stop a stream this node relays, as ``stopped``; the ack's fields, or None when it is not here."""
    stream = host.streams.get(message_id)
    if stream is None or stream.session_id != session_id:
        return None
    # Closed and marked first: the agent's next chunk answers conflict.stream_closed
    # while the reply is being stored.
    host.streams.close(stream.message_id)
    host.streams.mark_stopped(stream)
    await host.cluster.stream_closed(stream)
    stored: Message | None = None
    try:
        if stream.chunks:  # a reply with no text is not a message
            stored = await finish_stream(host, stream, {"text": stream.text}, "stopped")
    except BaseException:
        # Not stored: the stream goes on, and the member may stop it again.
        host.streams.unmark_stopped(stream.message_id)
        host.streams.open(stream)
        await host.cluster.stream_changed(stream)
        raise
    try:
        await host.sio.emit("stream:stop", {"session_id": session_id, "message_id": stream.message_id, "by": by.id},
                            to=stream.sid, namespace="/agents")
    except Exception:
        log.exception("stream:stop for %s could not be sent to its agent", stream.message_id)
    return {"message": None if stored is None else {"id": stored.id, "seq": stored.seq, "ts": stored.ts}}


async def context_list(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = ContextList.model_validate(data)
    session = await member_session(host, conn, request.session_id)
    contexts = await host.store.list_contexts(session.id, conn.principal.id, utc_now())
    return {"contexts": [record.to_wire() for record in contexts]}


async def agent_status(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """``agent:status``: show the session what the agent is doing; kept in memory, never stored."""
    request = SetStatus.model_validate(data)
    session = await member_session(host, conn, request.session_id)
    agent = conn.principal.member()
    if host.connection(conn.sid, "/agents") is not conn:
        raise HostError("protocol.not_connected")  # its clean-up has run: record nothing for it
    if session.id not in conn.sessions:
        # A session made after this socket connected: the agent is evidently
        # online in it, and its status must lapse when this socket leaves.
        conn.sessions.add(session.id)
        if await member_arrives(host, session.id, agent, conn.sid):
            await announce(host, session.id, agent, "online")
    status = host.presence.set_status(session.id, agent, request.state, request.detail)
    if status is None:  # the socket left while this event was in flight
        raise HostError("protocol.not_connected")
    await host.cluster.set_status(session.id, status)
    await host.sio.emit(
        "agent:status",
        {"session_id": session.id, "agent": agent.model_dump(), "state": status.state, "detail": status.detail, "ts": status.ts},
        room=session_room(session.id),
        namespace="/chat",
    )
    return {}


# --- what other nodes may ask of this one ------------------------------------------


def cluster_handlers(host: Host) -> ClusterHandlers:
    """The core's answers to the cluster strategy's requests (:mod:`tkr_host.cluster`)."""

    async def stop_stream(session_id: str, message_id: str, by: Principal) -> dict[str, Any] | None:
        return await stop_here(host, session_id, message_id, by)

    async def disconnect(sid: str, namespace: str, error: HostError) -> bool:
        if host.connection(sid, namespace) is None:
            return False
        await host.disconnect_client(sid, namespace, error)
        return True

    async def member_gone(session_id: str, member: Member) -> None:
        await announce(host, session_id, member, "offline")

    async def stream_orphaned(record: dict[str, Any]) -> None:
        text = str(record.get("text") or "")
        stream = OpenStream(message_id=record["message_id"], session_id=record["session_id"],
                            principal=Principal.model_validate(record["principal"]), sid="",
                            in_reply_to=record.get("in_reply_to"), to=record.get("to"),
                            chunks=[text] if text else [], length=len(text))
        await abort_stream(host, stream)

    return ClusterHandlers(stop_stream=stop_stream, disconnect=disconnect, member_gone=member_gone,
                           stream_orphaned=stream_orphaned)


def namespace() -> NamespaceSpec:
    return NamespaceSpec(
        path="/agents",
        events={
            "message:ack": ack,
            "message:send": send_message,
            "stream:start": stream_start,
            "stream:chunk": stream_chunk,
            "stream:end": stream_end,
            "context:list": context_list,
            "agent:status": agent_status,
        },
        admits=lambda principal: principal.kind == "agent",
        joined=joined,
        left=left,
    )
