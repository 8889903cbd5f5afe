"""The plugin manager: load order, blocking, check_pending and async calls.

Each test builds its own manager; there is no global one.
"""

from __future__ import annotations

import asyncio

import pluggy
import pytest

from tkr_host import hookimpl
from tkr_host.config import load_settings
from tkr_host.plugins import DEFAULT_PLUGINS, call_all, call_first, list_plugins, make_plugin_manager, notify


def manager(*plugins, disable=(), entry_points=False) -> pluggy.PluginManager:
    settings = load_settings(None, host={"disable_plugins": list(disable)})
    return make_plugin_manager(settings, plugins, entry_points=entry_points)


class Named:
    def __init__(self, name: str) -> None:
        self.__name__ = name


class Declines(Named):
    @hookimpl
    async def authenticate(self, host, handshake):
        await asyncio.sleep(0)
        return None


class Accepts(Named):
    @hookimpl
    async def authenticate(self, host, handshake):
        return f"principal from {self.__name__}"


class SyncAccepts(Named):
    @hookimpl
    def authenticate(self, host, handshake):
        return "sync principal"


def test_the_hosts_own_modules_are_registered_first():
    pm = manager()
    assert [name for name, _ in pm.list_name_plugin()] == list(DEFAULT_PLUGINS)


def test_installed_plugins_are_loaded_from_entry_points():
    pm = manager(entry_points=True)
    assert "messages_core" in {name for name, _ in pm.list_name_plugin()}


def test_disable_plugins_blocks_an_entry_point_by_name():
    pm = manager(disable=["messages_core"], entry_points=True)
    assert pm.is_blocked("messages_core")
    assert pm.get_plugin("messages_core") is None


def test_a_misspelled_hook_is_an_error():
    class Typo(Named):
        @hookimpl
        def authentcate(self, host, handshake):
            return None

    with pytest.raises(pluggy.PluginValidationError, match="authentcate"):
        manager(Typo("typo"))


async def test_call_first_awaits_in_order_and_skips_a_declining_coroutine():
    # A declining async plugin returns a coroutine object, which is not None:
    # pluggy's firstresult would stop there. call_first awaits it and goes on.
    pm = manager(Accepts("early"), Declines("late"))
    assert await call_first(pm.hook.authenticate, host=None, handshake=None) == "principal from early"


async def test_call_first_stops_at_the_first_result():
    calls = []

    class Recorder(Named):
        @hookimpl
        async def authenticate(self, host, handshake):
            calls.append(self.__name__)
            return self.__name__

    pm = manager(Recorder("first-registered"), Recorder("last-registered"))
    assert await call_first(pm.hook.authenticate, host=None, handshake=None) == "last-registered"
    assert calls == ["last-registered"]


async def test_call_first_mixes_sync_and_async_and_returns_none_when_all_decline():
    assert await call_first(manager(SyncAccepts("s"), Declines("d")).hook.authenticate, host=None, handshake=None) == "sync principal"
    assert await call_first(manager(Declines("d")).hook.authenticate, host=None, handshake=None) is None


async def test_call_all_collects_and_notify_survives_a_failing_observer(caplog):
    seen = []

    class Broken(Named):
        @hookimpl
        async def on_security_event(self, host, event):
            raise RuntimeError("observer bug")

    class Watching(Named):
        @hookimpl
        def on_security_event(self, host, event):
            seen.append(event)

    pm = manager(Watching("w"), Broken("b"))
    await notify(pm.hook.on_security_event, host=None, event="e")
    assert seen == ["e"]
    assert "observer bug" in caplog.text
    with pytest.raises(RuntimeError):
        await call_all(pm.hook.on_security_event, host=None, event="e")


def test_list_plugins_names_distribution_version_and_hooks():
    infos = {info.name: info for info in list_plugins(manager(entry_points=True))}
    core = infos["messages_core"]
    assert core.distribution == "tkr-messages-core"
    assert core.version == "0.1.0"
    assert core.hooks == ["error_codes", "register_message_types"]
    assert infos["tkr_host.defaults.manager"].distribution == "tkr-host"


# --- pluggy, used honestly -----------------------------------------------------------


class WrapsAnAsyncHook(Named):
    @hookimpl(wrapper=True)
    def on_error(self, host, error, context):
        return (yield)


class OldStyleWrapperOfAnAsyncHook(Named):
    @hookimpl(hookwrapper=True)
    def after_store(self, host, message):
        yield


@pytest.mark.parametrize(("plugin", "hook", "kind"), [(WrapsAnAsyncHook("wraps"), "on_error", "wrapper=True"),
                                                      (OldStyleWrapperOfAnAsyncHook("old_style"), "after_store", "hookwrapper=True")])
def test_a_wrapper_of_a_hook_that_may_be_async_stops_start_up_with_a_clear_error(plugin, hook, kind):
    from tkr_host.config import ConfigError

    with pytest.raises(ConfigError) as refused:
        manager(plugin)
    message = str(refused.value)
    assert plugin.__name__ in message and hook in message and kind in message and "tryfirst" in message


class WrapsASyncHook(Named):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.seen: list[object] = []

    @hookimpl(wrapper=True)
    def register_message_types(self, host):
        result = yield
        self.seen.append(result)
        return result


def test_a_wrapper_of_a_sync_hook_is_left_to_pluggy_and_runs():
    wrapper = WrapsASyncHook("wraps_sync")
    pm = manager(wrapper)
    pm.hook.register_message_types(host=None)
    assert wrapper.seen == [[]]


def test_the_async_hooks_are_those_documented_as_may_be_async():
    import inspect

    from tkr_host import hookspecs

    documented = {name for name, function in vars(hookspecs).items()
                  if inspect.isfunction(function) and hasattr(function, "tkr_host_spec")
                  and "Calling convention: may be async" in " ".join((inspect.getdoc(function) or "").split())}
    assert documented == hookspecs.ASYNC_HOOKS


async def test_trace_hooks_logs_each_call_with_its_plugin_and_duration(monkeypatch, caplog):
    import logging

    monkeypatch.setenv("TKR_TRACE_HOOKS", "1")
    pm = manager(Declines("first"), Accepts("second"))
    with caplog.at_level(logging.INFO, logger="tkr_host.hooks"):
        assert await call_first(pm.hook.authenticate, host=None, handshake=None) == "principal from second"
        pm.hook.register_message_types(host=None)
    lines = [r.getMessage() for r in caplog.records if r.name == "tkr_host.hooks"]
    assert any(line.startswith("hook authenticate [async] plugin second returned: ") and line.endswith(" ms") for line in lines), lines
    # The first result wins: the plugin registered first is never called, nor traced.
    assert not any("plugin first" in line for line in lines), lines
    assert any(line.startswith("hook register_message_types [sync] plugins ") for line in lines), lines


async def test_trace_hooks_says_when_a_plugin_raised(monkeypatch, caplog):
    import logging

    class Raises(Named):
        @hookimpl
        async def on_error(self, host, error, context):
            raise RuntimeError("observer failed")

    monkeypatch.setenv("TKR_TRACE_HOOKS", "1")
    pm = manager(Raises("raises"))
    with caplog.at_level(logging.INFO, logger="tkr_host.hooks"):
        await notify(pm.hook.on_error, host=None, error=None, context={})
    assert any("hook on_error [async] plugin raises raised RuntimeError" in r.getMessage() for r in caplog.records)


async def test_without_the_switch_nothing_is_traced(monkeypatch, caplog):
    import logging

    monkeypatch.delenv("TKR_TRACE_HOOKS", raising=False)
    pm = manager(Accepts("quiet"))
    with caplog.at_level(logging.INFO, logger="tkr_host.hooks"):
        await call_first(pm.hook.authenticate, host=None, handshake=None)
        pm.hook.register_message_types(host=None)
    assert not [r for r in caplog.records if r.name == "tkr_host.hooks"]
