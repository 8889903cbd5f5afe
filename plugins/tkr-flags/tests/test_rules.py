"""The flag rules of the README, with no host: who a flag is on for."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tkr_flags import FlagBook, FlagsSettings

from tkr_host import Principal

POPULATION = [Principal(id=f"user-{n}") for n in range(4000)]


def book(**flags: object) -> FlagBook:
    return FlagBook(FlagsSettings.model_validate({"flags": flags}))


def share_on(flags: FlagBook, name: str) -> set[str]:
    return {p.id for p in POPULATION if flags.enabled(name, p)}


def test_true_and_false_are_shorthand_for_enabled():
    flags = book(on=True, off=False)
    alice = Principal(id="alice")
    assert flags.enabled("on", alice) is True
    assert flags.enabled("off", alice) is False


def test_a_flag_that_is_not_listed_is_unknown_to_the_book():
    assert book(on=True).enabled("missing", Principal(id="alice")) is None


@pytest.mark.parametrize("percent", [10, 25, 50])
def test_percent_turns_on_about_that_share(percent):
    on = share_on(book(rollout={"percent": percent}), "rollout")
    # 4,000 principals: the share is within 3 points of the percentage (the
    # hash is deterministic, so this cannot flake).
    assert abs(len(on) / len(POPULATION) * 100 - percent) < 3


def test_zero_and_hundred_percent_are_none_and_all():
    assert share_on(book(rollout={"percent": 0}), "rollout") == set()
    assert share_on(book(rollout={"percent": 100}), "rollout") == {p.id for p in POPULATION}


def test_raising_the_percentage_only_adds_principals():
    ten = share_on(book(rollout={"percent": 10}), "rollout")
    thirty = share_on(book(rollout={"percent": 30}), "rollout")
    assert ten < thirty


def test_each_flag_picks_its_own_share():
    flags = book(a={"percent": 20}, b={"percent": 20})
    assert share_on(flags, "a") != share_on(flags, "b")


def test_the_same_principal_gets_the_same_answer_from_a_new_book():
    first, second = book(rollout={"percent": 37}), book(rollout={"percent": 37})
    assert share_on(first, "rollout") == share_on(second, "rollout")


def test_principals_are_named_with_their_kind_and_a_bare_id_is_a_user():
    flags = book(beta={"principals": ["alice", "agent:planner"]})
    assert flags.enabled("beta", Principal(id="alice", kind="user")) is True
    assert flags.enabled("beta", Principal(id="alice", kind="agent")) is False
    assert flags.enabled("beta", Principal(id="planner", kind="agent")) is True
    assert flags.enabled("beta", Principal(id="planner", kind="user")) is False


def test_roles_turn_a_flag_on_for_their_holders():
    flags = book(beta={"roles": ["beta"]})
    assert flags.enabled("beta", Principal(id="alice", roles=("staff", "beta"))) is True
    assert flags.enabled("beta", Principal(id="bob", roles=("staff",))) is False


def test_for_principal_lists_every_flag_as_it_applies():
    flags = book(on=True, off=False, beta={"principals": ["alice"]})
    assert flags.for_principal(Principal(id="alice")) == {"beta": True, "off": False, "on": True}
    assert flags.for_principal(Principal(id="bob")) == {"beta": False, "off": False, "on": True}


@pytest.mark.parametrize(
    "flags",
    [
        {"Bad-Name": True},
        {"x": {"percent": 101}},
        {"x": {"percent": -1}},
        {"x": {"unknown": 1}},
        {"x": {"principals": ["agent:"]}},
    ],
)
def test_bad_tables_are_refused(flags):
    with pytest.raises(ValidationError):
        FlagsSettings.model_validate({"flags": flags})
