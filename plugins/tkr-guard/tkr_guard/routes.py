"""The HTTP admin API of bans, for hosts whose bans live in their own memory.

``GET /api/v1/bans`` and ``DELETE /api/v1/bans/<target>``, Bearer-authenticated
through the host's authentication plugins, for principals with the ``admin``
role only. ``tkr-host bans`` talks to them when the backend is ``memory``.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from tkr_guard.guard import Guard
from tkr_guard.scoring import Target
from tkr_host import HostAPI, HostError, Principal, error_response, http_principal

ADMIN_ROLE = "admin"


async def require_admin(host: HostAPI) -> Principal:
    principal = await http_principal(host)
    if ADMIN_ROLE not in principal.roles:
        raise HostError("permission.admin", message="Only principals with the admin role may manage bans.",
                        hint="Use a token whose roles include admin.")
    return principal


def guard_of(host: HostAPI) -> Guard:
    guard = Guard.of(host)
    if guard is None:
        raise HostError("internal.not_started", message="The guard has not started.")
    return guard


def blueprint(host: HostAPI) -> Blueprint:
    routes = Blueprint("tkr_guard", __name__)

    async def answer(operation: Any) -> Any:
        try:
            return await operation()
        except HostError as error:
            await host.report_error(error, {"namespace": "http", "event": f"{request.method} {request.path}"})
            return error_response(error)

    @routes.get("/api/v1/bans")
    async def list_bans() -> Any:
        async def run() -> Any:
            await require_admin(host)
            return {"bans": [ban.to_wire() for ban in await guard_of(host).bans()]}

        return await answer(run)

    @routes.delete("/api/v1/bans/<path:target>")
    async def lift_ban(target: str) -> Any:
        async def run() -> Any:
            await require_admin(host)
            # Neither answer repeats the target: no error echoes what the client sent.
            try:
                parsed = Target.parse(target)
            except ValueError:
                raise HostError("validation.target", message="A ban target is ip:ADDRESS, principal:ID, or a bare address or id.") from None
            ban = await guard_of(host).lift(parsed)
            if ban is None:
                raise HostError("not_found.ban", message="There is no such ban.",
                                hint="List the bans with GET /api/v1/bans; a ban may have ended by itself.")
            return {"lifted": ban.to_wire()}

        return await answer(run)

    return routes
