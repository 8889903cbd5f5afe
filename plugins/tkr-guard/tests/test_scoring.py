"""The rules, with no I/O and no waiting: every time is a number passed in."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from tkr_guard.scoring import Charge, Policy, Tally, Target, add_to, matches, sort_bans
from tkr_guard.settings import GuardSettings

from tkr_host.types import SecurityEvent


def policy(**overrides: object) -> Policy:
    return Policy.from_settings(GuardSettings.model_validate(overrides))


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("203.0.113.7", Target("ip", "203.0.113.7")),
        (" 2001:DB8::1 ", Target("ip", "2001:db8::1")),
        ("::ffff:192.0.2.1", Target("ip", "192.0.2.1")),
        ("alice", Target("principal", "alice")),
        ("ip:10.0.0.1", Target("ip", "10.0.0.1")),
        ("principal:10.0.0.1", Target("principal", "10.0.0.1")),
        ("principal:team/alice", Target("principal", "team/alice")),
        ("service:x", Target("principal", "service:x")),
    ],
)
def test_a_target_is_an_address_when_it_parses_as_one(text: str, target: Target) -> None:
    assert Target.parse(text) == target
    assert Target.from_key(target.key) == target


@pytest.mark.parametrize("text", ["", "  ", "ip:not-an-address"])
def test_a_bad_target_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Target.parse(text)


def test_auth_failures_count_but_our_own_refusals_and_expired_tokens_do_not() -> None:
    rules = policy()
    assert rules.charge(SecurityEvent("auth_failure", "203.0.113.7", detail="auth.invalid")) == Charge(1, 0.0)
    assert rules.charge(SecurityEvent("auth_failure", "203.0.113.7", namespace="http", detail="auth.required")) == Charge(1, 0.0)
    assert rules.charge(SecurityEvent("auth_failure", "203.0.113.7", detail="auth.banned")) is None
    assert rules.charge(SecurityEvent("auth_failure", "203.0.113.7", detail="auth.expired")) is None


def test_other_events_score_their_weight_and_a_zero_weight_is_not_counted() -> None:
    rules = policy(access_denied_weight=2.5, rate_limited_weight=0)
    assert rules.charge(SecurityEvent("access_denied", "203.0.113.7", "alice")) == Charge(0, 2.5)
    assert rules.charge(SecurityEvent("malformed_packet", "203.0.113.7")) == Charge(0, 10.0)
    assert rules.charge(SecurityEvent("reserved_event", "203.0.113.7")) == Charge(0, 10.0)
    assert rules.charge(SecurityEvent("rate_limited", "203.0.113.7", "alice")) is None


def test_an_event_counts_against_its_address_and_its_principal() -> None:
    rules = policy(exempt=["10.0.0.0/8", "::1"])
    assert rules.sources(SecurityEvent("access_denied", "203.0.113.7", "alice")) == [Target("ip", "203.0.113.7"), Target("principal", "alice")]
    assert rules.sources(SecurityEvent("auth_failure", "203.0.113.7")) == [Target("ip", "203.0.113.7")]
    assert rules.sources(SecurityEvent("access_denied", "10.1.2.3", "alice")) == [Target("principal", "alice")]
    assert rules.sources(SecurityEvent("auth_failure", "::1")) == []
    assert rules.sources(SecurityEvent("auth_failure", "unknown")) == []
    assert rules.is_exempt("10.9.9.9") and not rules.is_exempt("11.0.0.1") and not rules.is_exempt("unknown")


def test_an_exempt_network_with_host_bits_set_is_taken_as_its_network() -> None:
    # README, `exempt`: "10.1.2.3/8" is taken as 10.0.0.0/8, not refused.
    rules = policy(exempt=["10.1.2.3/8"])
    assert rules.is_exempt("10.0.0.1") and rules.is_exempt("10.255.255.254") and not rules.is_exempt("11.0.0.1")


def test_a_window_opens_with_the_first_event_and_lasts_window_s() -> None:
    tally = add_to(None, Charge(1, 0), now=100.0, window_s=60)
    tally = add_to(tally, Charge(1, 2.0), now=159.9, window_s=60)
    assert (tally.opened_at, tally.auth_failures, tally.score) == (100.0, 2, 2.0)
    fresh = add_to(tally, Charge(1, 0), now=160.0, window_s=60)
    assert (fresh.opened_at, fresh.auth_failures, fresh.score) == (160.0, 1, 0.0)


def test_crossing_either_threshold_gives_the_reason() -> None:
    rules = policy(ban_after_auth_failures=3, ban_after_events=10)
    assert rules.crossed(Tally(0, auth_failures=2, score=9.5)) is None
    assert rules.crossed(Tally(0, auth_failures=3)) == "3 failed authentications within 60 s"
    assert rules.crossed(Tally(0, score=10)) == "a suspicious-activity score of 10 within 60 s"
    assert rules.verdict([Tally(0), Tally(0, auth_failures=5)]) == "5 failed authentications within 60 s"
    assert rules.verdict([Tally(0), Tally(0)]) is None


def test_a_ban_matches_the_connections_of_its_target() -> None:
    assert matches(Target("ip", "192.0.2.1"), "::ffff:192.0.2.1", "alice")
    assert not matches(Target("ip", "192.0.2.1"), "192.0.2.2", "alice")
    assert matches(Target("principal", "alice"), "192.0.2.2", "alice")
    assert not matches(Target("principal", "alice"), "192.0.2.1", "alicea")


def test_the_score_is_the_sum_of_the_weights_within_the_window() -> None:
    # README: `ban_after_events` is the "weighted score of the other security events within
    # `window_s`"; `access_denied_weight` defaults to 5, so twenty refusals make the default 100.
    rules = policy()
    tally: Tally | None = None
    for second in range(20):
        charge = rules.charge(SecurityEvent("access_denied", "203.0.113.7", "mallory"))
        assert charge is not None
        tally = add_to(tally, charge, now=100.0 + second, window_s=rules.window_s)
        assert (tally.score, rules.crossed(tally) is not None) == (5.0 * (second + 1), second == 19)
    assert tally is not None and rules.crossed(tally) == "a suspicious-activity score of 100 within 60 s"


def test_a_ban_names_its_target_as_the_bans_command_prints_it() -> None:
    # README, `tkr-host bans lift 203.0.113.7`: "lifted the ban of address 203.0.113.7".
    assert Target("ip", "203.0.113.7").describe() == "address 203.0.113.7"
    # README, `tkr-host bans lift mallory`: "lifted the ban of principal 'mallory'".
    assert Target("principal", "mallory").describe() == "principal 'mallory'"


@dataclass(frozen=True)
class Listed:
    """Anything with a `target`, as `sort_bans` takes it."""

    target: Target


def test_bans_are_listed_addresses_first_then_principals_each_by_value() -> None:
    # README, Managing bans: addresses first, then principals, each group sorted by its value.
    given = [Target("principal", "mallory"), Target("ip", "203.0.113.9"), Target("principal", "eve"), Target("ip", "198.51.100.1")]
    listed = [ban.target for ban in sort_bans([Listed(target) for target in given])]
    assert listed == [Target("ip", "198.51.100.1"), Target("ip", "203.0.113.9"), Target("principal", "eve"), Target("principal", "mallory")]


@pytest.mark.parametrize("kind", ["ip", "principal"])
def test_a_stored_key_gives_back_its_target(kind: str) -> None:
    # README, Redis: `tally:ip:<address>`, `ban:principal:<id>` — a key's target is `<kind>:<value>`.
    target = Target(kind, "203.0.113.7")  # type: ignore[arg-type]
    assert Target.from_key(target.key) == target


@pytest.mark.parametrize("key", ["session:abc", "ip:", "principal:", "", "abc"])
def test_a_key_of_no_known_kind_is_refused(key: str) -> None:
    # README: the only kinds of key are `ip:` and `principal:`, each with a value.
    with pytest.raises(ValueError):
        Target.from_key(key)


def test_a_rate_limited_action_scores_the_default_weight_of_1() -> None:
    # README: `rate_limited_weight` defaults to 1, "score of one refused rate-limited action".
    assert policy().charge(SecurityEvent("rate_limited", "203.0.113.7", "alice")) == Charge(0, 1.0)
