"""The config table: digests only, each once, and principals that make sense."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tkr_auth_apikey.keys import digest, new_key
from tkr_auth_apikey.settings import ApiKeySettings

from tkr_host import Principal


def entry(**fields: Any) -> dict[str, Any]:
    return {"sha256": digest(new_key()), "sub": "ci-bot", **fields}


def problem(table: dict[str, Any]) -> tuple[tuple[int | str, ...], str]:
    """Where the first error is, and what it says."""
    with pytest.raises(ValidationError) as caught:
        ApiKeySettings.model_validate(table)
    first = caught.value.errors()[0]
    return tuple(first["loc"]), first["msg"]


def test_no_table_means_no_keys() -> None:
    settings = ApiKeySettings.model_validate({})
    assert settings.keys == ()
    assert settings.lookup(digest(new_key())) is None


def test_an_entry_names_its_principal_and_kind_defaults_to_agent() -> None:
    full, bare = entry(sub="ci-bot", kind="service", name="CI bot", roles=["ci", "ops"]), entry(sub="echo")
    settings = ApiKeySettings.model_validate({"keys": [full, bare]})
    assert settings.lookup(full["sha256"]) == Principal(id="ci-bot", kind="service", name="CI bot", roles=("ci", "ops"))
    assert settings.lookup(bare["sha256"]) == Principal(id="echo", kind="agent")


def test_several_keys_may_name_the_same_principal() -> None:
    old, new = entry(sub="ci-bot"), entry(sub="ci-bot")  # rotation: both work until the old one is removed
    settings = ApiKeySettings.model_validate({"keys": [old, new]})
    assert settings.lookup(old["sha256"]) == settings.lookup(new["sha256"])


def test_a_digest_listed_twice_is_refused() -> None:
    first = entry(sub="a")
    loc, message = problem({"keys": [first, entry(sub="b"), {**first, "sub": "c"}]})
    assert loc == ("keys",)
    assert "keys[2] repeats the sha256 of keys[0]" in message


def test_an_uppercase_digest_is_refused_with_the_fix() -> None:
    loc, message = problem({"keys": [entry(), entry(sha256=digest(new_key()).upper())]})
    assert loc == ("keys", 1, "sha256")
    assert "lowercase" in message


@pytest.mark.parametrize("value", ["", "abc", "a" * 63, "a" * 65, "g" * 64, " " + "a" * 63, "a" * 64 + "\n"])
def test_a_value_that_is_not_a_digest_is_refused(value: str) -> None:
    loc, message = problem({"keys": [entry(sha256=value)]})
    assert loc == ("keys", 0, "sha256")
    assert "64 lowercase hex digits" in message


def test_a_key_pasted_instead_of_its_digest_is_refused_without_echoing_it() -> None:
    key = new_key()
    loc, message = problem({"keys": [entry(sha256=key)]})
    assert loc == ("keys", 0, "sha256")
    assert "not its digest" in message and "make a new one" in message
    assert key not in message


@pytest.mark.parametrize("sub", ["", "   ", "x" * 201])
def test_a_bad_sub_is_refused(sub: str) -> None:
    assert problem({"keys": [entry(sub=sub)]})[0] == ("keys", 0, "sub")


def test_a_missing_sub_or_digest_is_refused() -> None:
    assert problem({"keys": [{"sha256": "a" * 64}]})[0] == ("keys", 0, "sub")
    assert problem({"keys": [{"sub": "bot"}]})[0] == ("keys", 0, "sha256")


def test_an_unknown_kind_is_refused() -> None:
    loc, message = problem({"keys": [entry(kind="robot")]})
    assert loc == ("keys", 0, "kind")
    assert "'user', 'agent' or 'service'" in message


def test_an_empty_role_is_refused() -> None:
    assert problem({"keys": [entry(roles=["ok", ""])]})[0] == ("keys", 0, "roles", 1)


@pytest.mark.parametrize(("table", "where"), [({"keys": [], "kees": []}, ("kees",)), ({"keys": [entry(shaa256="x")]}, ("keys", 0, "shaa256"))])
def test_unknown_keys_are_refused(table: dict[str, Any], where: tuple[str | int, ...]) -> None:
    assert problem(table)[0] == where


def test_keys_may_come_from_an_environment_variable_as_json() -> None:
    one = entry(sub="from-env")
    settings = ApiKeySettings.model_validate({"keys": f'[{{"sha256": "{one["sha256"]}", "sub": "from-env"}}]'})
    assert settings.lookup(one["sha256"]) == Principal(id="from-env", kind="agent")
    assert "JSON array" in problem({"keys": "not json"})[1]
