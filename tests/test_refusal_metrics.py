"""Refusals as docs/operations.md's metrics count them, through a real host.

docs/operations.md, "Metrics": `tkr_rate_limit_refusals_total` counts the requests a
rate limit refused by `action` (`message`, `connect`, `session`), and
`tkr_security_events_total` the security events by `kind` (a refused rate-limited
request is `rate_limited`). `tests/test_metrics.py` covers the `message` action.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from tkr_host.testing import ConnectRefused


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.status == 200
        return await response.text()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample of ``name`` with these labels (the exposition format)."""
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] == name and all(dict(re.findall(r'(\w+)="([^"]*)"', head)).get(k) == v for k, v in labels.items()):
            return float(value)
    return None


def limits(**table: Any) -> pytest.MarkDecorator:
    return pytest.mark.tkr_settings({"plugins": {"ratelimit": table}})


@limits(sessions_per_minute=0.001, session_burst=1)
async def test_a_refused_new_session_is_counted_as_the_session_action(tkr_client: Any, tkr_host: Any) -> None:
    alice = await tkr_client("alice")
    await alice.create_session("the burst")
    ack = await alice.call("session:create", {"title": "one more"})
    assert ack["ok"] is False and ack["error"]["code"] == "rate_limit.sessions"
    text = await scrape(tkr_host.url)
    assert sample(text, "tkr_rate_limit_refusals_total", action="session") == 1
    assert sample(text, "tkr_security_events_total", kind="rate_limited") == 1


@limits(connects_per_minute=0.001, connect_burst=1)
async def test_a_refused_connect_is_counted_as_the_connect_action(tkr_connect: Any, tkr_token: Any, tkr_host: Any) -> None:
    await tkr_connect(tkr_token("alice"))
    with pytest.raises(ConnectRefused) as refused:
        await tkr_connect(tkr_token("bob"))
    assert refused.value.error["code"] == "rate_limit.connect"
    text = await scrape(tkr_host.url)
    assert sample(text, "tkr_rate_limit_refusals_total", action="connect") == 1
    assert sample(text, "tkr_security_events_total", kind="rate_limited") == 1


@pytest.mark.parametrize("credential", ["not-a-token", "eyJhbGciOiJIUzI1NiJ9.e30.bad", "signed-elsewhere"])
async def test_a_refused_credential_is_one_auth_failure(tkr_connect: Any, tkr_token: Any, tkr_host: Any, credential: str) -> None:
    # docs/protocol.md: a credential that no plugin accepts is refused with auth.invalid.
    token = tkr_token("alice", secret="another secret of 32 bytes or more, not the host one") if credential == "signed-elsewhere" else credential
    with pytest.raises(ConnectRefused) as refused:
        await tkr_connect(token)
    assert refused.value.error["code"] == "auth.invalid"
    text = await scrape(tkr_host.url)
    assert sample(text, "tkr_security_events_total", kind="auth_failure") == 1


async def test_a_missing_credential_is_no_security_event(tkr_connect: Any, tkr_client: Any, tkr_host: Any) -> None:
    with pytest.raises(ConnectRefused) as refused:
        await tkr_connect(None)
    assert refused.value.error["code"] == "auth.required"
    # A sentinel security event after it: a user refused on /agents is access_denied (tkr-guard's README).
    with pytest.raises(ConnectRefused) as denied:
        await tkr_client("alice", namespace="/agents")
    assert denied.value.error["code"] == "permission.namespace"
    text = await scrape(tkr_host.url)
    assert sample(text, "tkr_security_events_total", kind="access_denied") == 1
    assert sample(text, "tkr_security_events_total", kind="auth_failure") in (None, 0)
