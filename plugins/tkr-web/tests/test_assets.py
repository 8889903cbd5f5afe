"""Mounts, their hashes and the renderer hook, without a host."""

from __future__ import annotations

from pathlib import Path

import pluggy
from tkr_web.assets import Assets, scan
from tkr_web.renderers import collect_renderers
from tkr_web.routes import find

from tkr_host import hookimpl


def test_the_hash_covers_every_file_so_any_change_gives_new_urls(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("export const a = 1;\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.css").write_text("p {}\n")
    first = scan("app", tmp_path)
    assert first is not None and first.files == {"a.js", "sub/b.css"}
    (tmp_path / "sub" / "b.css").write_text("p { color: red }\n")
    second = scan("app", tmp_path)
    assert second is not None and second.digest != first.digest
    assert second.url("a.js") == f"/static/app/{second.digest}/a.js"


def test_only_the_files_of_a_mount_are_served(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("1")
    (tmp_path / "secret.toml").write_text("secret = 1")
    mount = scan("client", tmp_path)
    assert mount is not None
    assets = Assets(mounts={"client": mount})
    assert find(assets, f"client/{mount.digest}/a.js") is not None
    for asset in (f"client/{mount.digest}/secret.toml", f"client/{mount.digest}/../a.js", "client/0123456789abcdef/a.js", "client/a.js"):
        assert find(assets, asset) is None, asset


class GoodPlugin:
    @hookimpl(optionalhook=True)
    def web_renderers(self) -> list[dict[str, str]]:
        return [{"type": "chart", "module": "/first/chart.js"}, {"type": "Bad Name", "module": "/x.js"}, {"module": "/y.js"}]


class LaterPlugin:
    @hookimpl(optionalhook=True)
    def web_renderers(self) -> list[dict[str, str]]:
        return [{"type": "chart", "module": "/later/chart.js"}]


def test_renderers_are_collected_a_later_plugin_wins_and_malformed_entries_are_left_out() -> None:
    pm = pluggy.PluginManager("tkr_host")
    pm.register(GoodPlugin())
    pm.register(LaterPlugin())
    pm.check_pending()  # optional hooks: no spec needed until tkr-web adds it
    assert collect_renderers(pm) == {"chart": Path("/later/chart.js")}
    assert collect_renderers(pm) == {"chart": Path("/later/chart.js")}  # the spec is added once


def test_an_immutable_url_serves_the_bytes_that_were_hashed_even_after_the_file_changes(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("export const version = 1;\n")
    mount = scan("client", tmp_path)
    assert mount is not None
    (tmp_path / "a.js").write_text("export const version = 2;\n")  # edited while the host runs
    found = find(Assets(mounts={"client": mount}), f"client/{mount.digest}/a.js")
    assert found is not None
    body, media_type = found
    assert body == b"export const version = 1;\n"
    assert media_type.startswith("text/javascript")
