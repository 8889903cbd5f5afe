"""``/chat``: sessions, messages, receipts and presence (PROTOCOL.md).

Each handler takes the validated connection and the payload object, and
returns the ack's fields; errors are raised as HostError and answered by the
dispatcher.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tkr_host._host import Connection, Host
from tkr_host.dispatch import EventHandler, NamespaceSpec
from tkr_host.errors import HostError
from tkr_host.pipeline import member_session, send_message
from tkr_host.rooms import principal_room, session_room
from tkr_host.types import MAX_SAFE_INTEGER, Member, PrincipalId, PrincipalKind, ReceiptStatus, SecurityEvent, Session, principal_key

log = logging.getLogger(__name__)

MAX_HISTORY = 200


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class CreateSession(Request):
    title: str = Field(default="", max_length=200)
    agents: list[PrincipalId] = Field(default_factory=list, max_length=50)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Empty(Request):
    pass


class JoinSession(Request):
    session_id: str = Field(min_length=1, max_length=64)
    since_seq: int | None = Field(default=None, ge=0, le=MAX_SAFE_INTEGER)


class SessionRef(Request):
    session_id: str = Field(min_length=1, max_length=64)


class InvitedMember(Request):
    id: PrincipalId
    kind: PrincipalKind = "user"


class Invite(Request):
    session_id: str = Field(min_length=1, max_length=64)
    member: InvitedMember


class History(Request):
    session_id: str = Field(min_length=1, max_length=64)
    before_seq: int | None = Field(default=None, ge=1, le=MAX_SAFE_INTEGER)
    limit: int = Field(default=50, ge=1, le=MAX_HISTORY)


class Receipt(Request):
    session_id: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=1, le=MAX_SAFE_INTEGER)
    status: ReceiptStatus


async def create_session(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = CreateSession.model_validate(data)
    if host.rate_limiter is not None:
        wait = await host.rate_limiter.hit("session", principal_key(conn.principal))
        if wait is not None:
            await host.security_event(SecurityEvent("rate_limited", conn.peer, conn.principal.id, conn.sid, conn.namespace, "session"))
            raise HostError("rate_limit.sessions", message="Too many new sessions.", retry_after=wait,
                            hint=f"Wait {wait:.1f} s before creating another session.")
    agents = [Member(id=agent_id, kind="agent") for agent_id in dict.fromkeys(request.agents) if agent_id != conn.principal.id]
    session = await host.store_call(
        lambda: host.store.create_session(request.title, conn.principal.member(), agents, request.metadata)
    )
    host.sessions.remember(session)
    # The creating socket follows its new session at once, as if it had joined.
    await _enter(host, conn, session)
    return {"session": session.to_wire()}


async def list_sessions(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    Empty.model_validate(data)
    sessions = await host.store.list_sessions(conn.principal.member())
    return {"sessions": [session.to_wire() for session in sessions]}


async def join_session(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = JoinSession.model_validate(data)
    session = await member_session(host, conn, request.session_id)
    # Enter the room before reading, so nothing stored in between is missed;
    # a message that arrives both ways is dropped by its seq on the client.
    already_in = session.id in conn.sessions
    await _enter(host, conn, session)
    try:
        truncated = False
        if request.since_seq is None:
            messages = [m.to_wire() for m in await host.store.messages_before(session.id, None, host.settings.host.history_limit)]
        else:
            limit = host.settings.host.resume_limit
            # A store may hand out the wire form itself (tkr-store-peewee does): no model per replayed message.
            wire_after = getattr(host.store, "wire_messages_after", None)
            if wire_after is not None:
                messages = await wire_after(session.id, request.since_seq, limit + 1)
            else:
                messages = [m.to_wire() for m in await host.store.messages_after(session.id, request.since_seq, limit + 1)]
            truncated = len(messages) > limit
            messages = messages[:limit]
        fresh = await host.store.get_session(session.id) or session
    except BaseException:
        # A join that fails leaves the socket where it was.
        if not already_in:
            await _leave(host, conn, session.id)
        raise
    return {
        "session": fresh.to_wire(),
        "messages": messages,
        "truncated": truncated,
        "streams": await host.streams_of(session.id),
        "agents": await host.cluster.statuses(session.id),
    }


async def leave_session(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = SessionRef.model_validate(data)
    if request.session_id in conn.sessions:
        await _leave(host, conn, request.session_id)
    return {}


async def invite(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = Invite.model_validate(data)
    session = await member_session(host, conn, request.session_id)
    if not session.is_creator(conn.principal.member()):
        raise HostError("permission.invite")
    member = Member(id=request.member.id, kind=request.member.kind)
    session = await host.store_call(lambda: host.store.add_member(session.id, member))
    host.sessions.remember(session)
    return {"session": session.to_wire()}


async def history(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = History.model_validate(data)
    session = await member_session(host, conn, request.session_id)
    return await read_history(host, session, request.before_seq, request.limit)


async def read_history(host: Host, session: Session, before_seq: int | None, limit: int) -> dict[str, Any]:
    """``{messages, has_more}``: the ``limit`` messages before ``before_seq``, oldest first."""
    messages = await host.store.messages_before(session.id, before_seq, limit + 1)
    has_more = len(messages) > limit
    if has_more:
        messages = messages[1:]
    return {"messages": [message.to_wire() for message in messages], "has_more": has_more}


async def receipt(host: Host, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    request = Receipt.model_validate(data)
    session = await member_session(host, conn, request.session_id)
    message = await host.store.message_at(session.id, request.seq)
    if message is None:
        raise HostError("not_found.message", message="The session has no message with that seq.")
    await host.store_call(lambda: host.store.record_receipt(session.id, request.seq, conn.principal.id, request.status))
    await host.sio.emit(
        "receipt",
        {"session_id": session.id, "message_id": message.id, "seq": message.seq, "status": request.status, "by": conn.principal.id},
        room=principal_room(message.sender),
        namespace="/chat",
    )
    return {}


# --- rooms and presence ------------------------------------------------------


async def _enter(host: Host, conn: Connection, session: Session) -> None:
    # The socket may have left while this event was in flight; its clean-up has
    # run, so nothing may be recorded for it any more. No await between this
    # check and ``arrive``.
    if host.connection(conn.sid, "/chat") is not conn:
        raise HostError("protocol.not_connected")
    conn.sessions.add(session.id)
    member = conn.principal.member()
    arrived = await member_arrives(host, session.id, member, conn.sid)
    await host.sio.enter_room(conn.sid, session_room(session.id), namespace="/chat")
    if arrived:
        await announce(host, session.id, member, "online", skip_sid=conn.sid)


async def _leave(host: Host, conn: Connection, session_id: str) -> None:
    conn.sessions.discard(session_id)
    await host.sio.leave_room(conn.sid, session_room(session_id), namespace="/chat")
    if await member_departs(host, session_id, conn.principal.member(), conn.sid):
        await announce(host, session_id, conn.principal.member(), "offline")


async def announce(host: Host, session_id: str, member: Member, state: str, skip_sid: str | None = None) -> None:
    """Send ``presence`` to the session; a failed emit is logged, so clean-up goes on."""
    try:
        await host.sio.emit(
            "presence",
            {"session_id": session_id, "member": member.model_dump(), "state": state},
            room=session_room(session_id),
            skip_sid=skip_sid,
            namespace="/chat",
        )
    except Exception:
        log.exception("presence of %s in %s could not be sent", member.id, session_id)


async def depart_all(host: Host, conn: Connection) -> None:
    """The socket is gone from every session it followed: offline where it was the member's last."""
    for session_id in list(conn.sessions):
        conn.sessions.discard(session_id)
        if await member_departs(host, session_id, conn.principal.member(), conn.sid):
            await announce(host, session_id, conn.principal.member(), "offline")


async def joined(host: Host, conn: Connection) -> None:
    await host.sio.enter_room(conn.sid, principal_room(conn.principal.member()), namespace="/chat")


async def left(host: Host, conn: Connection) -> None:
    # python-socketio empties the rooms itself; presence is ours to clean.
    await depart_all(host, conn)


def namespace(stream_stop: EventHandler) -> NamespaceSpec:
    """``/chat``; ``stream_stop`` is agents.py's (a member stops an agent's stream),
    passed in because agents.py imports this module."""
    return NamespaceSpec(
        path="/chat",
        events={
            "session:create": create_session,
            "session:list": list_sessions,
            "session:join": join_session,
            "session:leave": leave_session,
            "session:invite": invite,
            "message:send": send_message,
            "message:history": history,
            "message:receipt": receipt,
            "stream:stop": stream_stop,
        },
        joined=joined,
        left=left,
    )


async def member_arrives(host: Host, session_id: str, member: Member, sid: str) -> bool:
    """Record ``sid`` in the session here and in the cluster; True when the member just came online anywhere.

    The local record is made before the first await, so a caller that checked
    the socket is still connected may rely on it.
    """
    first_here = host.presence.arrive(session_id, member, sid)
    return await host.cluster.arrive(session_id, member, sid, first_here)


async def member_departs(host: Host, session_id: str, member: Member, sid: str) -> bool:
    """Forget ``sid`` here and in the cluster; True when the member just went offline everywhere."""
    last_here = host.presence.depart(session_id, member.id, sid)
    return await host.cluster.depart(session_id, member, sid, last_here)
