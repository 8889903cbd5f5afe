"""The README cannot drift: its config table lists every key with its real default, and every TOML example works."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import socketio
from tkr_ratelimit.settings import RateLimitSettings

from tkr_host.config import resolve_secrets
from tkr_host.testing import ConnectRefused, connect_client, deep_merge, make_token, start_host

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", TEXT, flags=re.DOTALL)
CONFIG_SECTION = TEXT.split("## Configuration", 1)[1].split("\n## ", 1)[0]
#: (key, default cell) of each row of the config table.
ROWS = re.findall(r"^\| `([a-z_]+)` \| [^|]+ \| ([^|]+) \|", CONFIG_SECTION, flags=re.MULTILINE)


def example_table(block: str) -> dict[str, Any]:
    table: dict[str, Any] = tomllib.loads(block)["plugins"]["ratelimit"]
    return table


def test_the_config_table_lists_every_key_and_only_those() -> None:
    assert [name for name, _ in ROWS] == list(RateLimitSettings.model_fields)


@pytest.mark.parametrize(("name", "default"), ROWS)
def test_the_config_table_gives_the_real_defaults(name: str, default: str) -> None:
    cell = default.strip()
    written = None if cell == "none" else tomllib.loads(f"value = {cell.strip('`')}")["value"]
    assert written == RateLimitSettings().model_dump()[name]


@pytest.mark.parametrize("block", TOML_BLOCKS)
def test_every_toml_example_validates(block: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TKR_REDIS_URL", "redis://127.0.0.1:6379/0")
    RateLimitSettings.model_validate(resolve_secrets(example_table(block), "README.md", "plugins.ratelimit"))


@pytest.mark.parametrize("block", TOML_BLOCKS)
def test_the_examples_never_hold_a_literal_redis_url(block: str) -> None:
    assert str(example_table(block).get("redis_url", "env:")).startswith("env:")


@pytest.mark.parametrize("ratelimit_backend", ["memory"], indirect=True)
async def test_the_first_example_runs_in_a_host_and_limits_connects(tkr_settings: dict[str, Any], tkr_plugins: list[Any]) -> None:
    table = example_table(TOML_BLOCKS[0])
    running, stop = await start_host(deep_merge(tkr_settings, {"plugins": {"ratelimit": table}}), tkr_plugins)
    clients: list[socketio.AsyncClient] = []
    try:
        for n in range(table["connect_burst"]):
            clients.append(await connect_client(running.url, make_token(f"user{n}")))
        with pytest.raises(ConnectRefused) as caught:
            await connect_client(running.url, make_token("one-too-many"))
        assert caught.value.error["code"] == "rate_limit.connect"
    finally:
        for client in clients:
            await client.disconnect()
        await stop()
