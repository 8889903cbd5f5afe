"""``[plugins.web]`` keys that had no test (issue 13, item 5): ``client_dir`` and ``img_src``.

Expected values are quoted from docs/configuration.md next to their assertions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tkr_host.testing import deep_merge, installed_plugins, start_host

pytestmark = pytest.mark.skipif("web" not in installed_plugins(), reason="tkr-web is not installed")

MARKER = "// the client of this test's client_dir"


async def get(url: str) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, dict(response.headers), await response.text()


async def served(settings: dict[str, Any], web: dict[str, Any]) -> tuple[Any, Any]:
    return await start_host(deep_merge(settings, {"plugins": {"web": web}}))


def csp(headers: dict[str, str]) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in headers["Content-Security-Policy"].split("; ")}


def marked_client(client: Path) -> Path:
    """A copy of clients/js/src whose index.js starts with MARKER."""
    client.mkdir()
    for module in (Path(__file__).resolve().parents[2] / "clients" / "js" / "src").glob("*.js"):
        (client / module.name).write_text(module.read_text())
    index = client / "index.js"
    index.write_text(f"{MARKER}\n{index.read_text()}")
    return client


async def test_client_dir_is_where_the_page_loads_the_browser_client_from(tkr_settings, tmp_path: Path):
    # configuration.md: client_dir "the browser client's ES modules; unset: clients/js/src".
    client = marked_client(tmp_path / "client")
    running, stop = await served(tkr_settings, {"client_dir": str(client)})
    try:
        status, _, page = await get(f"{running.url}/")
        assert status == 200
        entry = re.search(r'data-client="([^"]+)"', page)
        assert entry, page[:500]
        status, _, module = await get(f"{running.url}{entry.group(1)}")
        assert status == 200 and module.startswith(MARKER)
    finally:
        await stop()


async def test_img_src_adds_its_sources_to_the_csp_img_src_after_the_host_itself(tkr_settings):
    # configuration.md: img_src "image sources that rendered Markdown may load besides the
    # host itself (the CSP's `img-src`, e.g. "https://cdn.example.com" or "https:")".
    running, stop = await served(tkr_settings, {"img_src": ["https://cdn.example.com", "https:"]})
    try:
        status, headers, _ = await get(f"{running.url}/")
        assert status == 200
        assert csp(headers)["img-src"] == ["'self'", "https://cdn.example.com", "https:"]
    finally:
        await stop()


def test_img_src_is_a_list_of_strings(tkr_settings):
    # configuration.md: img_src "list of strings", default `[]`.
    from tkr_host.config import ConfigError, load_settings
    from tkr_host.plugins import make_plugin_manager, validate_plugin_tables

    def validate(value: object) -> Any:
        settings = load_settings(None, **deep_merge(tkr_settings, {"plugins": {"web": {"img_src": value}}}))
        return validate_plugin_tables(make_plugin_manager(settings), settings)["web"]

    assert validate([]).img_src == []
    with pytest.raises(ConfigError, match="img_src"):
        validate("https://cdn.example.com")
