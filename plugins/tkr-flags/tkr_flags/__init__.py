"""tkr-flags: feature flags for a gradual roll-out.

Entry point ``flags`` in the ``tkr_host`` group; config table ``[plugins.flags]``
(see :mod:`tkr_flags.settings`). Plugins ask ``host.feature_enabled(name,
principal)``; the web page asks ``GET /api/v1/flags``, which answers only the
calling principal's own flags. ``kill -HUP`` reads the table again without a
restart; a bad table is logged and the flags in force stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from pydantic import BaseModel
from quart import Blueprint, Quart

from tkr_flags.rules import FlagBook, bucket, is_on
from tkr_flags.settings import FlagRule, FlagsSettings
from tkr_host import ConfigError, HostAPI, HostError, Principal, error_response, hookimpl, http_principal

__all__ = ["FlagBook", "FlagRule", "FlagsSettings", "bucket", "config_model", "is_on", "reload_flags"]

PLUGIN_NAME = "flags"
log = logging.getLogger("tkr_flags")


def book(host: HostAPI) -> FlagBook:
    found: FlagBook | None = host.extensions.get(PLUGIN_NAME)
    if found is None:
        found = host.extensions[PLUGIN_NAME] = FlagBook(host.config(PLUGIN_NAME, FlagsSettings))
    return found


def reload_flags(host: HostAPI) -> bool:
    """Read ``[plugins.flags]`` again; True when the new flags are in force."""
    try:
        host.reload_config(PLUGIN_NAME)
    except ConfigError as exc:
        log.error("flags not reloaded, the old ones stay in force: %s", str(exc).replace("\n", "; "))
        return False
    settings = book(host).settings = host.config(PLUGIN_NAME, FlagsSettings)
    log.info("flags reloaded: %s", ", ".join(sorted(settings.flags)) or "(none)")
    return True


@hookimpl
def config_model() -> type[BaseModel]:
    return FlagsSettings


@hookimpl
def host_startup(host: HostAPI) -> None:
    book(host)
    # SIGHUP reaches the main thread's loop only; an embedded host in another
    # thread keeps its flags until restarted.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_flags, host)
        host.extensions[f"{PLUGIN_NAME}.sighup"] = True


@hookimpl
def host_shutdown(host: HostAPI) -> None:
    if host.extensions.pop(f"{PLUGIN_NAME}.sighup", False):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)


@hookimpl
def feature_flag(host: HostAPI, name: str, principal: Principal) -> bool | None:
    return book(host).enabled(name, principal)


@hookimpl
def register_blueprints(host: HostAPI, app: Quart) -> None:
    routes = Blueprint("tkr_flags", __name__)

    @routes.get("/api/v1/flags")
    async def flags() -> Any:
        try:
            principal = await http_principal(host)
        except HostError as error:
            await host.report_error(error, {"namespace": "http", "event": "/api/v1/flags"})
            return error_response(error)
        # Only the caller's own flags: the rules (who else is in which cohort)
        # stay on the server.
        return {"flags": book(host).for_principal(principal)}

    app.register_blueprint(routes)
