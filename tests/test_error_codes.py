"""Plugins own their error codes: each registers them through ``error_codes``,
the core's catalogue holds only the core's, a code has one owner, and
docs/protocol.md's table is generated from all of them.

Each test builds its own plugin manager (``entry_points=False`` unless the
installed plugins are the point), as every host does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tkr_host import ErrorCode, HostError, hookimpl
from tkr_host.config import HostSettings, Settings
from tkr_host.errors import CATALOG
from tkr_host.plugins import PluginError, make_plugin_manager

ROOT = Path(__file__).resolve().parents[1]

#: The Error fields outside checks hold for codes that moved from the core's
#: catalogue to their plugins (issue 10): moving them must not change the wire.
MOVED = {
    "auth.banned": ("tkr-guard", "This source is temporarily banned.", "Wait until the ban ends, then reconnect.", "error"),
    "protocol.idle_timeout": ("tkr-guard", "The connection was idle too long.", "Reconnect when you need the connection again.", "info"),
    "permission.task": ("tkr-messages-core", "Only the task's creator, its assignee or the session's creator may change it.",
                        "Ask one of them to make the change.", "error"),
    "conflict.task_state": ("tkr-messages-core", "The task cannot move to that state.",
                            "Reload the task; finished tasks take a new task naming them.", "warning"),
    "conflict.task_exists": ("tkr-messages-core", "A task with that id already exists.", "Use action update, or pick a new task_id.", "warning"),
}


def settings() -> Settings:
    return Settings.model_construct(host=HostSettings(), plugins={})


def plugin(name: str, codes: dict[str, object]) -> object:
    class Plugin:
        __name__ = name

        @hookimpl
        def error_codes(self) -> dict[str, object]:
            return codes

    return Plugin()


@pytest.mark.parametrize("code", sorted(MOVED))
def test_a_moved_code_is_its_plugins_and_reaches_the_wire_unchanged(code: str) -> None:
    assert code not in CATALOG, f"{code} belongs to {MOVED[code][0]}, not to the core's catalogue"
    make_plugin_manager(settings())  # the installed plugins register theirs
    _, message, hint, severity = MOVED[code]
    wire = HostError(code).to_wire()
    assert (wire["message"], wire["hint"], wire["severity"]) == (message, hint, severity)


def test_a_plugins_code_takes_the_defaults_it_registered() -> None:
    make_plugin_manager(settings(), [plugin("widgets", {"not_found.widget": ErrorCode("No such widget.", "Check the widget id.", "info")})],
                        entry_points=False)
    wire = HostError("not_found.widget").to_wire()
    assert (wire["message"], wire["hint"], wire["severity"]) == ("No such widget.", "Check the widget id.", "info")
    # What the raise gives itself still wins.
    assert HostError("not_found.widget", message="Widget 3 is gone.").to_wire()["message"] == "Widget 3 is gone."


def test_two_plugins_registering_one_code_stop_start_up_naming_both() -> None:
    first = plugin("first", {"conflict.same_thing": ErrorCode("One.")})
    second = plugin("second", {"conflict.same_thing": ErrorCode("Two.")})
    with pytest.raises(PluginError, match=r"plugin (first|second).*conflict\.same_thing.*plugin (first|second)"):
        make_plugin_manager(settings(), [first, second], entry_points=False)


def test_a_plugin_cannot_register_a_core_code() -> None:
    with pytest.raises(PluginError, match=r"plugin thief.*auth\.required.*the host itself"):
        make_plugin_manager(settings(), [plugin("thief", {"auth.required": ErrorCode("Mine now.")})], entry_points=False)


@pytest.mark.parametrize("codes", [{"nonsense": ErrorCode("x")}, {"not_found.thing": ("status", "message", "hint")}])
def test_a_malformed_registration_stops_start_up(codes: dict[str, object]) -> None:
    with pytest.raises(PluginError, match="plugin sloppy: error_codes"):
        make_plugin_manager(settings(), [plugin("sloppy", codes)], entry_points=False)


def test_docs_protocol_md_table_of_codes_is_generated_and_up_to_date() -> None:
    script = ROOT / "scripts" / "error_reference.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
