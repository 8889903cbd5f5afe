"""The HTTP routes of PROTOCOL.md through a real host."""

from __future__ import annotations

import aiohttp
import pytest

from tkr_host import HostError, hookimpl
from tkr_host.testing import start_host


async def get(url: str, bearer: str | None = None, **params):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers, params=params) as response:
        body = await response.json(content_type=None) if "json" in response.content_type else await response.text()
        return response.status, body, response.headers


async def test_healthz_and_readyz(tkr_host):
    assert (await get(f"{tkr_host.url}/healthz"))[:2] == (200, {"status": "ok"})
    status, body, _ = await get(f"{tkr_host.url}/readyz")
    assert status == 200
    assert body["checks"]["store"] == "ok" and body["checks"]["plugins"] == "ok"


async def test_readyz_fails_while_draining(tkr_host):
    tkr_host.host.draining = True
    status, body, _ = await get(f"{tkr_host.url}/readyz")
    assert status == 503
    assert body["checks"]["host"] == "draining"
    assert (await get(f"{tkr_host.url}/healthz"))[0] == 200


async def test_plugins_lists_every_loaded_plugin(tkr_host):
    status, body, _ = await get(f"{tkr_host.url}/api/v1/plugins")
    assert status == 200
    by_name = {plugin["name"]: plugin for plugin in body}
    assert by_name["messages_core"]["distribution"] == "tkr-messages-core"
    assert by_name["messages_core"]["version"] == "0.1.0"
    assert "register_message_types" in by_name["messages_core"]["hooks"]
    assert "message_store" in by_name["store_peewee"]["hooks"]
    assert "authenticate" in by_name["auth_jwt"]["hooks"]


async def test_metrics_are_prometheus_text(tkr_host, tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    await alice.send_text(session_id, "counted")
    await alice.call("nope", {})
    status, body, headers = await get(f"{tkr_host.url}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'tkr_messages_stored_total{type="text"} 1.0' in body
    assert 'tkr_errors_total{code="validation.unknown_event"} 1.0' in body
    assert 'tkr_connections{namespace="/chat"} 1.0' in body


async def test_history_route_answers_members(tkr_host, tkr_client, tkr_token):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    for i in range(3):
        await alice.send_text(session_id, f"m{i}")
    url = f"{tkr_host.url}/api/v1/sessions/{session_id}/messages"
    status, body, _ = await get(url, tkr_token("alice"), limit="2")
    assert status == 200
    assert [m["seq"] for m in body["messages"]] == [2, 3] and body["has_more"] is True
    status, body, _ = await get(url, tkr_token("alice"), before_seq="2")
    assert [m["seq"] for m in body["messages"]] == [1] and body["has_more"] is False


async def test_history_route_errors_have_the_error_shape(tkr_host, tkr_client, tkr_token):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    url = f"{tkr_host.url}/api/v1/sessions/{session_id}/messages"
    cases = [
        (url, None, {}, 401, "auth.required"),
        (url, "garbage", {}, 401, "auth.invalid"),
        (url, tkr_token("alice", ttl=-120), {}, 401, "auth.expired"),
        (url, tkr_token("mallory"), {}, 403, "permission.not_member"),
        (f"{tkr_host.url}/api/v1/sessions/nope/messages", tkr_token("alice"), {}, 404, "not_found.session"),
        (url, tkr_token("alice"), {"limit": "500"}, 400, "validation.payload"),
        (url, tkr_token("alice"), {"limit": "ten"}, 400, "validation.payload"),
    ]
    for target, token, params, expected_status, code in cases:
        status, body, _ = await get(target, token, **params)
        assert (status, body["error"]["code"]) == (expected_status, code), (token, params)
        assert body["error"]["hint"] and body["error"]["request_id"]


async def test_a_token_in_the_query_string_is_never_accepted(tkr_host, tkr_client, tkr_token):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    status, body, _ = await get(f"{tkr_host.url}/api/v1/sessions/{session_id}/messages", None, token=tkr_token("alice"))
    assert status == 401 and body["error"]["code"] == "auth.required"


class Throttled:
    """An auth plugin that refuses every HTTP request with a given ``retry_after``."""

    def __init__(self) -> None:
        self.retry_after = 1.0

    @hookimpl
    def authenticate(self, host, handshake):
        raise HostError("rate_limit.connect", retry_after=self.retry_after)


THROTTLED = Throttled()


@pytest.mark.parametrize(("retry_after", "header"), [(0.2, "1"), (1.0, "1"), (2.1, "3"), (29.5, "30")])
async def test_an_error_with_retry_after_sends_a_retry_after_header_rounded_up(tkr_settings, retry_after, header):
    # docs/protocol.md: whole seconds, rounded up, at least 1.
    running, stop = await start_host(tkr_settings, [THROTTLED])
    THROTTLED.retry_after = retry_after
    try:
        status, body, headers = await get(f"{running.url}/api/v1/sessions/s1/messages", "any-token")
        assert status == 429
        assert headers["Retry-After"] == header
        assert body["error"]["code"] == "rate_limit.connect" and body["error"]["retry_after"] == pytest.approx(retry_after)
    finally:
        await stop()


async def test_an_error_without_retry_after_sends_no_retry_after_header(tkr_host):
    status, _, headers = await get(f"{tkr_host.url}/api/v1/sessions/s1/messages")
    assert status == 401 and "Retry-After" not in headers
