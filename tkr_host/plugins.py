"""The plugin manager: loading order, plugin config tables, and async hook calls.

pluggy cannot await, so hooks that may be async (``hookspecs.ASYNC_HOOKS``) are
called here, one implementation at a time in pluggy's order (last registered
first). pluggy's wrappers cannot wrap such calls, so a ``wrapper=True`` or
``hookwrapper=True`` implementation of one of them stops start-up instead of
being called as a plain one.

``TKR_TRACE_HOOKS=1`` logs every hook call on the ``tkr_host.hooks`` logger at
INFO, with the plugin and the time it took, sync hooks (through pluggy's own
call monitoring) and async ones alike, as datasette's ``DATASETTE_TRACE_PLUGINS``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from tkr_host import hookspecs
from tkr_host._version import __version__
from tkr_host.config import ConfigError, Settings, describe_validation_error, resolve_secrets
from tkr_host.errors import CATALOG, PLUGIN_CODES, ErrorCode, code_problem

log = logging.getLogger(__name__)
trace_log = logging.getLogger("tkr_host.hooks")

#: The switch that logs every hook call, its plugin and its duration.
TRACE_ENV = "TKR_TRACE_HOOKS"

ENTRY_POINT_GROUP = "tkr_host"

#: The host's own hook implementations, registered before the entry points so
#: that any installed plugin comes first in pluggy's order.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "tkr_host.defaults.manager",
    "tkr_host.defaults.routes",
    "tkr_host.defaults.metrics",
)


def make_plugin_manager(
    settings: Settings, extra_plugins: Iterable[ModuleType | object] = (), *, entry_points: bool = True
) -> pluggy.PluginManager:
    """Build a fresh plugin manager for one host.

    Order: hookspecs, blocked names from ``host.disable_plugins``, the host's
    own modules, the ``tkr_host`` entry points (unless ``entry_points`` is
    False, for tests of the manager itself), then ``extra_plugins`` (tests and
    embedders), and ``check_pending`` so that a misspelled hook is an error.
    """
    pm = pluggy.PluginManager("tkr_host")
    pm.add_hookspecs(hookspecs)
    for name in settings.host.disable_plugins:
        pm.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        if not pm.is_blocked(module_name):
            pm.register(importlib.import_module(module_name), name=module_name)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra_plugins:
        plugin_name: str | None = getattr(plugin, "__name__", None)
        if (plugin_name is not None and pm.is_blocked(plugin_name)) or pm.is_registered(plugin):
            continue
        pm.register(plugin, name=plugin_name)
    pm.check_pending()
    refuse_wrappers_of_async_hooks(pm)
    register_error_codes(pm)
    if tracing():
        trace_sync_hooks(pm)
    return pm


class PluginError(ConfigError):
    """A plugin that cannot be loaded as written; the message names it and the hook."""


def refuse_wrappers_of_async_hooks(pm: pluggy.PluginManager) -> None:
    """Stop start-up on a pluggy wrapper of a hook the host calls itself."""
    for name in sorted(hookspecs.ASYNC_HOOKS):
        for impl in getattr(pm.hook, name).get_hookimpls():
            if impl.wrapper or impl.hookwrapper:
                kind = "wrapper=True" if impl.wrapper else "hookwrapper=True"
                raise PluginError(
                    f"plugin {impl.plugin_name}: its {name} is a {kind} implementation, but {name} may be async and the host "
                    "calls its implementations one at a time, so no wrapper can run around them. Make it a plain "
                    "implementation (use tryfirst=True or trylast=True to choose its place)."
                )


def plugin_error_codes(pm: pluggy.PluginManager) -> dict[str, tuple[str, ErrorCode]]:
    """Every plugin's ``error_codes``, by code, with the plugin that gave it.

    Each implementation is called on its own, so that a duplicate names both
    plugins. A core code, a duplicate, or a code that is not ``category.reason``
    with a known category is a :class:`PluginError`.
    """
    found: dict[str, tuple[str, ErrorCode]] = {}
    for impl in reversed(pm.hook.error_codes.get_hookimpls()):
        offered: Any = impl.function() or {}
        if not isinstance(offered, Mapping):
            raise PluginError(f"plugin {impl.plugin_name}: error_codes returned a {type(offered).__name__}, not a dict of codes")
        for code, entry in offered.items():
            problem = code_problem(code)
            if problem is None and not isinstance(entry, ErrorCode):
                problem = f"the entry of {code!r} is a {type(entry).__name__}, not a tkr_host.ErrorCode"
            if problem is None and code in CATALOG:
                problem = f"{code!r} is a code of the host itself; pick another reason"
            if problem is None and code in found:
                problem = f"{code!r} is registered by plugin {found[code][0]} already; one code has one owner"
            if problem is not None:
                raise PluginError(f"plugin {impl.plugin_name}: error_codes: {problem}")
            found[code] = (impl.plugin_name, entry)
    return found


def register_error_codes(pm: pluggy.PluginManager) -> None:
    """Check the plugins' error codes, then make HostError find their defaults."""
    PLUGIN_CODES.update(plugin_error_codes(pm))


# --- tracing -----------------------------------------------------------------


def tracing() -> bool:
    return os.environ.get(TRACE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def trace_sync_hooks(pm: pluggy.PluginManager) -> None:
    """Log each call pluggy makes itself, through its call monitoring."""
    started: list[float] = []

    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        started.append(time.perf_counter())

    def after(outcome: Any, hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        elapsed_ms = (time.perf_counter() - started.pop()) * 1000 if started else 0.0
        plugins = ", ".join(impl.plugin_name for impl in reversed(impls)) or "(none)"
        trace_log.info("hook %s [sync] plugins %s: %.3f ms", hook_name, plugins, elapsed_ms)

    pm.add_hookcall_monitoring(before, after)


def validate_plugin_tables(pm: pluggy.PluginManager, settings: Settings) -> dict[str, BaseModel]:
    """Validate each ``[plugins.<name>]`` table with the model its plugin names.

    A table for a plugin that is neither loaded nor disabled, a table given to a
    plugin that takes none, and any error inside a table stop start-up.
    """
    where = settings.where()
    models: dict[str, type[BaseModel]] = {}
    for impl in pm.hook.config_model.get_hookimpls():
        model = impl.function()
        if isinstance(model, type) and issubclass(model, BaseModel):
            models[impl.plugin_name] = model
    loaded = {name for name, _ in pm.list_name_plugin()}
    validated: dict[str, BaseModel] = {}
    for name in settings.plugins:
        if name in settings.host.disable_plugins:
            continue
        if name not in loaded:
            raise ConfigError(f"{where}: [plugins.{name}]: no plugin named {name!r} is installed (installed: {', '.join(sorted(models))})")
        if name not in models:
            raise ConfigError(f"{where}: [plugins.{name}]: plugin {name!r} takes no configuration")
    for name, model in models.items():
        table = decode_env_values(model, resolve_secrets(settings.plugins.get(name, {}), where, f"plugins.{name}"))
        try:
            validated[name] = model.model_validate(table)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(where, exc, table=f"plugins.{name}")) from None
    return validated


def decode_env_values(model: type[BaseModel], table: dict[str, Any]) -> dict[str, Any]:
    """Decode JSON lists and tables given as strings for fields that are not strings.

    ``TKR_PLUGINS__<NAME>__<KEY>`` variables arrive as strings, and plugin
    tables are free-form until their model is known, so a list such as
    ``'["a", "b"]'`` is decoded here, where the field's type is known.
    """
    decoded = dict(table)
    for key, value in table.items():
        field = model.model_fields.get(key)
        if field is None or field.annotation is str or not isinstance(value, str) or value[:1] not in "[{":
            continue
        # Left as it is when it is not JSON: the model then names the key.
        with contextlib.suppress(ValueError):
            decoded[key] = json.loads(value)
    return decoded


# --- calling hooks that may be async ----------------------------------------


async def _call(hook: pluggy.HookCaller, impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
    """Call one implementation, awaiting it if it is async; traced when asked."""
    if not tracing():
        result = impl.function(*[kwargs[name] for name in impl.argnames])
        return await result if inspect.isawaitable(result) else result
    start = time.perf_counter()
    outcome = "returned"
    try:
        result = impl.function(*[kwargs[name] for name in impl.argnames])
        return await result if inspect.isawaitable(result) else result
    except BaseException as exc:
        outcome = f"raised {type(exc).__name__}"
        raise
    finally:
        trace_log.info("hook %s [async] plugin %s %s: %.3f ms", hook.name, impl.plugin_name, outcome, (time.perf_counter() - start) * 1000)


async def call_first(hook: pluggy.HookCaller, **kwargs: Any) -> Any:
    """Await implementations in pluggy's order; return the first non-None result."""
    for impl in reversed(hook.get_hookimpls()):
        result = await _call(hook, impl, kwargs)
        if result is not None:
            return result
    return None


async def call_all(hook: pluggy.HookCaller, **kwargs: Any) -> list[Any]:
    """Await every implementation in pluggy's order; an exception stops the call."""
    results = []
    for impl in reversed(hook.get_hookimpls()):
        result = await _call(hook, impl, kwargs)
        if result is not None:
            results.append(result)
    return results


async def notify(hook: pluggy.HookCaller, **kwargs: Any) -> None:
    """Await every observer; log an exception and go on to the next one."""
    for impl in reversed(hook.get_hookimpls()):
        try:
            await _call(hook, impl, kwargs)
        except Exception:
            log.exception("plugin %s failed in %s", impl.plugin_name, hook.name)


# --- listing -----------------------------------------------------------------


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    hooks: list[str]

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version, "hooks": self.hooks}


def list_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Each loaded plugin with its distribution, version and implemented hooks."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        if dist is not None:
            distribution, version = dist.project_name, dist.version
        elif name.startswith("tkr_host."):
            distribution, version = "tkr-host", __version__
        else:
            distribution, version = None, None
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        infos.append(PluginInfo(name, distribution, version, hooks))
    return sorted(infos, key=lambda info: info.name)
