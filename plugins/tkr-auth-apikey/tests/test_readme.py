"""The README cannot drift: its tables list every setting, and every TOML example validates."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from tkr_auth_apikey.keys import PREFIX
from tkr_auth_apikey.settings import ApiKeyEntry, ApiKeySettings

from tkr_host.config import resolve_secrets

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", TEXT, flags=re.DOTALL)


def test_the_config_tables_list_every_setting() -> None:
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", TEXT, flags=re.MULTILINE))
    assert set(ApiKeySettings.model_fields) | set(ApiKeyEntry.model_fields) <= documented


def test_the_command_options_are_documented() -> None:
    for option in ("--sub", "--kind", "--name", "--role"):
        assert f"`{option}" in TEXT


@pytest.mark.parametrize("block", TOML_BLOCKS)
def test_every_toml_example_validates(block: str) -> None:
    table = tomllib.loads(block)["plugins"]["auth_apikey"]
    settings = ApiKeySettings.model_validate(resolve_secrets(table, "README.md", "plugins.auth_apikey"))
    assert settings.keys


def test_the_examples_never_hold_a_key() -> None:
    assert TOML_BLOCKS
    for block in TOML_BLOCKS:
        assert PREFIX not in block
