"""``tkr-host apikey new`` as a person runs it: a real process, then its line pasted into a real config."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import socketio
from tkr_auth_apikey.keys import digest, well_formed
from tkr_auth_apikey.settings import ApiKeySettings
from tkr_auth_apikey.verify import verify_key

from tkr_host import Principal
from tkr_host.config import load_settings
from tkr_host.testing import RunningHost, deep_merge

TKR_HOST = Path(sys.executable).with_name("tkr-host")


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # No TKR_* variable from the caller: the command must need no config at all.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TKR_")}
    return subprocess.run([str(TKR_HOST), *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=60, check=False)


@dataclass(frozen=True)
class Issued:
    key: str
    line: str
    stderr: str


def issue(folder: Path, *args: str) -> Issued:
    done = run(["apikey", "new", *args], folder)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout  # the key, then the config line: nothing else on stdout
    return Issued(key=lines[0], line=lines[1], stderr=done.stderr)


def write_config(folder: Path, line: str) -> Path:
    """A config whose only plugin table is the pasted line; other installed plugins are off."""
    others = sorted(ep.name for ep in entry_points(group="tkr_host") if ep.name != "auth_apikey")
    path = folder / "config.toml"
    path.write_text(f"[host]\ndisable_plugins = {others!r}\n\n[plugins.auth_apikey]\nkeys = [\n  {line},\n]\n")
    return path


@pytest.fixture
def issued(tmp_path: Path) -> Issued:
    # tmp_path holds no config file, and none is needed.
    return issue(tmp_path, "--sub", "bot", "--kind", "agent")


def test_it_prints_the_key_first_then_the_line_and_warns_on_stderr(issued: Issued) -> None:
    assert well_formed(issued.key)
    entry = tomllib.loads(f"entry = {issued.line}")["entry"]
    assert entry == {"sha256": digest(issued.key), "sub": "bot", "kind": "agent"}
    assert issued.key not in issued.line
    assert "shown once" in issued.stderr
    assert issued.line in issued.stderr and "[plugins.auth_apikey]" in issued.stderr


def test_the_pasted_line_makes_the_key_authenticate(issued: Issued, tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, issued.line))
    keys = ApiKeySettings.model_validate(settings.plugins["auth_apikey"])
    assert verify_key(keys, issued.key) == Principal(id="bot", kind="agent")


def test_check_config_accepts_the_pasted_line(issued: Issued, tmp_path: Path) -> None:
    done = run(["check-config", str(write_config(tmp_path, issued.line))], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "auth_apikey" in done.stdout


def test_check_config_refuses_a_key_pasted_as_its_digest(issued: Issued, tmp_path: Path) -> None:
    config = write_config(tmp_path, f'{{sha256 = "{issued.key}", sub = "bot"}}')
    done = run(["check-config", str(config)], tmp_path)
    assert done.returncode == 2
    assert "[plugins.auth_apikey] keys.0.sha256: this is an API key, not its digest" in done.stderr
    assert issued.key not in done.stderr


def test_name_and_roles_go_into_the_line(tmp_path: Path) -> None:
    issued = issue(tmp_path, "--sub", "ci-bot", "--kind", "service", "--name", 'CI "bot" 🤖', "--role", "ci", "--role", "ops")
    table = tomllib.loads(f"keys = [{issued.line}]")
    assert verify_key(ApiKeySettings.model_validate(table), issued.key) == Principal(id="ci-bot", kind="service", name='CI "bot" 🤖', roles=("ci", "ops"))


def test_kind_defaults_to_agent_and_every_key_is_new(tmp_path: Path) -> None:
    first, second = issue(tmp_path, "--sub", "bot"), issue(tmp_path, "--sub", "bot")
    assert tomllib.loads(f"entry = {first.line}")["entry"]["kind"] == "agent"
    assert first.key != second.key


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--sub", "bot", "--kind", "robot"], "--kind must be user, agent or service, not 'robot'"),
        (["--sub", "   "], "--sub: must not be blank"),
        (["--sub", "x" * 201], "--sub:"),
        (["--sub", "bot", "--role", ""], "--role:"),
    ],
)
def test_bad_input_gets_one_line_and_status_2(args: list[str], says: str, tmp_path: Path) -> None:
    done = run(["apikey", "new", *args], tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""  # no key is shown for a refused request
    assert len(done.stderr.strip().splitlines()) == 1
    assert says in done.stderr


def test_without_an_action_it_shows_usage(tmp_path: Path) -> None:
    done = run(["apikey"], tmp_path)
    assert done.returncode == 2 and "new" in done.stderr


# --- the same, through a real host -------------------------------------------------------


@pytest.fixture
def tkr_settings(tkr_settings: dict[str, Any], issued: Issued, tmp_path: Path) -> dict[str, Any]:
    """The kit's settings with the ``[plugins.auth_apikey]`` table read from the pasted config."""
    pasted = load_settings(write_config(tmp_path, issued.line)).plugins["auth_apikey"]
    merged: dict[str, Any] = deep_merge(tkr_settings, {"plugins": {"auth_apikey": pasted}})
    return merged


async def test_a_host_with_the_pasted_line_admits_the_agent(issued: Issued, tkr_host: RunningHost, tkr_connect: Any) -> None:
    client: socketio.AsyncClient = await tkr_connect(issued.key, namespace="/agents")
    connection = tkr_host.host.connection(client.get_sid("/agents"), "/agents")
    assert connection is not None and connection.principal == Principal(id="bot", kind="agent")
