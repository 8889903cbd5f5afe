"""Socket.IO plumbing shared by every namespace: connect, disconnect, and the
catch-all that answers every event exactly once.

python-socketio sends no ack when a handler raises or when an event has no
handler, so each namespace gets one ``"*"`` handler that checks the payload,
finds the event's handler, and turns every outcome into ``{"ok": true, …}`` or
``{"ok": false, "error": Error}``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import socketio
from pydantic import ValidationError

from tkr_host import logs
from tkr_host._host import Connection, Host
from tkr_host.errors import HostError, failure, internal_error, make_request_id
from tkr_host.handshake import build_handshake
from tkr_host.plugins import call_all, call_first, notify
from tkr_host.types import Handshake, Principal, SecurityEvent

log = logging.getLogger(__name__)

EventHandler = Callable[[Host, Connection, dict[str, Any]], Awaitable[dict[str, Any]]]
ConnectionHook = Callable[[Host, Connection], Awaitable[None]]

#: Names Socket.IO clients reserve; a client event with one of them is refused.
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"})


@dataclass
class NamespaceSpec:
    """What one namespace serves and who may connect to it."""

    path: str
    events: dict[str, EventHandler]
    admits: Callable[[Principal], bool] = lambda principal: True
    joined: ConnectionHook | None = None
    left: ConnectionHook | None = None
    refusal: str = "permission.namespace"


def validation_error(exc: ValidationError, prefix: str = "") -> HostError:
    """A pydantic error as ``validation.payload``, naming each bad field but
    never echoing the input back."""
    fields = [_field_problem(problem, prefix) for problem in exc.errors(include_input=False)[:20]]
    names = ", ".join(sorted({f["field"] or "(payload)" for f in fields}))
    return HostError("validation.payload", message=f"Invalid fields: {names}.", details={"fields": fields})


#: The characters of the locations pydantic builds from a model (field names,
#: union tags, ``function-after[...]``). A part with any other is not ours.
_LOCATION_PART = re.compile(r"[A-Za-z0-9_.\-\[\](), ]{1,100}")


def _field_problem(problem: Any, prefix: str) -> dict[str, str]:
    """``{field, problem}`` for one pydantic error, with nothing the client wrote in it."""
    loc = [str(part) for part in problem["loc"]]
    if problem["type"] == "extra_forbidden" and loc:
        loc[-1] = "(unknown field)"  # the key is the client's, not one of the model's
    loc = [part if _LOCATION_PART.fullmatch(part) else "(key)" for part in loc]
    text = problem["msg"]
    if problem["type"] == "union_tag_invalid":
        # pydantic's text repeats the tag the client sent.
        context = problem.get("ctx", {})
        text = f"The value of {context.get('discriminator', 'the tag')} must be one of {context.get('expected_tags', 'the known tags')}"
    # An error of the whole model (a root union's tag) has no location: it is the prefix's
    # field itself, ``payload``, not ``payload.``.
    field = prefix + ".".join(loc) if loc else prefix.removesuffix(".")
    return {"field": field, "problem": text}


def json_problem(data: Any) -> tuple[str, str] | None:
    """The first value of a decoded payload that is not portable JSON, as ``(field, problem)``.

    The packet parser accepts what JSON forbids: ``NaN`` and ``Infinity``
    (which would be stored as ``null``) and strings with lone surrogates (which
    cannot be encoded as UTF-8). The field is named like pydantic's, dotted,
    and the value is never echoed. The walk uses a stack: nesting is bounded
    by the parser, not by Python's recursion.
    """
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if not _encodes(value):
                return path, "a string with a lone surrogate, which is not valid UTF-8"
        elif isinstance(value, float):
            if not math.isfinite(value):
                return path, "NaN and Infinity are not JSON numbers"
        elif isinstance(value, dict):
            for key, item in value.items():
                # A client's key is named only when it could be one of ours: never echoed.
                part = key if isinstance(key, str) and _LOCATION_PART.fullmatch(key) else "(key)"
                name = f"{path}.{part}" if path else part
                if isinstance(key, str) and not _encodes(key):
                    return path, "a key with a lone surrogate, which is not valid UTF-8"
                stack.append((name, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{index}" if path else str(index), item) for index, item in enumerate(value))
    return None


#: How deep an event payload may nest objects and arrays, the event's own object
#: being level 1 (docs/protocol.md, "Transport and limits"). Without a bound, a
#: small payload nested a few hundred levels passed the size check, was stored
#: (a session's ``metadata``), and then failed pydantic's serialization on every
#: later read: one ``session:create`` broke its creator's ``session:list`` for good.
MAX_PAYLOAD_DEPTH = 32


def too_deep(data: dict[str, Any], limit: int = MAX_PAYLOAD_DEPTH) -> str | None:
    """The top-level key under which ``data`` nests deeper than ``limit`` levels, if any.

    Only containers are walked (a stack, not recursion), so the usual payload,
    a few small objects, costs a few steps.
    """
    for key, value in data.items():
        if not isinstance(value, (dict, list)):
            continue
        stack: list[tuple[Any, int]] = [(value, 2)]
        while stack:
            container, depth = stack.pop()
            if depth > limit:
                return key
            items = container.values() if isinstance(container, dict) else container
            stack.extend((item, depth + 1) for item in items if isinstance(item, (dict, list)))
    return None


def _too_deep_error(key: str) -> HostError:
    field_name = key if _LOCATION_PART.fullmatch(key) else "(key)"
    return HostError("validation.payload", message=f"Invalid fields: {field_name}.",
                     details={"fields": [{"field": field_name, "problem": f"nested deeper than {MAX_PAYLOAD_DEPTH} levels"}]})


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def payload_size(data: Any) -> int:
    """The UTF-8 size of an event payload as JSON; raises TypeError for binary data
    and ValueError for NaN, Infinity and lone surrogates (not portable JSON)."""
    return len(json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8"))


async def identify(host: Host, handshake: Handshake, sid: str | None = None) -> Principal:
    """The principal behind a handshake, as the auth plugins see it.

    Auth failures are reported as security events. Without credentials, a
    socket (``sid`` given) may connect anonymously when the host allows it; an
    HTTP request never does.
    """
    try:
        principal: Principal | None = await call_first(host.pm.hook.authenticate, host=host, handshake=handshake)
    except HostError as error:
        if error.category == "auth":
            await host.security_event(SecurityEvent("auth_failure", handshake.peer, sid=sid, namespace=handshake.namespace,
                                                    detail=error.code))
        raise
    if principal is not None:
        return principal
    if handshake.token is not None:
        await host.security_event(SecurityEvent("auth_failure", handshake.peer, sid=sid, namespace=handshake.namespace,
                                                detail="auth.invalid"))
        raise HostError("auth.invalid", message="No authentication plugin accepted the credentials.")
    if sid is None or not host.settings.host.allow_anonymous:
        raise HostError("auth.required")
    return Principal(id=f"anonymous-{sid[:12]}", kind="user", name="anonymous")


class Dispatcher:
    """Installs a NamespaceSpec's handlers on the host's Socket.IO server."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.inflight = 0

    def install(self, spec: NamespaceSpec) -> None:
        sio = self.host.sio
        sio.on("connect", namespace=spec.path)(self._connect_handler(spec))
        sio.on("disconnect", namespace=spec.path)(self._disconnect_handler(spec))
        sio.on("*", namespace=spec.path)(self._event_handler(spec))

    def refuse_other_namespaces(self) -> None:
        """Refuse ``/`` and unknown namespaces with a real Error.

        python-socketio refuses them with a bare string, which leaves the JS
        client's ``err.message`` empty, so the server serves every namespace
        (``namespaces="*"``) and this catch-all connect handler refuses the rest.
        """

        async def refuse(namespace: str, sid: str, *args: Any) -> None:
            error = HostError("not_found.namespace")  # its default text: the name is the client's, never echoed
            raise socketio.exceptions.ConnectionRefusedError(error.code, error.to_wire())

        self.host.sio.on("connect", namespace="*")(refuse)

    # --- connect ----------------------------------------------------------------

    def _connect_handler(self, spec: NamespaceSpec) -> Callable[..., Awaitable[Any]]:
        host = self.host

        async def on_connect(sid: str, environ: Any, auth: Any = None) -> Any:
            with logs.bound(request_id=make_request_id(), sid=sid, namespace=spec.path, event="connect"):
                return await connect(sid, environ, auth)

        async def connect(sid: str, environ: Any, auth: Any = None) -> Any:
            # A client *event* named "connect" never gets here: TkrServer answers
            # reserved event names itself.
            handshake = build_handshake(spec.path, environ, auth, host.settings.host.trusted_proxies)
            try:
                principal = await self._admit(spec, sid, handshake.peer, handshake)
            except HostError as refusal:
                await host.report_error(refusal, {"namespace": spec.path, "event": "connect", "sid": sid})
                raise socketio.exceptions.ConnectionRefusedError(refusal.code, refusal.to_wire()) from None
            except Exception:
                unexpected = internal_error()
                log.exception("connect to %s failed [request_id=%s]", spec.path, unexpected.request_id)
                raise socketio.exceptions.ConnectionRefusedError(unexpected.code, unexpected.to_wire()) from None
            if host.sio.get_environ(sid, spec.path) is None:
                # The client left while its connect was being handled: python-socketio
                # skipped the disconnect of a socket that was not connected yet, and
                # would now mark it connected for good. Undo, and refuse.
                connection = host.connections.pop((spec.path, sid), None)
                if connection is not None:
                    await self._clean_up(spec, connection, "client left during connect")
                return False
            log.debug("%s connected to %s as %s", sid, spec.path, principal.id)
            return None

        return on_connect

    async def _admit(self, spec: NamespaceSpec, sid: str, peer: str, handshake: Any) -> Principal:
        host = self.host
        if host.draining:
            raise HostError("protocol.shutting_down")
        if host.rate_limiter is not None:
            wait = await host.rate_limiter.hit("connect", peer)
            if wait is not None:
                await host.security_event(SecurityEvent("rate_limited", peer, sid=sid, namespace=spec.path, detail="connect"))
                raise HostError("rate_limit.connect", message="Too many connects from this address.", retry_after=wait,
                                hint=f"Wait {wait:.1f} s before reconnecting.")
        principal = await identify(host, handshake, sid)
        if not spec.admits(principal):
            await host.security_event(SecurityEvent("access_denied", peer, principal.id, sid, spec.path, "namespace"))
            raise HostError(spec.refusal, message=f"A principal of kind {principal.kind!r} may not connect to {spec.path}.")
        connection = Connection(sid=sid, namespace=spec.path, principal=principal, peer=peer)
        host.connections[(spec.path, sid)] = connection
        try:
            await call_all(host.pm.hook.on_connect, host=host, principal=principal, sid=sid, namespace=spec.path, peer=peer)
            if spec.joined is not None:
                await spec.joined(host, connection)
        except BaseException:
            # Observers that saw the connect see it end; presence set so far is undone.
            host.connections.pop((spec.path, sid), None)
            await self._clean_up(spec, connection, "connect refused")
            raise
        return principal

    # --- disconnect -------------------------------------------------------------

    def _disconnect_handler(self, spec: NamespaceSpec) -> Callable[..., Awaitable[Any]]:
        host = self.host

        async def on_disconnect(sid: str, reason: Any = "unknown") -> None:
            connection = host.connections.pop((spec.path, sid), None)
            if connection is not None:
                await self._clean_up(spec, connection, str(reason))

        return on_disconnect

    async def _clean_up(self, spec: NamespaceSpec, connection: Connection, reason: str) -> None:
        """Undo what a connection set up, and tell the observers, whatever failed."""
        if spec.left is not None:
            try:
                await spec.left(self.host, connection)
            except Exception:
                log.exception("cleaning up %s in %s failed", connection.sid, spec.path)
        await notify(self.host.pm.hook.on_disconnect, host=self.host, principal=connection.principal, sid=connection.sid,
                     namespace=spec.path, reason=reason)

    # --- events -----------------------------------------------------------------

    def _event_handler(self, spec: NamespaceSpec) -> Callable[..., Awaitable[Any]]:
        async def on_event(event: str, sid: str, *args: Any) -> dict[str, Any]:
            self.inflight += 1
            connection = self.host.connection(sid, spec.path)
            principal = f"{connection.principal.kind}:{connection.principal.id}" if connection else None
            start = time.perf_counter()
            try:
                # Each event runs in its own task: what it logs, and the errors
                # it answers, carry this one request id.
                with logs.bound(request_id=make_request_id(), sid=sid, principal=principal, namespace=spec.path, event=event[:100]):
                    return await self._answer(spec, event, sid, args)
            finally:
                self.inflight -= 1
                metrics = self.host.metrics
                # A client names events: only known ones get a label of their own.
                label = event if event in spec.events else "(unknown)"
                metrics.child(metrics.event_duration, spec.path, label).observe(time.perf_counter() - start)

        return on_event

    async def _answer(self, spec: NamespaceSpec, event: str, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        host = self.host
        connection = host.connection(sid, spec.path)
        context = {"namespace": spec.path, "event": event, "sid": sid, "principal_id": connection.principal.id if connection else None}
        try:
            if connection is None:
                raise HostError("protocol.not_connected", message="This socket is not connected to the namespace.")
            connection.last_event_at = time.monotonic()
            data = self._check_payload(args)
            handler = spec.events.get(event)
            if handler is None:
                raise HostError("validation.unknown_event", message=f"{spec.path} has no such event.",
                                details={"events": sorted(spec.events)})
            result = await handler(host, connection, data)
            return {"ok": True, **result}
        except HostError as refusal:
            error = refusal
        except ValidationError as exc:
            error = validation_error(exc)
        except Exception:
            error = internal_error()
            log.exception("%s %s failed [request_id=%s]", spec.path, event, error.request_id)
        await host.report_error(error, context)
        return failure(error)

    def _check_payload(self, args: tuple[Any, ...]) -> dict[str, Any]:
        if len(args) != 1 or not isinstance(args[0], dict):
            raise HostError("validation.not_object", message="The event must carry exactly one JSON object.")
        data: dict[str, Any] = args[0]
        try:
            # One walk for the usual payload: json refuses NaN and Infinity
            # (allow_nan=False) and the UTF-8 encoding a lone surrogate, and only
            # then is the payload walked again, to name the field.
            size = payload_size(data)
        except (TypeError, ValueError, RecursionError):
            problem = json_problem(data)
            if problem is not None:
                field_name, what = problem
                raise HostError("validation.payload", message=f"Invalid fields: {field_name or '(payload)'}.",
                                details={"fields": [{"field": field_name, "problem": what}]}) from None
            # Nesting deeper than json can walk is past the documented depth too.
            deep = too_deep(data)
            if deep is not None:
                raise _too_deep_error(deep) from None
            # (binary attachments close the connection before this, in TkrServer)
            raise HostError("validation.not_object", message="The payload must be plain JSON.") from None
        limit = self.host.settings.host.max_payload_bytes
        if size > limit:
            raise HostError("validation.too_large", message=f"The payload is {size} bytes; at most {limit} are allowed.",
                            details={"size": size, "limit": limit})
        deep = too_deep(data)
        if deep is not None:
            raise _too_deep_error(deep)
        return data
