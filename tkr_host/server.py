"""python-socketio's server, with the protocol hygiene the reference server has.

Against the official Socket.IO and Engine.IO test suites, the stock stack keeps
two kinds of connection open that the reference server closes. This subclass
closes them, without forking the library:

* an Engine.IO session that connects no namespace within
  ``[host] connect_timeout_s``;
* a client that sends a Socket.IO packet the library cannot parse or does not
  expect (python-socketio logs it and keeps the connection). That also counts
  as a ``malformed_packet`` security event.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import socketio
from socketio import packet

from tkr_host.dispatch import RESERVED_EVENTS
from tkr_host.errors import HostError, failure
from tkr_host.handshake import headers_from_environ, peer_address
from tkr_host.types import SecurityEvent

if TYPE_CHECKING:
    from tkr_host.host import Host

log = logging.getLogger(__name__)

SERVED_NAMESPACES = ("/chat", "/agents", "/tasks")


class TkrServer(socketio.AsyncServer):  # type: ignore[misc]
    host: Host

    # --- a session that never connects a namespace ---------------------------------

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        result = await super()._handle_eio_connect(eio_sid, environ)
        self.host.spawn(self._close_if_no_namespace(eio_sid))
        return result

    def _has_namespace(self, eio_sid: str) -> bool:
        return any(self.manager.sid_from_eio_sid(eio_sid, namespace) for namespace in SERVED_NAMESPACES)

    async def _close_if_no_namespace(self, eio_sid: str) -> None:
        await asyncio.sleep(self.host.settings.host.connect_timeout_s)
        if eio_sid in self.environ and not self._has_namespace(eio_sid):
            log.info("closing Engine.IO session %s: no namespace within %.0f s", eio_sid, self.host.settings.host.connect_timeout_s)
            await self.close_transport(eio_sid)

    # --- event names the handlers must never see ----------------------------------------

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> Any:
        """Answer events whose name no handler may see, before python-socketio routes them.

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
            return await super()._handle_event(eio_sid, namespace, id, data)
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        connection = self.host.connection(sid, namespace) if sid else None
        if connection is None:
            return None
        if event == "*":
            error = HostError("validation.unknown_event", message="'*' is not an event.")
        else:
            error = HostError("protocol.reserved_event", message=f"{event!r} is a reserved event name.")
            await self.host.security_event(SecurityEvent("reserved_event", connection.peer, connection.principal.id, sid, namespace, event))
        await self.host.report_error(error, {"namespace": namespace, "event": event, "sid": sid})
        if id is not None:
            await self._send_packet(eio_sid, self.packet_class(packet.ACK, namespace=namespace, id=id, data=[failure(error)]))
        return None

    # --- packets the library cannot handle ---------------------------------------------

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> Any:
        try:
            return await super()._handle_eio_message(eio_sid, data)
        except Exception as exc:
            await self._malformed(eio_sid, exc)
            return None

    async def _malformed(self, eio_sid: str, exc: Exception) -> None:
        environ = self.environ.get(eio_sid, {})
        peer = peer_address(environ.get("asgi.scope"), headers_from_environ(environ), self.host.settings.host.trusted_proxies)
        log.warning("malformed Socket.IO packet from %s (%s): closing the connection", peer, type(exc).__name__)
        sids = [(namespace, self.manager.sid_from_eio_sid(eio_sid, namespace)) for namespace in SERVED_NAMESPACES]
        principal_ids = [conn.principal.id for ns, sid in sids if sid and (conn := self.host.connection(sid, ns))]
        await self.host.security_event(SecurityEvent("malformed_packet", peer, principal_ids[0] if principal_ids else None,
                                                     detail=type(exc).__name__))
        error = HostError("protocol.malformed")
        for namespace, sid in sids:
            if sid:
                await self.emit("error", error.to_wire(), to=sid, namespace=namespace)
        await self.close_transport(eio_sid)

    # --- closing for real ------------------------------------------------------------

    async def close_transport(self, eio_sid: str) -> None:
        """Close an Engine.IO session and its transport, without waiting on the client.

        ``eio.disconnect`` queues a close packet, which engine.io-client ignores
        over WebSocket, and then waits for the queue to drain, which a client
        that went away never does. Closing without waiting and waking the writer
        with ``None`` sends what is queued, then closes the WebSocket itself.
        """
        socket = self.eio.sockets.pop(eio_sid, None)
        if socket is None:
            return
        await socket.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT)
        socket.queue.put_nowait(None)
