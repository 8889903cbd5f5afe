"""``/metrics`` through a real host: the metrics of docs/operations.md, who may read
them (PROTOCOL.md 1.1), and the Grafana dashboard that graphs them."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import aiohttp
import pytest

from tkr_host.testing import deep_merge, start_host

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "ops" / "grafana" / "tkr-host.json"
TOKEN = "metrics-token-for-tests-only"

#: The metrics docs/operations.md promises, as the exposition format names them.
DOCUMENTED = [
    "tkr_event_duration_seconds", "tkr_store_duration_seconds", "tkr_deliveries_total", "tkr_connections",
    "tkr_pending_agent_deliveries", "tkr_breaker_state", "tkr_rate_limit_refusals_total", "tkr_bans_total",
    "tkr_stream_chunks_total", "tkr_redis_failures_total", "tkr_errors_total", "tkr_messages_stored_total",
    "tkr_connects_total", "tkr_security_events_total",
]


async def scrape(url: str, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics", headers=headers) as response:
        return response.status, await response.text()


def families(text: str) -> set[str]:
    """Every metric family the exposition declares (a ``# TYPE`` line), and its sample names."""
    names = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    names |= set(re.findall(r"^([a-z_]+)(?:\{|\s)", text, re.M))
    return names


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if all(found.get(key) == wanted for key, wanted in labels.items()):
            return float(value)
    return None


@pytest.fixture
def redis_settings(tkr_settings):
    url = os.environ.get("TKR_TEST_REDIS_URL")
    if not url:
        pytest.skip("TKR_TEST_REDIS_URL is not set: tkr_redis_failures_total exists only with Redis configured")
    return deep_merge(tkr_settings, {"plugins": {"redis": {"url": url, "channel": f"tkr-metrics-{os.getpid()}-{id(tkr_settings)}"}}})


async def test_every_documented_metric_is_there_and_moves(redis_settings, tkr_plugins):
    from tkr_host.testing import TkrClient, connect_client, make_token

    running, stop = await start_host(redis_settings, tkr_plugins)
    clients = []
    try:
        alice = TkrClient(await connect_client(running.url, make_token("alice")), "alice", "/chat")
        clients.append(alice)
        session_id = await alice.create_session(agents=["echo"])
        await alice.send_text(session_id, "to an offline agent", to="echo")
        await alice.call("no:such-event", {})
        status, text = await scrape(running.url)
        assert status == 200
        missing = [name for name in DOCUMENTED if name not in families(text)]
        assert not missing, missing
        assert sample(text, "tkr_event_duration_seconds_count", namespace="/chat", event="message:send") == 1
        assert sample(text, "tkr_event_duration_seconds_count", namespace="/chat", event="(unknown)") == 1
        assert not any("no:such-event" in line for line in text.splitlines()), "a client-chosen name became a label"
        assert sample(text, "tkr_store_duration_seconds_count", operation="append_message") >= 1
        assert sample(text, "tkr_deliveries_total", namespace="/chat") >= 1
        assert sample(text, "tkr_deliveries_total", namespace="/agents") >= 1
        assert sample(text, "tkr_pending_agent_deliveries") == 1  # echo is offline and has not acked
        assert sample(text, "tkr_breaker_state", strategy="circuit_breaker") == 0
        assert sample(text, "tkr_connections", namespace="/chat") == 1
    finally:
        for client in clients:
            await client.close()
        await stop()


async def test_stream_chunks_are_counted(tkr_client, tkr_host):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    for delta in ("a", "b", "c"):
        await echo.ok("stream:chunk", {"message_id": message_id, "delta": delta})
    _, text = await scrape(tkr_host.url)
    assert sample(text, "tkr_stream_chunks_total") == 3


@pytest.mark.tkr_settings({"plugins": {"ratelimit": {"messages_per_second": 1, "message_burst": 1}}})
async def test_rate_limit_refusals_are_counted_by_action(tkr_client, tkr_host):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    acks = [await alice.send_text(session_id, f"m{i}") for i in range(3)]
    refused = sum(1 for ack in acks if not ack["ok"])
    assert refused >= 1
    _, text = await scrape(tkr_host.url)
    assert sample(text, "tkr_rate_limit_refusals_total", action="message") == refused


@pytest.mark.tkr_settings({"host": {"trusted_proxies": ["127.0.0.1/32"]}})
async def test_metrics_are_404_for_a_client_a_trusted_proxy_forwards(tkr_host):
    # The proxy itself (no X-Forwarded-For) may read them; the world behind it may not.
    assert (await scrape(tkr_host.url))[0] == 200
    status, text = await scrape(tkr_host.url, **{"X-Forwarded-For": "203.0.113.9"})
    assert status == 404 and "tkr_" not in text


@pytest.mark.tkr_settings({"host": {"trusted_proxies": ["127.0.0.1/32"], "metrics_token": TOKEN}})
async def test_a_metrics_token_opens_them_from_anywhere_and_a_wrong_one_does_not(tkr_host):
    outside = {"X-Forwarded-For": "203.0.113.9"}
    assert (await scrape(tkr_host.url, Authorization=f"Bearer {TOKEN}", **outside))[0] == 200
    assert (await scrape(tkr_host.url, Authorization="Bearer wrong-token-wrong-token", **outside))[0] == 404
    assert (await scrape(tkr_host.url, **outside))[0] == 404


def test_a_short_metrics_token_is_refused():
    from tkr_host.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="metrics_token"):
        load_settings(None, host={"metrics_token": "short"})


async def test_the_grafana_dashboard_graphs_only_metrics_that_exist(redis_settings, tkr_plugins):
    dashboard = json.loads(DASHBOARD.read_text())
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"\btkr_[a-z_]+", target["expr"])}
    assert used, "the dashboard graphs nothing"
    running, stop = await start_host(redis_settings, tkr_plugins)
    try:
        _, text = await scrape(running.url)
    finally:
        await stop()
    declared = families(text)
    # A histogram's _bucket/_count/_sum, a counter's _total, as Prometheus names them.
    exposed = declared | {f"{name}{suffix}" for name in declared for suffix in ("_bucket", "_count", "_sum", "_total")}
    assert not (used - exposed), sorted(used - exposed)
    graphed = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert set(DOCUMENTED) <= graphed, sorted(set(DOCUMENTED) - graphed)


async def test_an_event_is_timed_within_the_time_its_caller_waited(tkr_client, tkr_host):
    # docs/operations.md: tkr_event_duration_seconds is the time to answer each client
    # event, ack included. The host's clock and the test's are the same monotonic clock, so
    # the observed time lies within the caller's own wait for the ack. This bounds the value
    # by a measured interval, not by a number: it cannot fail because the machine is slow.
    alice = await tkr_client("alice")
    started = time.perf_counter()
    await alice.ok("session:list", {})
    waited = time.perf_counter() - started
    _, text = await scrape(tkr_host.url)
    assert sample(text, "tkr_event_duration_seconds_count", namespace="/chat", event="session:list") == 1
    observed = sample(text, "tkr_event_duration_seconds_sum", namespace="/chat", event="session:list")
    assert observed is not None and 0 <= observed <= waited
