"""HTTP routes of PROTOCOL.md: health, readiness, the plugin list, history and the agent directory."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any, cast

from pydantic import ValidationError
from quart import Blueprint, Quart, request

from tkr_host._host import Host
from tkr_host.api import HostAPI
from tkr_host.dispatch import identify, validation_error
from tkr_host.errors import HostError
from tkr_host.handshake import bearer_token, peer_address
from tkr_host.hookspecs import hookimpl
from tkr_host.namespaces.chat import History, read_history
from tkr_host.plugins import call_all, list_plugins
from tkr_host.types import Handshake, Principal

log = logging.getLogger(__name__)

#: How long ``/readyz`` waits for one plugin check before calling it failed.
READINESS_TIMEOUT_S = 2.0

STATUS = {"auth": 401, "permission": 403, "not_found": 404, "validation": 400, "rate_limit": 429, "store": 503, "conflict": 409}


def error_response(error: HostError) -> tuple[dict[str, Any], int, dict[str, str]]:
    # Whole seconds, rounded up: a client that waits what the header says is never early.
    headers = {"Retry-After": str(max(1, math.ceil(error.retry_after)))} if error.retry_after else {}
    return {"error": error.to_wire()}, STATUS.get(error.category, 500), headers


async def http_principal(host: HostAPI) -> Principal:
    """Authenticate an HTTP request by its Bearer header, as a connect would be,
    and let ``on_http_request`` refuse it (a banned principal), as ``on_connect``
    refuses a socket."""
    # Every HostAPI a hook is handed is the concrete Host; identify() is the core's.
    host = cast(Host, host)
    headers = {key.lower(): value for key, value in request.headers.items()}
    peer = peer_address(request.scope, headers, host.settings.host.trusted_proxies)
    principal = await identify(host, Handshake(namespace="http", token=bearer_token(headers), headers=headers, peer=peer))
    await call_all(host.pm.hook.on_http_request, host=host, principal=principal, peer=peer, path=request.path)
    return principal


#: A query parameter that is a whole number: ASCII digits only (``int()`` would
#: also take `` 5``, ``5_0`` and other scripts' digits).
WHOLE_NUMBER = re.compile(r"-?[0-9]+")
#: Digits past any bound of a route's parameters: refused before conversion.
MAX_DIGITS = 20


def whole_number(name: str, text: str) -> int:
    """The query parameter ``name`` as an int; the route's model then checks its bounds."""
    problem = None
    if WHOLE_NUMBER.fullmatch(text) is None:
        problem = "must be a whole number"
    elif len(text.lstrip("-")) > MAX_DIGITS:
        problem = "is out of range"
    if problem is not None:
        raise HostError("validation.payload", message=f"`{name}` {problem}.", details={"fields": [{"field": name, "problem": problem}]})
    return int(text)


async def plugin_checks(host: Host) -> dict[str, str]:
    """Run every plugin's ``readiness_checks``, at once, each within ``READINESS_TIMEOUT_S``."""
    named: dict[str, Callable[[], Awaitable[bool]]] = {}
    for checks in host.pm.hook.readiness_checks(host=host):
        named.update(checks or {})

    async def run(name: str, check: Callable[[], Awaitable[bool]]) -> str:
        try:
            return "ok" if await asyncio.wait_for(check(), READINESS_TIMEOUT_S) else "failing"
        except TimeoutError:
            log.warning("readiness: %s did not answer within %.0f s", name, READINESS_TIMEOUT_S)
            return "timeout"
        except Exception as exc:  # the reason stays in the log
            log.warning("readiness: %s failed: %s", name, exc)
            return "failing"

    results = await asyncio.gather(*(run(name, check) for name, check in named.items()))
    return dict(zip(named, results, strict=True))


def blueprint(host: Host) -> Blueprint:
    routes = Blueprint("tkr_host_core", __name__)

    @routes.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @routes.get("/readyz")
    async def readyz() -> tuple[dict[str, Any], int]:
        checks: dict[str, str] = {"plugins": "ok" if host.started else "starting", "store": "ok"}
        try:
            await host.store.ping()
        except Exception as exc:  # the reason stays in the log
            log.warning("readiness: store ping failed: %s", exc)
            checks["store"] = "unavailable"
        if host.draining:
            checks["host"] = "draining"
        checks.update(await plugin_checks(host))
        ready = all(value == "ok" for value in checks.values())
        return {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503

    @routes.get("/api/v1/plugins")
    async def plugins() -> Any:
        return [info.to_wire() for info in list_plugins(host.pm)]

    @routes.get("/api/v1/sessions/<session_id>/messages")
    async def session_messages(session_id: str) -> Any:
        try:
            principal = await http_principal(host)
            query = {key: whole_number(key, request.args[key]) for key in ("before_seq", "limit") if key in request.args}
            try:
                params = History.model_validate({"session_id": session_id, **query})
            except ValidationError as exc:
                raise validation_error(exc) from None
            session = await host.store.get_session(params.session_id)
            if session is None:
                raise HostError("not_found.session")
            if not session.has_member(principal.member()):
                raise HostError("permission.not_member")
            return await read_history(host, session, params.before_seq, params.limit)
        except HostError as error:
            await host.report_error(error, {"namespace": "http", "event": request.path})
            return error_response(error)

    @routes.get("/api/v1/agents")
    async def agents() -> Any:
        try:
            await http_principal(host)
        except HostError as error:
            await host.report_error(error, {"namespace": "http", "event": request.path})
            return error_response(error)
        return {"agents": await host.cluster.agents()}

    return routes


@hookimpl(trylast=True)
def register_blueprints(host: Host, app: Quart) -> None:
    app.register_blueprint(blueprint(host))

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Any:
        # Quart's own HTTP errors (404, 405) pass through; anything else is
        # logged with a request id and answered without internal detail.
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return exc
        error = HostError("internal.error")
        log.exception("HTTP %s failed [request_id=%s]", request.path, error.request_id)
        return error_response(error)
