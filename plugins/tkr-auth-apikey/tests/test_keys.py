"""Keys on their own: their shape, their digest, and how they are written into the config."""

from __future__ import annotations

import hashlib
import tomllib

import pytest
from tkr_auth_apikey.keys import KEY_BYTES, PREFIX, digest, has_prefix, new_key, well_formed
from tkr_auth_apikey.render import inline_table, toml_string
from tkr_auth_apikey.settings import ApiKeyEntry, ApiKeySettings


def test_a_new_key_has_the_prefix_and_enough_randomness() -> None:
    key = new_key()
    assert key.startswith(PREFIX)
    assert len(key) - len(PREFIX) >= 43  # 32 bytes of URL-safe base64
    assert well_formed(key)
    assert "." not in key  # never mistaken for a JWT
    assert len({new_key() for _ in range(100)}) == 100


def test_fewer_than_32_random_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match=f"at least {KEY_BYTES}"):
        new_key(16)
    assert well_formed(new_key(48))


def test_the_digest_is_sha256_hex_of_the_whole_key() -> None:
    key = new_key()
    assert digest(key) == hashlib.sha256(key.encode()).hexdigest()
    assert digest(key) != hashlib.sha256(key[len(PREFIX) :].encode()).hexdigest()
    assert len(digest(key)) == 64 and digest(key) == digest(key).lower()


@pytest.mark.parametrize(
    ("token", "prefixed", "shaped"),
    [
        ("tkr_ak_" + "A" * 43, True, True),
        ("tkr_ak_" + "a-_9" * 20, True, True),
        ("tkr_ak_" + "A" * 42, True, False),
        ("tkr_ak_" + "A" * 42 + "=", True, False),
        ("tkr_ak_" + "A" * 42 + " ", True, False),
        ("tkr_ak_", True, False),
        ("TKR_AK_" + "A" * 43, False, False),
        ("eyJhbGciOiJIUzI1NiJ9.e30.c2ln", False, False),
        ("garbage", False, False),
    ],
)
def test_prefix_and_shape(token: str, prefixed: bool, shaped: bool) -> None:
    assert (has_prefix(token), well_formed(token)) == (prefixed, shaped)


@pytest.mark.parametrize("text", ["plain", 'say "hi"', "back\\slash", "tab\there", "line\nbreak", "bell\x07", "del\x7f", "robot 🤖", "é ü ß"])
def test_toml_strings_round_trip(text: str) -> None:
    assert tomllib.loads(f"value = {toml_string(text)}")["value"] == text


def test_the_inline_table_is_one_line_that_validates() -> None:
    entry = ApiKeyEntry(sha256=digest(new_key()), sub='odd "sub"', kind="service", name="CI 🤖\nbot", roles=("ops", "β"))
    line = inline_table(entry)
    assert "\n" not in line
    table = tomllib.loads(f"keys = [{line}]")
    assert ApiKeySettings.model_validate(table).keys == (entry,)


def test_the_inline_table_leaves_out_empty_name_and_roles() -> None:
    entry = ApiKeyEntry(sha256="a" * 64, sub="bot")
    assert inline_table(entry) == '{sha256 = "' + "a" * 64 + '", sub = "bot", kind = "agent"}'
