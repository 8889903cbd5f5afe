"""The docs cannot drift from the code: every config key, every event, every
error code of the host and every module is written down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from tkr_host.config import HostSettings, Settings
from tkr_host.dispatch import RESERVED_EVENTS
from tkr_host.errors import CATALOG
from tkr_host.namespaces import all_namespaces
from tkr_host.plugins import make_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TABLE_HEADING = re.compile(r"^#{2,3} `\[(?P<table>[a-z_.]+)\]`\s*$", re.MULTILINE)
KEY_ROW = re.compile(r"^\| `(?P<key>[a-z_0-9]+)`", re.MULTILINE)


def config_models() -> dict[str, type[BaseModel]]:
    """``host`` and each installed plugin's table, with the model that validates it,
    found as ``validate_plugin_tables`` finds them."""
    # Built without the environment, so that TKR_HOST__DISABLE_PLUGINS hides nothing.
    pm = make_plugin_manager(Settings.model_construct(host=HostSettings(), plugins={}))
    models: dict[str, type[BaseModel]] = {"host": HostSettings}
    for impl in pm.hook.config_model.get_hookimpls():
        model = impl.function()
        if isinstance(model, type) and issubclass(model, BaseModel):
            models[f"plugins.{impl.plugin_name}"] = model
    return models


def documented_tables() -> dict[str, set[str]]:
    """The keys listed (``| `key` |`` rows) under each ``## `[table]``` heading."""
    text = (DOCS / "configuration.md").read_text()
    headings = list(TABLE_HEADING.finditer(text))
    tables: dict[str, set[str]] = {}
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        section = text[heading.end() : following.start() if following else len(text)]
        section = re.split(r"^#+ ", section, maxsplit=1, flags=re.MULTILINE)[0]  # a #### sub-table is not the table
        tables[heading["table"]] = {row["key"] for row in KEY_ROW.finditer(section)}
    return tables


MODELS = config_models()


def test_the_installed_plugins_with_tables_are_found() -> None:
    assert {"host", "plugins.auth_jwt", "plugins.store_peewee"} <= set(MODELS)


@pytest.mark.parametrize("table", sorted(MODELS))
def test_configuration_md_lists_every_key_of_the_table(table: str) -> None:
    tables = documented_tables()
    assert table in tables, f"docs/configuration.md has no '## `[{table}]`' (or ###) section"
    fields = set(MODELS[table].model_fields)
    missing = fields - tables[table]
    assert not missing, f"docs/configuration.md [{table}] does not list {sorted(missing)}"
    stale = tables[table] - fields
    assert not stale, f"docs/configuration.md [{table}] lists keys the model does not have: {sorted(stale)}"


def test_protocol_md_names_every_event_the_host_serves() -> None:
    text = (DOCS / "protocol.md").read_text()
    for spec in all_namespaces():
        assert f"`{spec.path}`" in text, f"docs/protocol.md does not mention the namespace {spec.path}"
        for event in spec.events:
            assert f"`{event}" in text, f"docs/protocol.md does not document {spec.path} `{event}`"


def test_protocol_md_lists_the_reserved_event_names() -> None:
    text = (DOCS / "protocol.md").read_text()
    for event in RESERVED_EVENTS:
        assert f"`{event}`" in text, f"docs/protocol.md does not list the reserved event `{event}`"


def test_protocol_md_lists_every_error_code_of_the_host() -> None:
    text = (DOCS / "protocol.md").read_text()
    missing = [code for code in CATALOG if f"`{code}`" not in text]
    assert not missing, f"docs/protocol.md does not list {missing}"


def test_architecture_md_names_every_module() -> None:
    text = (DOCS / "architecture.md").read_text()
    package = ROOT / "tkr_host"
    for path in sorted(package.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(package).as_posix()
        assert path.name in text or relative in text, f"docs/architecture.md does not mention tkr_host/{relative}"
