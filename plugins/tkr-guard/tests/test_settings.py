"""The config table: defaults, refusals, and a README that cannot drift from it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError
from tkr_guard.settings import GuardSettings

README = Path(__file__).resolve().parents[1] / "README.md"
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_defaults_are_the_contract() -> None:
    settings = GuardSettings()
    assert (settings.ban_after_auth_failures, settings.window_s, settings.ban_s, settings.idle_timeout_s) == (10, 60, 300, 0)
    assert (settings.backend, settings.key_prefix) == ("memory", "tkr:guard:")


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"backend": "redis"}, "needs redis_url"),
        ({"exempt": ["10.0.0.0/33"]}, "is not an IP address or network"),
        ({"ban_after_auth_failures": 0}, "greater than or equal to 1"),
        ({"window_s": 0}, "greater than 0"),
        ({"idle_timeout_s": -1}, "greater than or equal to 0"),
        ({"backend": "disk"}, "'memory' or 'redis'"),
        ({"ban_after": 3}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_table_is_refused_with_a_reason(table: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        GuardSettings.model_validate(table)


def test_the_readme_lists_every_setting() -> None:
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", README.read_text(), flags=re.MULTILINE))
    assert set(GuardSettings.model_fields) == documented


@pytest.mark.parametrize("block", TOML_BLOCKS)
def test_every_toml_example_validates(block: str) -> None:
    GuardSettings.model_validate(tomllib.loads(block)["plugins"]["guard"])


def test_the_first_example_shows_the_defaults() -> None:
    shown = GuardSettings.model_validate(tomllib.loads(TOML_BLOCKS[0])["plugins"]["guard"])
    assert shown == GuardSettings()
