"""The path of one message: validate → rate → type handler → store → deliver → ack.

Used by ``message:send`` on ``/chat`` and ``/agents`` and by streamed replies.
The host acks only after the store has the message, so an acked message is
never lost; a refused one is simply sent again by the client with the same
``client_id``.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tkr_host._host import Connection, Host
from tkr_host._sequencer import Turn
from tkr_host.api import MessageContext
from tkr_host.dispatch import validation_error
from tkr_host.errors import HostError
from tkr_host.plugins import call_all, notify
from tkr_host.rooms import agent_room, session_room
from tkr_host.types import AppendResult, Message, MessageDraft, SecurityEvent, Session, principal_key

log = logging.getLogger(__name__)

TYPE_NAME_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"


class SendRequest(BaseModel):
    """The ``message:send`` payload."""

    model_config = ConfigDict(strict=True, extra="forbid")

    session_id: str = Field(min_length=1, max_length=64)
    client_id: str = Field(min_length=1, max_length=64)
    type: str = Field(pattern=TYPE_NAME_PATTERN)
    payload: dict[str, Any]
    to: str | None = Field(default=None, min_length=1, max_length=200)
    in_reply_to: str | None = Field(default=None, min_length=1, max_length=64)


async def member_session(host: Host, connection: Connection, session_id: Any) -> Session:
    """The session, when it exists and the connection's principal (its id and kind) is a member."""
    if not isinstance(session_id, str) or not session_id:
        raise HostError("validation.payload", message="`session_id` must be a non-empty string.",
                        details={"fields": [{"field": "session_id", "problem": "required string"}]})
    member = connection.principal.member()
    session = await host.sessions.membership(host.store, session_id, member)
    if session is None:
        raise HostError("not_found.session")  # its default text: the client's id is never echoed
    if not session.has_member(member):
        await host.security_event(SecurityEvent("access_denied", connection.peer, connection.principal.id, connection.sid,
                                                connection.namespace, f"session {session_id[:64]}"))
        raise HostError("permission.not_member")
    return session


async def check_addressing(host: Host, session: Session, to: str | None, in_reply_to: str | None) -> Session:
    """Check that ``to`` is an agent of the session and ``in_reply_to`` one of its
    messages; return the session, read again if the cached one was too old."""
    if to is not None and to not in session.agent_ids():
        # The cached session may predate an invite made on another node.
        session = await host.store.get_session(session.id) or session
        host.sessions.remember(session)
        if to not in session.agent_ids():
            raise HostError("validation.recipient", message="`to` names no agent of this session.")
    if in_reply_to is not None:
        replied = await host.store.get_message(in_reply_to)
        if replied is None or replied.session_id != session.id:
            raise HostError("not_found.message", message="`in_reply_to` names no message of this session.")
    return session


async def send_message(host: Host, connection: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """``message:send``: store the message once, deliver it, and answer the ack."""
    request = SendRequest.model_validate(data)
    session = await member_session(host, connection, request.session_id)
    sender = connection.principal

    message_type = host.message_types.get(request.type)
    if message_type is None:
        raise HostError("validation.unknown_type", message="No plugin provides that message type.",
                        details={"types": sorted(host.message_types)})

    # A resend counts against the rate limit like any send (PROTOCOL.md 1.1), and
    # a refused flood costs no store read.
    if host.rate_limiter is not None:
        wait = await host.rate_limiter.hit("message", principal_key(sender))
        if wait is not None:
            await host.security_event(SecurityEvent("rate_limited", connection.peer, sender.id, connection.sid, connection.namespace,
                                                    "message"))
            raise HostError("rate_limit.exceeded", message="Too many messages.", retry_after=wait,
                            hint=f"Wait {wait:.1f} s, then send again; queued messages are kept.")

    # No read of the idempotency key before every send (it was a store round
    # trip per message): the append's unique index answers a resend, as the
    # stored message with duplicate=True. So a type's handle and the plugins'
    # before_store may see a resend, and may refuse it (one vote per voter, a
    # poll opened already); a refusal is looked up by client_id, and a stored
    # message is answered as the duplicate it is (PROTOCOL.md 1.1). A type's
    # checks see no resend: store_and_deliver reads the key under the lock first.
    skip_sid = connection.sid if connection.namespace == "/chat" else None
    try:
        draft, ctx = await _prepare(host, connection, session, message_type, request)
        result = await store_and_deliver(host, draft, ctx, skip_sid=skip_sid)
    except HostError as refusal:
        if refusal.category == "store":
            raise  # the store failed: a read would fail as well
        existing = await _resent(host, session.id, sender.id, request.client_id)
        if existing is None:
            raise
        async with host.sequencer.hold(session.id):
            await redeliver(host, existing, skip_sid)
        return _ack(existing, duplicate=True)
    return _ack(result.message, duplicate=result.duplicate)


async def _prepare(host: Host, connection: Connection, session: Session, message_type: Any,
                   request: SendRequest) -> tuple[MessageDraft, MessageContext]:
    """The draft of a send, checked by its payload model, its addressing and its type."""
    try:
        payload = message_type.payload_model.model_validate(request.payload)
    except ValidationError as exc:
        raise validation_error(exc, prefix="payload.") from None
    session = await check_addressing(host, session, request.to, request.in_reply_to)
    sender = connection.principal
    draft = MessageDraft(
        session_id=session.id,
        type=request.type,
        sender=sender.member(),
        payload=payload.model_dump(mode="json", exclude_none=True),
        client_id=request.client_id,
        to=request.to,
        in_reply_to=request.in_reply_to,
    )
    ctx = MessageContext(host=host, principal=sender, session=session, namespace=connection.namespace)
    if draft.to is not None:
        ctx.deliver_to.add(draft.to)
    await message_type.handle(ctx, draft)
    return draft, ctx


async def _resent(host: Host, session_id: str, sender_id: str, client_id: str) -> Message | None:
    """The stored message a refused send repeats, if any; None when the store cannot say."""
    try:
        return await host.store.find_message(session_id, sender_id, client_id)
    except Exception:
        log.warning("looking up a refused send's client_id failed; answering the refusal", exc_info=True)
        return None


async def store_and_deliver(host: Host, draft: MessageDraft, ctx: MessageContext, skip_sid: str | None = None) -> AppendResult:
    """Store ``draft`` and emit it, in ``seq`` order, to the session and its agents."""
    before_store, after_store = host.pm.hook.before_store, host.pm.hook.after_store
    # Hooks nobody implements are not called: a call costs a coroutine and its awaits.
    if before_store.get_hookimpls():
        await call_all(before_store, host=host, draft=draft, principal=ctx.principal)
    if ctx.checks or ctx.after_store or not getattr(host.store, "ordered_appends", False):
        result = await _store_and_deliver_held(host, draft, ctx, skip_sid)
    else:
        result = await _store_and_deliver_in_turn(host, draft, sorted(ctx.deliver_to), skip_sid)
    if not result.duplicate and after_store.get_hookimpls():
        await notify(after_store, host=host, message=result.message)
    return result


async def _store_and_deliver_in_turn(host: Host, draft: MessageDraft, agent_ids: list[str], skip_sid: str | None) -> AppendResult:
    """A message with no checks and no side effects: no lock across its commit.

    Its turn in the session's emit order is taken as the append is queued,
    with no await in between, so the turns go in the order the store hands out
    the seqs (the store's ``ordered_appends``), and the message is emitted once
    every message queued before it on this node was. So one session's messages
    share a group commit, and still leave in seq order, each after its commit.
    """
    turns: list[Turn] = []

    async def attempt() -> AppendResult:
        turn = host.sequencer.turn(draft.session_id)
        turns.append(turn)
        try:
            return await host.store.append_message(draft, agent_ids)
        except BaseException:
            turn.finish()  # nothing to emit: the next message need not wait for this one
            raise

    result = await host.store_call(attempt)
    turn = turns[-1]
    try:
        await turn.wait()
        if result.duplicate:
            await redeliver(host, result.message, skip_sid)
        else:
            await deliver(host, result.message, agent_ids, skip_sid)
    finally:
        turn.finish()
    return result


async def _store_and_deliver_held(host: Host, draft: MessageDraft, ctx: MessageContext, skip_sid: str | None) -> AppendResult:
    """A message whose checks or side effects depend on the session's earlier
    messages: the session's lock is held from the checks to the side effects."""
    async with host.sequencer.hold(draft.session_id):
        if ctx.checks and draft.client_id is not None:
            # A concurrent resend may have been stored while this one waited for
            # the lock: it is a duplicate, not something the checks may refuse.
            existing = await host.store.find_message(draft.session_id, draft.sender.id, draft.client_id)
            if existing is not None:
                await redeliver(host, existing, skip_sid)
                return AppendResult(message=existing, duplicate=True)
        for check in ctx.checks:
            await check(draft)
        # In the emit order too: the messages of the path above share the session.
        result = await _store_and_deliver_in_turn(host, draft, sorted(ctx.deliver_to), skip_sid)
        if result.duplicate:
            return result
        for side_effect in ctx.after_store:
            try:
                await side_effect(result.message)
            except Exception:
                log.exception("a side effect of message %s failed", result.message.id)
    return result


async def deliver(host: Host, message: Message, agent_ids: list[str], skip_sid: str | None) -> None:
    """Emit a stored message. A failed broadcast is logged, not raised: the
    message is stored, and clients catch up through ``since_seq``."""
    wire = message.to_wire()
    try:
        await host.sio.emit("message", wire, room=session_room(message.session_id), skip_sid=skip_sid, namespace="/chat")
        host.metrics.child(host.metrics.deliveries, "/chat").inc()
        for agent_id in agent_ids:
            await host.sio.emit("message", wire, room=agent_room(agent_id), namespace="/agents")
            host.metrics.child(host.metrics.deliveries, "/agents").inc()
    except Exception:
        log.exception("broadcast of message %s (seq %s) failed; clients will fetch it by seq", message.id, message.seq)


async def redeliver(host: Host, message: Message, skip_sid: str | None) -> None:
    """Emit a stored message again, for a resent ``client_id``: its first ack may
    have been lost after it was stored, and then nobody else got it either. The
    session and the agents that have not acked it get it again; clients drop a
    ``seq`` they hold, agents an id they handled. The caller holds the session's lock."""
    await deliver(host, message, await host.store.unacked_agents(message.id), skip_sid)


def _ack(message: Message, duplicate: bool) -> dict[str, Any]:
    return {"message": {"id": message.id, "seq": message.seq, "ts": message.ts}, "duplicate": duplicate}
