"""The page and its assets over HTTP, through a real host (docs/web.md, the issue's header rules)."""

from __future__ import annotations

import html.parser
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl

IMMUTABLE = "immutable"


class PageParser(html.parser.HTMLParser):
    """Collects the page's scripts, inline styles, event-handler attributes and data-* of <html>."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_code: list[str] = []
        self.style_attributes: list[str] = []
        self.handlers: list[str] = []
        self.root: dict[str, str | None] = {}
        self.links: list[dict[str, str | None]] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.root = attributes
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
        if tag == "style":
            self.inline_code.append("<style>")
        if tag == "link":
            self.links.append(attributes)
        self.style_attributes += [tag for name, _ in attrs if name == "style"]
        self.handlers += [f"{tag} {name}" for name, _ in attrs if name.startswith("on")]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_code.append(data)


async def fetch(url: str, *, raw: bool = False) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``; with ``raw``, the path goes out as written (aiohttp would resolve ``..`` itself)."""
    async with aiohttp.ClientSession() as http, http.get(yarl.URL(url, encoded=True) if raw else url) as response:
        return response.status, dict(response.headers), await response.read()


async def page_of(tkr_host: Any) -> tuple[dict[str, str], PageParser]:
    status, headers, body = await fetch(f"{tkr_host.url}/")
    assert status == 200
    parser = PageParser()
    parser.feed(body.decode())
    return headers, parser


async def test_the_page_is_served_at_the_root_with_no_inline_script_or_style(tkr_host):
    headers, page = await page_of(tkr_host)
    assert headers["Content-Type"].startswith("text/html")
    assert page.inline_code == [] and page.style_attributes == [] and page.handlers == []
    assert page.scripts and all(script.get("src", "").startswith("/static/") for script in page.scripts)


async def test_the_page_headers_forbid_inline_script_framing_and_sniffing(tkr_host):
    headers, _ = await page_of(tkr_host)
    policy = {part.split()[0]: part.split()[1:] for part in headers["Content-Security-Policy"].split("; ")}
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    # The page names hashed assets, so it is never cached itself.
    assert IMMUTABLE not in headers["Cache-Control"]


async def test_hashed_assets_are_cached_long_and_other_names_are_not_served(tkr_host):
    _, page = await page_of(tkr_host)
    urls = [page.root[key] for key in ("data-client", "data-socketio", "data-marked", "data-dompurify")]
    urls += [script["src"] for script in page.scripts] + [link["href"] for link in page.links]
    for url in urls:
        assert url and re.match(r"^/static/[a-z./-]+/[0-9a-f]{16}/[\w.-]+$", url), url
        status, asset_headers, _ = await fetch(f"{tkr_host.url}{url}")
        assert status == 200, url
        assert "max-age=31536000" in asset_headers["Cache-Control"] and IMMUTABLE in asset_headers["Cache-Control"]
        assert asset_headers["X-Content-Type-Options"] == "nosniff"
        if url.endswith((".js", ".mjs")):
            assert asset_headers["Content-Type"].startswith("text/javascript")
    client = page.root["data-client"] or ""
    stale = re.sub(r"/[0-9a-f]{16}/", "/0000000000000000/", client)
    for wrong in (stale, "/static/client/index.js", "/static/vendor/marked/"):
        status, wrong_headers, _ = await fetch(f"{tkr_host.url}{wrong}")
        assert status == 404, wrong
        assert IMMUTABLE not in wrong_headers.get("Cache-Control", "")


async def test_a_path_that_climbs_out_of_a_mount_is_not_served(tkr_host):
    _, page = await page_of(tkr_host)
    client = page.root["data-client"] or ""
    secret = (Path(__file__).parents[3] / "clients" / "js" / "package.json").read_bytes()
    # From clients/js/src/ one level up is clients/js/, which holds package.json (not a file of the mount).
    for climb in ("../package.json", "..%2Fpackage.json", "%2e%2e/package.json", "sub/../../package.json"):
        url = f"{tkr_host.url}{client.replace('index.js', climb)}"
        assert "/../" in url or "%2" in url, url  # the probe really sends the climb
        status, headers, body = await fetch(url, raw=True)
        assert status == 404, (climb, status)
        assert secret not in body and b'"name"' not in body
        assert IMMUTABLE not in headers.get("Cache-Control", "")


async def test_the_npm_modules_are_the_ones_of_the_lockfile(tkr_host):
    _, page = await page_of(tkr_host)
    lock = json.loads((Path(__file__).parents[1] / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/socket.io-client"]["version"]
    status, _, body = await fetch(f"{tkr_host.url}{page.root['data-socketio']}")
    assert status == 200 and f"Socket.IO v{version}".encode() in body[:200]


async def test_plugins_renderers_are_listed_to_the_page_and_served(tkr_host):
    _, page = await page_of(tkr_host)
    renderers = json.loads(page.root["data-renderers"] or "{}")
    assert set(renderers) >= {"poll"}  # tkr-poll ships one through the web_renderers hook
    status, headers, body = await fetch(f"{tkr_host.url}{renderers['poll']}")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert b"export default function render" in body


async def test_the_service_worker_is_at_the_root_and_lists_every_module_the_page_imports(tkr_host):
    _, page = await page_of(tkr_host)
    status, headers, body = await fetch(f"{tkr_host.url}/sw.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert IMMUTABLE not in headers["Cache-Control"]
    worker = body.decode()
    for key in ("data-client", "data-socketio", "data-marked", "data-dompurify"):
        assert json.dumps(page.root[key]) in worker


@pytest.mark.tkr_settings({"plugins": {"web": {"node_modules": "/nonexistent/node_modules", "title": "Team chat"}}})
async def test_without_npm_modules_the_page_says_what_to_run(tkr_host):
    _, page = await page_of(tkr_host)
    missing = json.loads(page.root["data-missing"] or "[]")
    assert missing and all("npm ci" in line for line in missing)
    assert page.root["data-title"] == "Team chat"


async def test_images_load_only_from_the_host_itself_by_default(tkr_host):
    # docs/web.md: a member's remote image must not load by itself and track the readers.
    headers, _ = await page_of(tkr_host)
    policy = {part.split()[0]: part.split()[1:] for part in headers["Content-Security-Policy"].split("; ")}
    assert policy["img-src"] == ["'self'"]
