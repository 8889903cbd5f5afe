"""The verifier and the hook on their own: which credentials become principals, and how the rest are refused."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from tkr_auth_apikey import authenticate
from tkr_auth_apikey.keys import MAX_KEY_CHARS, PREFIX, digest, new_key
from tkr_auth_apikey.settings import ApiKeySettings
from tkr_auth_apikey.verify import verify_key

from tkr_host import Handshake, HostError, Principal

KEY = new_key()
SETTINGS = ApiKeySettings.model_validate({"keys": [{"sha256": digest(KEY), "sub": "ci-bot", "name": "CI bot", "roles": ["ci"]}]})


def refusal(settings: ApiKeySettings, key: str) -> dict[str, Any]:
    """The Error a client would see for ``key``; it never repeats the key or a digest."""
    with pytest.raises(HostError) as caught:
        verify_key(settings, key)
    error = caught.value.to_wire()
    assert error["code"] == "auth.invalid"
    assert error["message"] and error["hint"]
    shown = str(error)
    for secret in (key, digest(key), digest(KEY), KEY, "ci-bot"):
        assert secret == PREFIX or secret not in shown  # the prefix alone is no secret, and the message names it
    return error


def test_a_configured_key_names_its_principal() -> None:
    assert verify_key(SETTINGS, KEY) == Principal(id="ci-bot", kind="agent", name="CI bot", roles=("ci",))


def test_an_unknown_key_is_refused() -> None:
    assert refusal(SETTINGS, new_key())["details"] == {"reason": "unknown_key"}


def test_with_no_keys_configured_nothing_authenticates() -> None:
    assert refusal(ApiKeySettings(), KEY)["details"] == {"reason": "unknown_key"}


# Ids of their own: KEY is new at every import, and pytest-xdist's workers must collect the same ids.
@pytest.mark.parametrize("key", [KEY[:-5], KEY + " ", KEY[:20] + "." + KEY[21:], PREFIX, PREFIX + "short"],
                         ids=["cut", "trailing-space", "altered", "prefix-only", "short"])
def test_a_cut_or_altered_key_is_malformed(key: str) -> None:
    error = refusal(SETTINGS, key)
    assert error["details"] == {"reason": "malformed"}
    assert "Copy the whole key" in error["hint"]


def test_a_huge_key_is_refused_before_hashing() -> None:
    assert refusal(SETTINGS, PREFIX + "A" * MAX_KEY_CHARS)["details"] == {"reason": "too_long"}


def test_one_changed_character_is_a_different_key() -> None:
    altered = KEY[:-1] + ("A" if KEY[-1] != "A" else "B")
    assert refusal(SETTINGS, altered)["details"] == {"reason": "unknown_key"}


# --- the hook: which credentials are this plugin's to judge ---------------------------


def handshake(token: str | None) -> Handshake:
    return Handshake(namespace="/agents", token=token, headers={}, peer="127.0.0.1")


# The hook reads its settings through host.config; nothing else of the host is used.
HOST: Any = SimpleNamespace(config=lambda name, model: SETTINGS if name == "auth_apikey" and model is ApiKeySettings else None)


@pytest.mark.parametrize("token", [None, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", "garbage", "TKR_AK_" + KEY[len(PREFIX) :]],
                         ids=["none", "jwt", "garbage", "upper-case-prefix"])
def test_credentials_without_the_prefix_are_left_to_other_backends(token: str | None) -> None:
    assert authenticate(HOST, handshake(token)) is None


def test_prefixed_credentials_are_judged_here() -> None:
    assert authenticate(HOST, handshake(KEY)) == Principal(id="ci-bot", kind="agent", name="CI bot", roles=("ci",))
    with pytest.raises(HostError):
        authenticate(HOST, handshake(new_key()))
