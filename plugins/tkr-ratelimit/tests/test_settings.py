"""The config table: a wrong table stops start-up with a message naming the key."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tkr_ratelimit.buckets import MICROS
from tkr_ratelimit.settings import RateLimitSettings


def problem(table: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        RateLimitSettings.model_validate(table)
    return str(caught.value)


def test_the_defaults_are_the_documented_ones() -> None:
    rates = RateLimitSettings().rates()
    assert (rates["message"].per_second, rates["message"].burst) == (20, 60)
    assert (rates["connect"].interval_us, rates["connect"].burst) == (MICROS // 2, 60)
    assert (rates["session"].interval_us, rates["session"].burst) == (2 * MICROS, 30)


def test_redis_needs_a_url() -> None:
    assert 'backend = "redis" needs redis_url' in problem({"backend": "redis"})


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"backend": "postgres"}, "backend"),
        ({"messages_per_second": 0}, "messages_per_second"),
        ({"message_burst": 0}, "message_burst"),
        ({"connects_per_minute": -1}, "connects_per_minute"),
        ({"session_burst": 1.5}, "session_burst"),
        ({"key_prefix": ""}, "key_prefix"),
        ({"messages_per_minute": 10}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_value_names_its_key(table: dict[str, Any], says: str) -> None:
    assert says in problem(table)


def test_a_trusted_proxy_must_be_an_address_or_a_network() -> None:
    assert "'proxy.local' is not an IP address or network" in problem({"trusted_proxies": ["10.0.0.0/8", "proxy.local"]})
    assert RateLimitSettings(trusted_proxies=["::1", "10.1.2.3", "192.168.0.0/16"]).trusted_proxies == ["::1", "10.1.2.3", "192.168.0.0/16"]
