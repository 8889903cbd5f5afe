"""The range checks of plugin tables, as docs/configuration.md gives them: each bound
is accepted and the value just past it stops start-up with a ConfigError.

The tables are checked the way start-up checks them: the installed plugins' own
models, through ``validate_plugin_tables``.
"""

from __future__ import annotations

import pytest

from tkr_host.config import ConfigError, load_settings
from tkr_host.plugins import make_plugin_manager, validate_plugin_tables
from tkr_host.testing import default_settings

#: (table, key, values accepted, values refused), from docs/configuration.md.
RANGES = [
    # recovery: retry_attempts "integer, 1 to 10", retry_base_delay_s "number, 0 to 5", retry_max_delay_s
    # "number, 0 to 30" (at least retry_base_delay_s), retry_budget_s "number > 0, up to 60",
    # breaker_failure_threshold "integer, 1 to 1000", breaker_reset_s "number > 0, up to 600".
    ("recovery", "retry_attempts", [1, 10], [0, 11]),
    ("recovery", "retry_base_delay_s", [0, 0.5], [-0.1, 5.1]),
    ("recovery", "retry_max_delay_s", [5, 30], [-1, 30.1]),
    ("recovery", "retry_budget_s", [0.1, 60], [0, 60.1]),
    ("recovery", "breaker_failure_threshold", [1, 1000], [0, 1001]),
    ("recovery", "breaker_reset_s", [0.1, 600], [0, 600.1]),
    # guard: the weights "number ≥ 0"; memory_max_sources "integer ≥ 1".
    ("guard", "malformed_packet_weight", [0, 10.5], [-0.5]),
    ("guard", "reserved_event_weight", [0, 10.5], [-0.5]),
    ("guard", "memory_max_sources", [1, 100_000], [0]),
    # ratelimit: memory_max_keys "integer ≥ 1".
    ("ratelimit", "memory_max_keys", [1, 100_000], [0]),
    # redis: presence_ttl_s "number, 1–3600".
    ("redis", "presence_ttl_s", [1, 3600], [0.9, 3600.1]),
    # store_peewee: sqlite_synchronous "`off`, `normal`, `full` or `extra`".
    ("store_peewee", "sqlite_synchronous", ["off", "normal", "full", "extra"], ["fast", "NORMALISH"]),
]


def validate(table: str, key: str, value: object) -> dict[str, object]:
    # Every other installed plugin's table as a test host has it (auth_jwt needs its secret).
    plugins: dict[str, dict[str, object]] = {name: dict(values) for name, values in default_settings("sqlite:///:memory:")["plugins"].items()}
    plugins.setdefault(table, {})[key] = value
    settings = load_settings(None, plugins=plugins)
    return validate_plugin_tables(make_plugin_manager(settings), settings)


@pytest.mark.parametrize(("table", "key", "accepted", "refused"), RANGES, ids=[f"{t}.{k}" for t, k, _, _ in RANGES])
def test_a_plugin_key_takes_its_documented_range(table, key, accepted, refused):
    for value in accepted:
        assert getattr(validate(table, key, value)[table], key) == value
    for value in refused:
        with pytest.raises(ConfigError, match=key):
            validate(table, key, value)
