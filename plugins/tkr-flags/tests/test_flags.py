"""Flags through a real host: the public host API and ``GET /api/v1/flags``."""

from __future__ import annotations

import aiohttp
import pytest

FLAGS = {"plugins": {"flags": {"flags": {"task_panel": True, "beta": {"principals": ["alice"], "roles": ["beta"]}, "dark": False}}}}


async def get_flags(url: str, bearer: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/v1/flags", headers=headers) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.tkr_settings(FLAGS)
async def test_the_route_gives_each_principal_only_its_own_flags(tkr_host, tkr_token):
    status, body = await get_flags(tkr_host.url, tkr_token("alice"))
    assert (status, body) == (200, {"flags": {"beta": True, "dark": False, "task_panel": True}})
    status, body = await get_flags(tkr_host.url, tkr_token("bob"))
    assert (status, body) == (200, {"flags": {"beta": False, "dark": False, "task_panel": True}})
    # The same id as another kind is another principal.
    status, body = await get_flags(tkr_host.url, tkr_token("alice", kind="agent"))
    assert body["flags"]["beta"] is False
    status, body = await get_flags(tkr_host.url, tkr_token("carol", roles=["beta"]))
    assert body["flags"]["beta"] is True


@pytest.mark.tkr_settings(FLAGS)
@pytest.mark.parametrize("bearer", [None, "not-a-token"])
async def test_the_route_needs_valid_credentials(tkr_host, bearer):
    status, body = await get_flags(tkr_host.url, bearer)
    assert status == 401
    assert body["error"]["code"].startswith("auth.") and body["error"]["hint"]


@pytest.mark.tkr_settings(FLAGS)
async def test_plugins_read_flags_through_the_host(tkr_host):
    from tkr_host import Principal

    host = tkr_host.host
    assert host.feature_enabled("task_panel", Principal(id="bob")) is True
    assert host.feature_enabled("beta", Principal(id="alice")) is True
    assert host.feature_enabled("beta", Principal(id="bob")) is False
    # A flag nobody configured is off.
    assert host.feature_enabled("never_configured", Principal(id="alice")) is False


async def test_with_no_table_every_flag_is_off(tkr_host, tkr_token):
    status, body = await get_flags(tkr_host.url, tkr_token("alice"))
    assert (status, body) == (200, {"flags": {}})
