"""Engine.IO frames checked before python-engineio reads them.

python-engineio trusts a client's framing. An empty WebSocket frame escapes its
read loop ("Error in ASGI Framework", close 1011), a packet type it does not
know (``9``) is logged with a traceback and the connection stays, and a polling
body such as ``\\x1e\\x1e\\x1e`` or ``Zgarbage`` is answered 200 with a
traceback in the log. The protocol carries no binary data either (PROTOCOL.md:
one JSON object per event), so a binary frame is never a client's to send.

:class:`FrameGuard` sits in front of the Engine.IO app, at the ASGI level, and
refuses such input itself: the session gets the ``protocol.malformed`` treatment
of :meth:`tkr_host.server.TkrServer.malformed` (one log line, a security event,
an ``error`` event to its namespaces, the transport closed), and the request is
answered 400 or the WebSocket closed. Nothing of python-engineio is patched.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: ``(eio_sid or None, what was wrong, scope)``: close the session, count the event.
OnMalformed = Callable[["str | None", str, Scope], Awaitable[None]]

#: Engine.IO packet types a client may send: close, ping (the upgrade probe),
#: pong, message, upgrade, noop. ``0`` (open) is the server's; ``b`` is base64
#: binary, which the protocol does not carry.
CLIENT_PACKET_TYPES = frozenset("123456")
#: python-engineio's own limit of packets in one polling body (``Payload.max_decode_packets``).
MAX_PACKETS_PER_BODY = 16
PACKET_SEPARATOR = "\x1e"

log = logging.getLogger(__name__)


def frame_problem(frame: str | bytes | None) -> str | None:
    """What is wrong with one Engine.IO packet from a client, or None. Never quotes the input."""
    if frame is None:
        return "a frame with no data"
    if isinstance(frame, bytes | bytearray):
        return "a binary frame (the protocol carries no binary data)"
    if not frame:
        return "an empty packet"
    if frame[0] not in CLIENT_PACKET_TYPES:
        return "an unknown Engine.IO packet type"
    return None


def body_problem(body: bytes) -> str | None:
    """What is wrong with a long-polling POST body (packets joined by ``\\x1e``), or None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "a polling body that is not UTF-8"
    if not text:
        return None
    if text.startswith("d="):  # JSONP form encoding, as python-engineio reads it
        text = urllib.parse.parse_qs(text).get("d", [""])[0]
    packets = text.split(PACKET_SEPARATOR)
    if len(packets) > MAX_PACKETS_PER_BODY:
        return f"a polling body of more than {MAX_PACKETS_PER_BODY} packets"
    for packet in packets:
        problem = frame_problem(packet)
        if problem is not None:
            return problem
    return None


def query_sid(scope: Scope) -> str | None:
    query = urllib.parse.parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    values = query.get("sid")
    return values[0] if values else None


def content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


#: The most a dropped body's reader waits for Hypercorn's ``http.disconnect``, which it puts
#: as soon as the response has ended: a bound, should a server not put it.
DROP_DEADLINE_S = 30.0
#: Runs a coroutine in the background and keeps it (the host's ``spawn``).
Spawn = Callable[[Coroutine[Any, Any, None]], Any]


async def answer_with_unread_body_dropped(app: ASGIApp, scope: Scope, receive: Receive, send: Send, spawn: Spawn) -> None:
    """Run ``app`` for one HTTP request; when its response ends before it has read the whole
    body (a refusal), or it ends without reading it, the rest is read and dropped, in a task
    ``spawn`` starts.

    Hypercorn hands a body to the app through a queue of ``max_app_queue_size`` (10)
    messages, and when the response ends it puts ``http.disconnect`` in that queue. An app
    that answers a long body unread leaves the queue full, so that put waits for ever, in
    the app's own last ``send`` (or in Hypercorn's, when the app raised), and so does the
    connection's read loop with the next piece of the body: the socket and its tasks were
    held until the process ended. The reader started here ends at that ``http.disconnect``.
    """
    body_read = False

    async def reading() -> Message:
        nonlocal body_read
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            body_read = True
        return message

    dropping = False

    def drop_the_rest() -> None:
        nonlocal dropping
        if not body_read and not dropping:
            dropping = True
            spawn(_drop_until_disconnect(receive))

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            drop_the_rest()  # before the send: the send itself may wait on the full queue
        await send(message)

    try:
        await app(scope, reading, sending)
    finally:
        drop_the_rest()  # the app ended (or raised) without its last body: Hypercorn ends the response


async def _drop_until_disconnect(receive: Receive) -> None:
    try:
        async with asyncio.timeout(DROP_DEADLINE_S):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        log.warning("an unread request body was not followed by a disconnect within %s s", DROP_DEADLINE_S)


class FrameGuard:
    """ASGI middleware for the Engine.IO path: refuses malformed frames before the library sees them."""

    def __init__(self, app: ASGIApp, on_malformed: OnMalformed, max_body_bytes: int, spawn: Spawn) -> None:
        self.app = app
        self.on_malformed = on_malformed
        self.max_body_bytes = max_body_bytes
        self.spawn = spawn
        #: Engine.IO sessions with a polling POST being answered now: the protocol allows one at a time.
        self._posts_in_flight: set[str] = set()

    def posts_in_flight(self, sid: str) -> int:
        """Polling POSTs of the Engine.IO session ``sid`` being read or answered now (0 or 1)."""
        return int(sid in self._posts_in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await answer_with_unread_body_dropped(self._http, scope, receive, send, self.spawn)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") == "POST" and query_sid(scope) is not None:
            await self._polling_post(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        # An upgrade names its session in the query; a direct WebSocket learns it
        # from the open packet the server sends first.
        session = {"sid": query_sid(scope)}

        async def guarded_receive() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                frame = message.get("text") if message.get("text") is not None else message.get("bytes")
                problem = frame_problem(frame)
                if problem is not None:
                    await self.on_malformed(session["sid"], problem, scope)
                    # python-engineio ends its read loop on a disconnect and closes the session.
                    return {"type": "websocket.disconnect", "code": 1002}
            return message

        async def watching_send(message: Message) -> None:
            if session["sid"] is None and message["type"] == "websocket.send":
                text = message.get("text")
                if isinstance(text, str) and text.startswith("0{"):
                    session["sid"] = json.loads(text[1:]).get("sid")
            await send(message)

        await self.app(scope, guarded_receive, watching_send)

    async def _polling_post(self, scope: Scope, receive: Receive, send: Send) -> None:
        sid = query_sid(scope)
        assert sid is not None  # __call__ routes only POSTs that name their session here
        if sid in self._posts_in_flight:
            # A second POST while one is read: the reference server ("data request overlap
            # from client") answers 400 and closes the session; python-engineio would take
            # both, and their packets could interleave out of order.
            await self._refuse(scope, send, "a second polling POST while one is being read")
            return
        self._posts_in_flight.add(sid)
        try:
            await self._read_post(scope, receive, send)
        finally:
            self._posts_in_flight.discard(sid)

    async def _read_post(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = content_length(scope)
        if length is None:
            # python-engineio reads nothing of a body without a length.
            await self.app(scope, receive, send)
            return
        if length > self.max_body_bytes:
            # Refused here, unread: python-engineio's own refusal waits for the
            # session's queue to drain, which hangs the request when nobody polls.
            await self._refuse(scope, send, f"a polling body over {self.max_body_bytes} bytes")
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            if len(body) < length:
                body += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = body[:length]
        problem = body_problem(body)
        if problem is not None:
            await self._refuse(scope, send, problem)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send, problem: str) -> None:
        await self.on_malformed(query_sid(scope), problem, scope)
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"Bad Request"})
