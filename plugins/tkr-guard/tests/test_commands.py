"""``tkr-host bans`` as an operator runs it: a real process, a real config file.

With Redis the command talks to Redis; with the memory backend it calls the
running host's admin API. The host runs in this test's event loop, so the
command runs as an asyncio subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from tkr_guard.guard import Guard
from tkr_guard.scoring import Target

from tkr_host.testing import make_token

TKR_HOST = Path(sys.executable).with_name("tkr-host")
ATTACKER = "203.0.113.7"
FAST_BAN = {"plugins": {"guard": {"ban_after_auth_failures": 2}}}


def write_config(folder: Path, guard: dict[str, Any], public_url: str | None = None) -> Path:
    """A config with only the guard on: other plugins' tables are not this test's business."""
    others = sorted(ep.name for ep in entry_points(group="tkr_host") if ep.name != "guard")
    lines = ["[host]", f"disable_plugins = {json.dumps(others)}"]
    if public_url:
        lines.append(f'public_url = "{public_url}"')
    lines += ["", "[plugins.guard]", *(f"{key} = {json.dumps(value)}" for key, value in guard.items())]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def bans(*args: str, **env: str) -> tuple[int, str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TKR_")}
    environment.update(env)
    process = await asyncio.create_subprocess_exec(str(TKR_HOST), "bans", *args, env=environment,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("guard_backend", ["redis"], indirect=True)
@pytest.mark.tkr_settings(FAST_BAN)
async def test_with_redis_the_command_lists_and_lifts_bans_in_redis(tkr_host, guard_backend, connect_from, fail_auth, tmp_path):
    config = str(write_config(tmp_path, guard_backend))
    assert (await bans("list", "--config", config))[:2] == (0, "no bans\n")
    await fail_auth(ATTACKER, 2)

    status, out, err = await bans("list", "--config", config)
    assert status == 0, err
    header, row = out.splitlines()
    assert header.split()[:4] == ["KIND", "TARGET", "LEFT", "REASON"]
    assert row.split()[:2] == ["ip", ATTACKER] and "2 failed authentications within 60 s" in row

    status, out, err = await bans("list", "--json", "--config", config)
    [ban] = json.loads(out)
    assert (ban["kind"], ban["target"]) == ("ip", ATTACKER) and 0 < ban["retry_after"] <= 300

    status, out, err = await bans("lift", ATTACKER, "--config", config)
    assert status == 0, err
    assert f"lifted the ban of address {ATTACKER}" in out
    await connect_from(ATTACKER, "carol")  # the running host reads the same Redis

    status, out, err = await bans("lift", ATTACKER, "--config", config)
    assert (status, out) == (1, "")
    assert err.strip() == f"tkr-host bans: there is no ban on address {ATTACKER}"


async def test_an_unreachable_redis_is_one_line_and_status_2(tmp_path):
    config = str(write_config(tmp_path, {"backend": "redis", "redis_url": "redis://127.0.0.1:1/0", "redis_timeout_s": 1}))
    status, out, err = await bans("list", "--config", config)
    assert (status, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and "cannot reach Redis at redis://127.0.0.1:1/0" in err


@pytest.mark.parametrize("guard_backend", ["memory"], indirect=True)
@pytest.mark.tkr_settings(FAST_BAN)
async def test_with_memory_the_command_uses_the_admin_api_of_the_running_host(tkr_host, connect_from, fail_auth, tmp_path):
    config = str(write_config(tmp_path, {"backend": "memory"}, public_url=tkr_host.url))
    admin = make_token("root", roles=["admin"])
    await fail_auth(ATTACKER, 2)

    # The URL comes from [host] public_url, the token from the environment.
    status, out, err = await bans("list", "--config", config, TKR_ADMIN_TOKEN=admin)
    assert status == 0, err
    assert out.splitlines()[1].split()[:2] == ["ip", ATTACKER]

    # A token without the admin role is refused, in one line.
    status, out, err = await bans("list", "--url", tkr_host.url, "--token", make_token("bob"))
    assert (status, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and "permission.admin" in err

    status, out, err = await bans("lift", f"ip:{ATTACKER}", "--url", tkr_host.url, "--token", admin)
    assert status == 0, err
    await connect_from(ATTACKER, "carol")
    assert (await bans("lift", ATTACKER, "--url", tkr_host.url, "--token", admin))[0] == 1
    assert (await bans("list", "--url", tkr_host.url, "--token", admin))[:2] == (0, "no bans\n")


@pytest.mark.parametrize("guard_backend", ["memory"], indirect=True)
async def test_a_principal_with_odd_characters_is_lifted_through_the_api(tkr_host):
    guard = Guard.of(tkr_host.host)
    assert guard is not None
    await guard.backend.ban([Target("principal", "team/alice b")], "by hand", ban_s=60)
    status, out, err = await bans("lift", "principal:team/alice b", "--url", tkr_host.url, "--token", make_token("root", roles=["admin"]))
    assert status == 0, err
    assert "principal 'team/alice b'" in out


async def test_without_a_token_the_memory_backend_says_how_to_give_one(tmp_path):
    config = str(write_config(tmp_path, {"backend": "memory"}))
    status, out, err = await bans("list", "--config", config)
    assert (status, out) == (2, "")
    assert "--token or $TKR_ADMIN_TOKEN" in err


async def test_an_unreachable_host_is_one_line(tmp_path):
    status, out, err = await bans("list", "--url", "http://127.0.0.1:1", "--token", "t")
    assert (status, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and "cannot reach the host at http://127.0.0.1:1" in err


async def test_bans_without_an_action_prints_its_usage():
    status, _, err = await bans()
    assert status == 2 and "list" in err and "lift" in err
