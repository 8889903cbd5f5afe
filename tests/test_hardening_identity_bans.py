"""A banned principal is refused over HTTP too (issue 7, item 10).

plugins/tkr-guard/README.md: a ban on a principal refuses its socket connects and
its authenticated HTTP requests (the history route, the bans API) with
``auth.banned``, whatever address they come from; HTTP answers 401 with the Error.
"""

from __future__ import annotations

import aiohttp
import pytest

from tkr_host.testing import ConnectRefused

#: The test's address is exempt, so only the principal is banned: two refused joins do it.
PRINCIPAL_BANS = pytest.mark.tkr_settings({"plugins": {"guard": {"exempt": ["127.0.0.1"], "access_denied_weight": 50.0,
                                                                 "ban_after_events": 100.0}}})


async def ban_by_misbehaving(tkr_client, principal: str, **claims) -> tuple[str, str]:
    """Ban ``principal`` by two joins of a session it is not in; return its own session and another's."""
    alice = await tkr_client("alice")
    theirs = await alice.create_session()
    culprit = await tkr_client(principal, **claims)
    own = await culprit.create_session()
    for _ in range(2):
        ack = await culprit.call("session:join", {"session_id": theirs})
        assert ack["error"]["code"] == "permission.not_member"
    kicked = await culprit.wait_for("error")
    assert kicked["code"] == "auth.banned" and kicked["details"]["kind"] == "principal"
    return own, theirs


@PRINCIPAL_BANS
async def test_a_banned_principal_cannot_read_history_over_http(tkr_host, tkr_client, tkr_token, tkr_connect):
    own, _ = await ban_by_misbehaving(tkr_client, "mallory")
    with pytest.raises(ConnectRefused) as refused:
        await tkr_connect(tkr_token("mallory"))
    assert refused.value.error["code"] == "auth.banned"
    mallory = {"Authorization": f"Bearer {tkr_token('mallory')}"}
    async with aiohttp.ClientSession(headers=mallory) as http, http.get(f"{tkr_host.url}/api/v1/sessions/{own}/messages") as response:
        body = await response.json(content_type=None)
        assert (response.status, body["error"]["code"]) == (401, "auth.banned"), body
        assert body["error"]["hint"] and "retry_after" in body["error"]
    # Others are not affected.
    alice = {"Authorization": f"Bearer {tkr_token('alice')}"}
    async with aiohttp.ClientSession(headers=alice) as http, http.get(f"{tkr_host.url}/api/v1/bans") as response:
        assert response.status == 403  # alice is no admin, but she is not banned


@PRINCIPAL_BANS
async def test_a_banned_admin_cannot_use_the_bans_api(tkr_host, tkr_client, tkr_token):
    await ban_by_misbehaving(tkr_client, "root", roles=["admin"])
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {tkr_token('root', roles=['admin'])}"}) as http:
        for method, path in (("GET", "/api/v1/bans"), ("DELETE", "/api/v1/bans/principal:root")):
            async with http.request(method, f"{tkr_host.url}{path}") as response:
                body = await response.json(content_type=None)
                assert (response.status, body["error"]["code"]) == (401, "auth.banned"), (method, body)
