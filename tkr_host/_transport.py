"""The transport: the one module that touches python-socketio's, python-engineio's,
Hypercorn's and wsproto's internals.

Everything else in the host uses the public methods of :class:`SocketIOTransport`
(``send_ack``, ``send_connect_error``, ``dispatch_event``, ``close_transport``,
``disconnect_socket``, ``is_open``, ``open_session_count``) and overrides its
public hooks (``session_refusal``, ``session_opened``, ``session_closed``,
``connect_refusal``, ``client_event``, ``malformed``); :class:`tkr_host.server.TkrServer`
is that subclass. What it relies on was read in the versions that
``pyproject.toml`` pins, with upper bounds: :func:`tkr_host._versions.check_versions`
refuses to start on any other (the ranges are read from the installed package's
metadata, so they are written once, in ``pyproject.toml``).

What the transport adds to the stock stack, without forking a library:

* **Engine.IO as the reference server answers it** (the official protocol suites,
  docs/operations.md): a request with no ``transport``, or with an HTTP method
  other than GET, POST and OPTIONS, is answered 400; a poll that arrives after the
  session missed its heartbeat is answered 400 (python-engineio's timer notices
  only later); a second poll while one is pending closes the session; a
  pending poll is answered ``6`` (noop) when the client closes the session
  with a POST; a poll or a WebSocket for a session that is upgrading or upgraded
  is refused (python-engineio would start a second upgrade that waits for ever
  for its probe); a POST is answered ``ok``, as the protocol spells it (not ``OK``);
  and ``pingInterval`` is advertised in milliseconds as
  configured (python-engineio truncates it to whole seconds, so 0.3 s is 0).
* **permessage-deflate under the host's control** (``[host] websocket_compression``,
  ``websocket_compression_min_bytes``). Hypercorn accepts every deflate offer
  and has no option to refuse it (Hypercorn issue #307); it decides when the app
  accepts the WebSocket, by building ``hypercorn.protocol.ws_stream.PerMessageDeflate()``.
  That one name is replaced with :class:`HostDeflate`, which reads the accepting
  app's policy from a context variable set per request. Under ``tkr-host serve``
  and plain ``hypercorn`` alike, an app that sets no policy keeps Hypercorn's
  behaviour.
* **Hypercorn's ``read_timeout`` without a task per read**: :mod:`tkr_host._read_deadline`
  keeps the bound as one deadline per connection (installed here, like the deflate policy).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
import urllib.parse
import zlib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import hypercorn.protocol.ws_stream as hypercorn_ws_stream
import socketio
from engineio import packet as eio_packet
from socketio import packet
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, Opcode, RsvBits

from tkr_host._read_deadline import install_read_deadline
from tkr_host._socket_queue import EngineIOServer
from tkr_host._versions import TransportVersionError, check_versions

log = logging.getLogger(__name__)

#: HTTP methods Engine.IO serves; any other is a bad request, as in the reference server.
ENGINEIO_METHODS = frozenset({"GET", "POST", "OPTIONS"})
#: Close code for a second WebSocket of a session that is upgrading or upgraded.
POLICY_VIOLATION = 1008
#: How long a poll that arrives during an upgrade waits for the upgrade's last packet
#: (python-engineio would answer it noop after the upgrade was sent), and how often it looks.
UPGRADE_SETTLE_STEP_S = 0.005
UPGRADE_SETTLE_STEPS = 10


# --- permessage-deflate, as the host decides ---------------------------------------


@dataclass(frozen=True)
class CompressionPolicy:
    """Whether a WebSocket may use permessage-deflate, and the smallest message compressed."""

    enabled: bool = False
    min_bytes: int = 1024
    #: The most one received message may inflate to. Engine.IO refuses a larger one anyway
    #: (``max_http_buffer_size``, PROTOCOL.md's maxPayload), and Hypercorn's own check
    #: (``websocket_max_message_size``) comes only after wsproto has inflated a whole read.
    max_inflated_bytes: int = 1_048_576


#: The policy of the app serving the current request (set in its task; None: Hypercorn's own behaviour).
_compression_policy: contextvars.ContextVar[CompressionPolicy | None] = contextvars.ContextVar("tkr_compression_policy", default=None)


class HostDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate that declines the offer when the host's policy is off,
    sends messages under ``min_bytes`` uncompressed (RFC 7692, 6.1, lets a sender), and
    inflates no received message past ``max_inflated_bytes``.

    The last is a bound on memory: wsproto inflates each read (up to 64 KiB from Hypercorn)
    whole, and deflate's ratio reaches about 1 000:1, so one read of a "zip bomb" would
    become some 64 MiB of bytes, and as much again of text, before Hypercorn's size check
    closes the socket. Here the inflater stops one byte past the limit, and wsproto reports
    the frame as failed (1009); Hypercorn ends the connection then, as it does on any
    WebSocket protocol error, without a close frame."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = _compression_policy.get()
        #: Bytes the current received message has inflated to so far.
        self.inflated_bytes = 0

    def frame_inbound_header(self, proto: Any, opcode: Opcode, rsv: RsvBits, payload_length: int) -> Any:
        if self._inbound_compressed is None:  # the first frame of a message (wsproto resets it after the last)
            self.inflated_bytes = 0
        return super().frame_inbound_header(proto, opcode, rsv, payload_length)

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        if self.policy is None or not self._inbound_compressed or not self._inbound_is_compressible:
            return super().frame_inbound_payload_data(proto, data)
        assert self._decompressor is not None  # wsproto made it in frame_inbound_header
        room = self.policy.max_inflated_bytes - self.inflated_bytes
        try:
            # max_length bounds the output; what is left stays in unconsumed_tail, never inflated.
            inflated: bytes = self._decompressor.decompress(bytes(data), room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self.inflated_bytes += len(inflated)
        if self.inflated_bytes > self.policy.max_inflated_bytes:
            return CloseReason.MESSAGE_TOO_BIG
        return inflated

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        if self.policy is not None and self.inflated_bytes > self.policy.max_inflated_bytes:
            # Never flush(): it would inflate the whole unconsumed tail at once.
            return CloseReason.MESSAGE_TOO_BIG
        tail = super().frame_inbound_complete(proto, fin)
        if self.policy is not None and isinstance(tail, bytes):
            self.inflated_bytes += len(tail)  # what the sync marker released: at most the 32 KiB window
            if self.inflated_bytes > self.policy.max_inflated_bytes:
                return CloseReason.MESSAGE_TOO_BIG
        return tail

    def accept(self, offer: str) -> bool | str | None:
        if self.policy is not None and not self.policy.enabled:
            return None  # declined: no Sec-WebSocket-Extensions in the response, no zlib state
        return super().accept(offer)

    def frame_outbound(self, proto: Any, opcode: Opcode, rsv: RsvBits, data: bytes, fin: bool) -> tuple[RsvBits, bytes]:
        # A whole message below the threshold goes out as it is, RSV1 clear. Hypercorn
        # sends each message as one frame, so a continuation never follows it.
        if self.policy is not None and fin and opcode is not Opcode.CONTINUATION and len(data) < self.policy.min_bytes:
            return rsv, data
        return super().frame_outbound(proto, opcode, rsv, data, fin)


#: wsproto's own state that HostDeflate reads to bound inflation (checked at start-up).
_DEFLATE_PRIVATES = ("_inbound_compressed", "_inbound_is_compressible", "_decompressor")


def install_compression_control() -> None:
    """Make Hypercorn build :class:`HostDeflate` where it builds wsproto's PerMessageDeflate."""
    current = getattr(hypercorn_ws_stream, "PerMessageDeflate", None)
    if current is HostDeflate:
        return
    if current is not PerMessageDeflate:
        raise TransportVersionError("hypercorn.protocol.ws_stream no longer builds wsproto's PerMessageDeflate: "
                                    "[host] websocket_compression cannot be enforced with this Hypercorn")
    missing = [name for name in _DEFLATE_PRIVATES if not hasattr(PerMessageDeflate(), name)]
    if missing:
        raise TransportVersionError(f"wsproto's PerMessageDeflate has no {', '.join(missing)}: received messages cannot be bounded")
    setattr(hypercorn_ws_stream, "PerMessageDeflate", HostDeflate)  # noqa: B010 (the one name Hypercorn builds it by)


# --- the Socket.IO and Engine.IO servers --------------------------------------------


def _query(scope: Mapping[str, Any]) -> dict[str, list[str]]:
    return urllib.parse.parse_qs((scope.get("query_string") or b"").decode("latin-1"))


class _BinaryAttachments(ValueError):
    """A Socket.IO packet that announces binary attachments."""


class SocketIOTransport(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, with its internals kept behind public methods and hooks."""

    def _engineio_server_class(self) -> type[EngineIOServer]:
        return EngineIOServer

    def __init__(self, *, ping_interval: float, **options: Any) -> None:
        check_versions()
        install_compression_control()
        install_read_deadline()
        # Events are answered in tasks the host starts (client_event), not one task per packet.
        super().__init__(async_handlers=False, ping_interval=ping_interval, **options)
        self.ping_interval_ms = round(ping_interval * 1000)
        #: Polling GETs being answered, per Engine.IO session (an entry exists only while one is).
        self._polls_in_flight: dict[str, int] = {}

    # --- hooks for the host (tkr_host.server.TkrServer) ---------------------------

    def compression_policy(self) -> CompressionPolicy:
        """Whether WebSockets of this server may use permessage-deflate (default: no)."""
        return CompressionPolicy()

    async def session_refusal(self, eio_sid: str, environ: Mapping[str, Any]) -> dict[str, Any] | None:
        """The body of a 401 that refuses a new Engine.IO session, or None to open it."""
        return None

    def session_opened(self, eio_sid: str, environ: Mapping[str, Any]) -> None:
        """An Engine.IO session was opened."""

    def session_closed(self, eio_sid: str) -> None:
        """An Engine.IO session ended (its namespaces were disconnected first)."""

    async def connect_refusal(self, eio_sid: str, namespace: str) -> dict[str, Any] | None:
        """The data of a CONNECT_ERROR that refuses this namespace connect, or None to go on."""
        return None

    async def client_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        """An EVENT packet arrived; the default answers it inline (see :meth:`dispatch_event`)."""
        await self.dispatch_event(eio_sid, namespace, id, data)

    async def malformed(self, eio_sid: str | None, detail: str, scope: Mapping[str, Any] | None = None) -> None:
        """A client sent what the host refuses; the default closes its transport."""
        if eio_sid:
            await self.close_transport(eio_sid)

    # --- public methods for the host ------------------------------------------

    async def dispatch_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        """Route an event to its handler as python-socketio does, and send its ack."""
        await super()._handle_event(eio_sid, namespace, id, data)

    async def send_ack(self, eio_sid: str, namespace: str, id: int, data: list[Any]) -> None:
        await self._send_packet(eio_sid, self.packet_class(packet.ACK, namespace=namespace, id=id, data=data))

    async def send_connect_error(self, eio_sid: str, namespace: str, data: dict[str, Any]) -> None:
        await self._send_packet(eio_sid, self.packet_class(packet.CONNECT_ERROR, namespace=namespace, data=data))

    def is_open(self, eio_sid: str) -> bool:
        return eio_sid in self.eio.sockets

    def open_session_count(self) -> int:
        return len(self.eio.sockets)

    def pending_polls(self, eio_sid: str) -> int:
        """Long-polling GETs of the session being answered now."""
        return self._polls_in_flight.get(eio_sid, 0)

    def heartbeat_deadline(self, eio_sid: str) -> float | None:
        """The ``time.time()`` by which the client must answer the ping it was sent; None when none is due."""
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or not socket.last_ping:
            return None
        return float(socket.last_ping + self.eio.ping_timeout)

    def is_upgraded(self, eio_sid: str) -> bool:
        """Whether the session moved from long-polling to its WebSocket (or started on one)."""
        socket = self.eio.sockets.get(eio_sid)
        return bool(socket is not None and socket.upgraded)

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

    async def disconnect_socket(self, sid: str, namespace: str, error: dict[str, Any]) -> None:
        """Send ``error`` to one socket, then close its whole connection, transport included."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        await self.emit("error", error, to=sid, namespace=namespace)
        if eio_sid is not None:
            await self.close_transport(eio_sid)

    # --- python-socketio's handlers, overridden ---------------------------------

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        refusal = await self.session_refusal(eio_sid, environ)
        if refusal is not None:
            return refusal  # python-engineio answers anything but True/None with 401 and this body
        self._advertise_ping_interval(eio_sid)
        result = await super()._handle_eio_connect(eio_sid, environ)
        # python-engineio's ASGI driver makes a class per request for the body
        # reader (``wsgi.input``), and the environ, kept for the session's life,
        # holds it: 2.5 KiB per idle socket (docs/performance.md). The handshake's
        # body is read by now and nothing reads it later (a POST has its own environ).
        environ.pop("wsgi.input", None)
        self.session_opened(eio_sid, environ)
        return result

    def _advertise_ping_interval(self, eio_sid: str) -> None:
        """Put the configured pingInterval, in milliseconds, into the session's OPEN packet.

        python-engineio queues OPEN before it triggers ``connect``, and computes
        ``int(interval + grace) * 1000``: 0.3 s would be advertised as 0.
        """
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.queue.qsize() != 1:
            return
        open_packet = socket.queue.get_nowait()
        socket.queue.task_done()
        if open_packet.packet_type == eio_packet.OPEN and isinstance(open_packet.data, dict):
            open_packet.data["pingInterval"] = self.ping_interval_ms
        socket.queue.put_nowait(open_packet)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> Any:
        try:
            return await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            self.session_closed(eio_sid)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> Any:
        namespace = namespace or "/"
        refusal = await self.connect_refusal(eio_sid, namespace)
        if refusal is None:
            return await super()._handle_connect(eio_sid, namespace, data)
        await self.send_connect_error(eio_sid, namespace, refusal)
        return None

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> Any:
        await self.client_event(eio_sid, namespace, id, data)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> Any:
        try:
            if not isinstance(data, str) or data[:1] in (str(packet.BINARY_EVENT), str(packet.BINARY_ACK)):
                # Refused before python-socketio would wait for (and keep) attachments:
                # the protocol carries no binary data.
                raise _BinaryAttachments("binary attachments")
            return await super()._handle_eio_message(eio_sid, data)
        except Exception as exc:
            await self.malformed(eio_sid, str(exc) if isinstance(exc, _BinaryAttachments) else type(exc).__name__)
            return None

    # --- Engine.IO requests, as the reference server answers them ---------------

    async def handle_request(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        # In this request's task: Hypercorn builds its deflate extension here when
        # the WebSocket is accepted (HostDeflate reads it).
        _compression_policy.set(self.compression_policy())
        query = _query(scope)
        sid = query.get("sid", [None])[0]
        if scope["type"] == "http" and scope.get("method", "GET") not in ENGINEIO_METHODS:
            await _bad_request(scope, send, 2, "Bad handshake method")
            return
        if scope["type"] == "http" and scope.get("method") == "OPTIONS":
            await self.eio.handle_request(scope, receive, send)
            return
        if "transport" not in query:
            await _bad_request(scope, send, 0, "Transport unknown")
            return
        socket = self.eio.sockets.get(sid) if sid else None
        if socket is None:
            await self.eio.handle_request(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket_for_session(socket, scope, receive, send)
        elif scope.get("method") == "GET":
            await self._poll(socket, scope, receive, send)
        else:
            await self._post(socket, scope, receive, send)

    async def _websocket_for_session(self, socket: Any, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if socket.upgrading or socket.upgraded:
            # python-engineio would start a second upgrade whose probe never comes.
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
            return
        await self.eio.handle_request(scope, receive, send)

    async def _poll(self, socket: Any, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        sid = socket.sid
        if socket.upgrading:
            # The client may have sent UPGRADE (5) already: its WebSocket frames pass
            # through more tasks than this request did. Let them land, briefly.
            for _ in range(UPGRADE_SETTLE_STEPS):
                if not socket.upgrading:
                    break
                await asyncio.sleep(UPGRADE_SETTLE_STEP_S)
        if socket.upgraded:
            await _bad_request(scope, send, 3, "Bad request")
            return
        deadline = self.heartbeat_deadline(sid)
        if not socket.closed and deadline is not None and time.time() > deadline:
            # The heartbeat's deadline passed; python-engineio's timer would notice later.
            await socket.check_ping_timeout()
        if not socket.closed and self._polls_in_flight.get(sid):
            # A second poll while one is pending: the reference server closes the session,
            # which answers the pending poll with a close packet.
            await socket.close(wait=False, abort=False, reason=self.eio.reason.TRANSPORT_ERROR)
            await _bad_request(scope, send, 3, "Bad request")
            return
        self._polls_in_flight[sid] = self._polls_in_flight.get(sid, 0) + 1
        try:
            await self.eio.handle_request(scope, receive, send)
        finally:
            left = self._polls_in_flight.get(sid, 1) - 1
            if left > 0:
                self._polls_in_flight[sid] = left
            else:
                self._polls_in_flight.pop(sid, None)

    async def _post(self, socket: Any, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        was_closed = socket.closed

        async def send_ok_as_the_protocol_spells_it(message: MutableMapping[str, Any]) -> None:
            # The protocol: "HTTP 200, with the string `ok` in the response body"; python-engineio writes OK.
            if message["type"] == "http.response.body" and message.get("body") == b"OK":
                message = {**message, "body": b"ok"}
            await send(message)

        await self.eio.handle_request(scope, receive, send_ok_as_the_protocol_spells_it)
        if socket.closed and not was_closed and self._polls_in_flight.get(socket.sid):
            # The client closed the session: its pending poll ends with a noop.
            socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))


async def _bad_request(scope: Mapping[str, Any], send: Any, code: int, message: str) -> None:
    """A 400 in the reference server's form (``{"code", "message"}``), or a refused WebSocket."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close"})  # before accept: Hypercorn answers the handshake 403
        return
    body = json.dumps({"code": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
