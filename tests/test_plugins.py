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
    assert core.hooks == ["register_message_types"]
    assert infos["tkr_host.defaults.manager"].distribution == "tkr-host"
