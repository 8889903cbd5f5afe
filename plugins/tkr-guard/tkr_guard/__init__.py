"""tkr-guard: suspicious-activity scoring, bans, and stale connections.

The hook implementations only. The rules live in ``scoring``, where bans and
tallies are kept in ``backends``, the per-host orchestration in ``guard``, the
idle sweep in ``idle``, the admin API in ``routes`` and ``tkr-host bans`` in
``commands``.
"""

from __future__ import annotations

import argparse

from pydantic import BaseModel
from quart import Quart

from tkr_guard import routes
from tkr_guard.commands import add_bans_command
from tkr_guard.guard import Guard
from tkr_guard.scoring import Target
from tkr_guard.settings import PLUGIN_NAME, GuardSettings
from tkr_host import ErrorCode, Handshake, HostAPI, Principal, SecurityEvent, hookimpl

__all__ = ["GuardSettings"]


@hookimpl
def config_model() -> type[BaseModel]:
    return GuardSettings


@hookimpl
def error_codes() -> dict[str, ErrorCode]:
    return {
        "auth.banned": ErrorCode("This source is temporarily banned.", "Wait until the ban ends, then reconnect.",
                                 when="the address or principal is banned; a banned socket that is already connected gets it "
                                      "as an `error` event and is disconnected"),
        "protocol.idle_timeout": ErrorCode("The connection was idle too long.", "Reconnect when you need the connection again.", "info",
                                           when="the socket sent no event for `idle_timeout_s`"),
        "permission.admin": ErrorCode("Only principals with the admin role may manage bans.", "Use a token whose roles include admin.",
                                      when="`/api/v1/bans` by a principal without the admin role"),
        "validation.target": ErrorCode("A ban target is ip:ADDRESS, principal:ID, or a bare address or id.",
                                       when="`DELETE /api/v1/bans/<target>` with a target that cannot be read"),
        "not_found.ban": ErrorCode("There is no such ban.", "List the bans with GET /api/v1/bans; a ban may have ended by itself.",
                                   when="`DELETE /api/v1/bans/<target>` of a target that is not banned"),
        "internal.not_started": ErrorCode("The guard has not started.", when="`/api/v1/bans` before the guard started"),
    }


@hookimpl
async def host_startup(host: HostAPI) -> None:
    guard = Guard(host, host.config(PLUGIN_NAME, GuardSettings))
    await guard.start()
    host.extensions[PLUGIN_NAME] = guard


@hookimpl
async def host_shutdown(host: HostAPI) -> None:
    guard = host.extensions.pop(PLUGIN_NAME, None)
    if isinstance(guard, Guard):
        await guard.stop()


@hookimpl(tryfirst=True)
async def authenticate(host: HostAPI, handshake: Handshake) -> Principal | None:
    # First of all authenticators: a banned address is refused before any
    # credential is looked at. Never accepts anyone itself.
    guard = Guard.of(host)
    if guard is not None:
        try:
            target = Target.parse(f"ip:{handshake.peer}")
        except ValueError:
            return None  # no address to check ("unknown")
        await guard.check(target)
    return None


@hookimpl(tryfirst=True)
async def on_connect(host: HostAPI, principal: Principal, sid: str, namespace: str, peer: str) -> None:
    # First of the observers, so that none of them sees a connect refused here.
    guard = Guard.of(host)
    if guard is not None:
        await guard.check(Target("principal", principal.id))


@hookimpl(tryfirst=True)
async def on_http_request(host: HostAPI, principal: Principal, peer: str, path: str) -> None:
    # The address was checked in `authenticate`; a banned principal is refused
    # here, on every authenticated route, wherever it comes from.
    guard = Guard.of(host)
    if guard is not None:
        await guard.check(Target("principal", principal.id))


@hookimpl
def on_disconnect(host: HostAPI, principal: Principal, sid: str, namespace: str, reason: str) -> None:
    guard = Guard.of(host)
    if guard is not None:
        guard.forget(sid, namespace)


@hookimpl
async def on_security_event(host: HostAPI, event: SecurityEvent) -> None:
    guard = Guard.of(host)
    if guard is not None:
        await guard.observe(event)


@hookimpl
def register_blueprints(host: HostAPI, app: Quart) -> None:
    app.register_blueprint(routes.blueprint(host))


@hookimpl
def register_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_bans_command(subcommands)
