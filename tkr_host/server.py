"""The host's rules for Engine.IO sessions and Socket.IO packets.

:class:`TkrServer` is the transport (:mod:`tkr_host._transport`, which alone
touches python-socketio's internals) with the protocol hygiene the reference
server has. Against the official Socket.IO and Engine.IO test suites, the stock
stack keeps two kinds of connection open that the reference server closes. This
subclass closes them:

* an Engine.IO session that connects no namespace within
  ``[host] connect_timeout_s``;
* a client that sends a Socket.IO packet the library cannot parse or does not
  expect (python-socketio logs it and keeps the connection). That also counts
  as a ``malformed_packet`` security event. A packet that declares binary
  attachments is one of them: python-socketio would buffer every binary frame
  that follows, without limit, and the protocol carries no binary data.

It also bounds what one client can make the host hold:

* at most ``[host] max_unconnected_sessions_per_address`` Engine.IO sessions
  of one address wait for their first namespace connect; more handshakes are
  refused (401 with ``rate_limit.connect``);
* at most ``[host] max_inflight_events`` events of one Engine.IO session are
  answered at a time. The next packet waits, and so does the read loop behind
  it, so a flood backs up into Hypercorn's bounded queue and TCP, not memory.
  (python-socketio's own ``async_handlers`` would start a task per event.)

A second connect to a namespace the socket is connected to already is answered
``protocol.already_connected`` (python-socketio answers a bare string).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tkr_host._transport import CompressionPolicy, SocketIOTransport
from tkr_host.dispatch import RESERVED_EVENTS
from tkr_host.errors import HostError, failure
from tkr_host.handshake import headers_from_environ, headers_from_scope, peer_address
from tkr_host.types import SecurityEvent

if TYPE_CHECKING:
    from tkr_host._host import Host

log = logging.getLogger(__name__)

SERVED_NAMESPACES = ("/chat", "/agents", "/tasks")
#: A refused handshake is logged once, then once per this many.
REFUSALS_PER_LOG_LINE = 1000


class TkrServer(SocketIOTransport):
    host: Host

    def __init__(self, **options: Any) -> None:
        # Events are answered in tasks started here, at most max_inflight_events
        # per session at a time (see client_event), not one task per packet.
        super().__init__(**options)
        #: The peer address of every Engine.IO session, and per address the
        #: sessions that had connected no namespace when last looked at.
        self._peer_of: dict[str, str] = {}
        self._unconnected_of: dict[str, set[str]] = {}
        #: Events being answered, per Engine.IO session.
        self._event_slots: dict[str, asyncio.Semaphore] = {}
        #: Per Engine.IO session until it connects a namespace or closes: the connect timeout.
        self._connect_timers: dict[str, asyncio.TimerHandle] = {}
        self._refused_handshakes = 0

    # --- Engine.IO sessions: per address, and those that never connect a namespace ---

    def compression_policy(self) -> CompressionPolicy:
        settings = self.host.settings.host
        return CompressionPolicy(settings.websocket_compression, settings.websocket_compression_min_bytes)

    def peer_of_environ(self, environ: Mapping[str, Any]) -> str:
        return peer_address(environ.get("asgi.scope"), headers_from_environ(environ), self.host.settings.host.trusted_proxies)

    def peer_of_scope(self, scope: Mapping[str, Any]) -> str:
        return peer_address(scope, headers_from_scope(scope), self.host.settings.host.trusted_proxies)

    async def session_refusal(self, eio_sid: str, environ: Mapping[str, Any]) -> dict[str, Any] | None:
        peer = self.peer_of_environ(environ)
        limit = self.host.settings.host.max_unconnected_sessions_per_address
        # A session that has connected a namespace leaves the set for good, so
        # each handshake looks only at those still waiting (at most the limit),
        # not at every session of the address: 10,000 sockets from one proxy
        # made each new handshake a walk over all of them.
        unconnected = self._unconnected_of.get(peer, set())
        unconnected.difference_update([other for other in unconnected if self._has_namespace(other)])
        waiting = len(unconnected)
        if waiting < limit:
            return None
        self._refused_handshakes += 1
        if self._refused_handshakes % REFUSALS_PER_LOG_LINE == 1:  # a flood must not flood the log
            log.warning("refusing Engine.IO handshakes from %s: %d sessions of that address have connected no namespace "
                        "yet (%d refused so far)", peer, waiting, self._refused_handshakes)
        await self.host.security_event(SecurityEvent("rate_limited", peer, detail="engineio_sessions"))
        error = HostError("rate_limit.connect", message="Too many sessions of this address have connected no namespace yet.",
                          retry_after=1.0, hint="Connect a namespace on the sessions already open, or wait.")
        return error.to_wire()

    def session_opened(self, eio_sid: str, environ: Mapping[str, Any]) -> None:
        peer = self.peer_of_environ(environ)
        self._peer_of[eio_sid] = peer
        self._unconnected_of.setdefault(peer, set()).add(eio_sid)
        # A timer, not a task sleeping for connect_timeout_s: every idle socket
        # held one for its first 45 s (a task, its coroutine and a future each).
        loop = asyncio.get_running_loop()
        self._connect_timers[eio_sid] = loop.call_later(self.host.settings.host.connect_timeout_s, self._connect_timed_out, eio_sid)

    def session_closed(self, eio_sid: str) -> None:
        self._event_slots.pop(eio_sid, None)
        timer = self._connect_timers.pop(eio_sid, None)
        if timer is not None:
            timer.cancel()
        peer = self._peer_of.pop(eio_sid, None)
        sessions = self._unconnected_of.get(peer, set()) if peer is not None else set()
        sessions.discard(eio_sid)
        if peer is not None and not sessions:
            self._unconnected_of.pop(peer, None)

    def _has_namespace(self, eio_sid: str) -> bool:
        return any(self.manager.sid_from_eio_sid(eio_sid, namespace) for namespace in SERVED_NAMESPACES)

    def _connect_timed_out(self, eio_sid: str) -> None:
        self._connect_timers.pop(eio_sid, None)
        if eio_sid in self.environ and not self._has_namespace(eio_sid):
            # protocol.md: the code is "in the log only", there is no namespace to send it to.
            log.info("protocol.connect_timeout: closing Engine.IO session %s: no namespace within %g s",
                     eio_sid, self.host.settings.host.connect_timeout_s)
            self.host.spawn(self.close_transport(eio_sid))

    # --- a second connect to the same namespace -----------------------------------------

    async def connect_refusal(self, eio_sid: str, namespace: str) -> dict[str, Any] | None:
        if self.manager.sid_from_eio_sid(eio_sid, namespace) is None:
            return None
        error = HostError("protocol.already_connected", message=f"This socket is connected to {namespace} already.")
        await self.host.report_error(error, {"namespace": namespace, "event": "connect", "sid": None})
        # The same shape as every other refused connect (ConnectionRefusedError's).
        return {"message": error.code, "data": error.to_wire()}

    # --- event names the handlers must never see, and how many run at once ---------------

    async def client_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        """Answer events whose name no handler may see, before python-socketio routes them;
        start the others, at most ``max_inflight_events`` of the session at a time.

        python-socketio runs a client event named ``connect`` or ``disconnect``
        through the real handler with the client's arguments, gives an event
        named ``*`` to the catch-all without its name, and fails (with no ack) on
        a name that is a list or an object. A name that is not a string is a
        malformed packet; a reserved name is refused with an ack.
        """
        if not data or not isinstance(data[0], str):
            raise ValueError("an event needs a name that is a string")
        event = data[0]
        if event not in RESERVED_EVENTS and event != "*":
            slots = self._event_slots.get(eio_sid)
            if slots is None:
                slots = self._event_slots[eio_sid] = asyncio.Semaphore(self.host.settings.host.max_inflight_events)
            # Waiting here holds up this session's read loop: the client's next
            # packets stay in Hypercorn's bounded queue and in TCP.
            await slots.acquire()
            self.host.spawn(self._answer_in_slot(slots, eio_sid, namespace, id, data))
            return
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        connection = self.host.connection(sid, namespace) if sid else None
        if connection is None:
            return
        if event == "*":
            error = HostError("validation.unknown_event", message="'*' is not an event.")
        else:
            error = HostError("protocol.reserved_event", message=f"{event!r} is a reserved event name.")
            await self.host.security_event(SecurityEvent("reserved_event", connection.peer, connection.principal.id, sid, namespace, event))
        await self.host.report_error(error, {"namespace": namespace, "event": event, "sid": sid})
        if id is not None:
            await self.send_ack(eio_sid, namespace, id, [failure(error)])

    async def _answer_in_slot(self, slots: asyncio.Semaphore, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        try:
            # With async_handlers off, python-socketio answers the event inline.
            await self.dispatch_event(eio_sid, namespace, id, data)
        finally:
            slots.release()

    # --- packets the library cannot handle ---------------------------------------------

    async def malformed(self, eio_sid: str | None, detail: str, scope: Mapping[str, Any] | None = None) -> None:
        """Refuse a client's malformed input: one log line, a ``malformed_packet``
        security event, an ``error`` event ``protocol.malformed`` to its
        namespaces, and its transport closed.

        Input that arrives for a session closed already (the rest of a flood)
        is dropped without another event: one refusal per session.
        """
        if eio_sid and not self.is_open(eio_sid):
            return
        environ = self.environ.get(eio_sid, {}) if eio_sid else {}
        # A session that is known has its environ; a frame refused before that, its ASGI scope.
        peer = self.peer_of_environ(environ) if environ else self.peer_of_scope(scope or {})
        log.warning("malformed input from %s (%s): closing the connection", peer, detail)
        sids = [(namespace, self.manager.sid_from_eio_sid(eio_sid, namespace)) for namespace in SERVED_NAMESPACES] if eio_sid else []
        principal_ids = [conn.principal.id for ns, sid in sids if sid and (conn := self.host.connection(sid, ns))]
        await self.host.security_event(SecurityEvent("malformed_packet", peer, principal_ids[0] if principal_ids else None,
                                                     detail=detail))
        error = HostError("protocol.malformed")
        for namespace, sid in sids:
            if sid:
                await self.emit("error", error.to_wire(), to=sid, namespace=namespace)
        if eio_sid:
            await self.close_transport(eio_sid)
