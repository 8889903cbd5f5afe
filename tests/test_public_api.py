"""The plugin boundary is real: ``tkr_host.__all__`` is the whole public surface,
first-party code uses nothing else, docs/host-api.md documents all of it, and the
modules of tkr_host import one another without a cycle.

These tests read the source (the AST), so they hold for code that is not run:
``TYPE_CHECKING`` imports, imports inside functions, plugin commands.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import tkr_host
from tkr_host.api import HostAPI

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tkr_host"
HOST_API_MD = ROOT / "docs" / "host-api.md"

#: What first-party code outside tkr_host is: every plugin, the examples and the
#: Python SDK. Their tests may also use the test kit (``tkr_host.testing``), a
#: pytest plugin and not part of the plugin API; ``tests`` folders are skipped.
FIRST_PARTY = [*sorted((ROOT / "plugins").glob("tkr-*")), ROOT / "examples", ROOT / "clients" / "python"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, known: set[str]) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import in the file, wherever it is written.

    ``from a.b import c`` names ``a.b.c`` when that is a module, else ``a.b``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                yield node.lineno, candidate if candidate in known else node.module


def tkr_host_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    known = set(files)
    return {name: {target for _, target in imported_modules(path, known) if target in known and target != name}
            for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as ``[a, b, …, a]``, or None (depth-first search)."""
    state: dict[str, str] = {}  # "open" while on the stack, "done" after
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_modules_of_tkr_host_import_one_another_without_a_cycle() -> None:
    cycle = find_cycle(tkr_host_graph())
    assert cycle is None, "tkr_host has an import cycle (TYPE_CHECKING and function-level imports count): " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    # The check above is only as good as this search.
    graph = tkr_host_graph()
    graph["tkr_host.api"] = {*graph["tkr_host.api"], "tkr_host._host"}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def first_party_files() -> Iterator[Path]:
    for folder in FIRST_PARTY:
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(folder).parts
            if "tests" in relative or "node_modules" in relative or any(part.endswith(".egg-info") for part in relative):
                continue
            yield path


def deep_imports(path: Path) -> Iterator[str]:
    """Each import of ``tkr_host`` below the top level, or of a name not in ``__all__``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    public = set(tkr_host.__all__)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tkr_host."):
                    yield f"{path.relative_to(ROOT)}:{node.lineno}: import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("tkr_host."):
                yield f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module} import …"
            elif node.module == "tkr_host":
                for alias in node.names:
                    if alias.name not in public:
                        yield f"{path.relative_to(ROOT)}:{node.lineno}: from tkr_host import {alias.name} (not in __all__)"


def test_every_first_party_folder_is_checked() -> None:
    files = list(first_party_files())
    for folder in FIRST_PARTY:
        assert any(path.is_relative_to(folder) for path in files), f"no Python file of {folder.relative_to(ROOT)} is checked"
    assert len(FIRST_PARTY) >= 11 + 2  # every plugin, the examples and the SDK


# One worker runs both: the planted file is in the tree the other one reads.
@pytest.mark.xdist_group("first-party-tree")
def test_first_party_plugins_examples_and_the_sdk_import_only_the_top_level_of_tkr_host() -> None:
    found = [problem for path in first_party_files() for problem in deep_imports(path)]
    assert not found, "import these from `tkr_host` (its __all__, docs/host-api.md) instead:\n" + "\n".join(found)


# One worker runs both: the planted file is in the tree the other one reads.
@pytest.mark.xdist_group("first-party-tree")
def test_the_deep_import_check_sees_a_planted_one(tmp_path: Path) -> None:
    planted = ROOT / "plugins" / "tkr-guard" / "tkr_guard" / "_planted_for_test.py"
    try:
        planted.write_text("from tkr_host._host import Host\nfrom tkr_host import Host as H\n\ndef later():\n    import tkr_host.errors\n")
        found = list(deep_imports(planted))
    finally:
        planted.unlink()
    assert len(found) == 3, found


def test_every_public_name_is_importable() -> None:
    for name in tkr_host.__all__:
        assert hasattr(tkr_host, name), f"tkr_host.__all__ names {name}, which tkr_host does not define"


def host_api_members() -> list[str]:
    return sorted(name for name, _ in inspect.getmembers(HostAPI) if not name.startswith("_"))


def test_host_api_has_the_members_plugins_need() -> None:
    # The brief of issue 10; removing one breaks a first-party plugin.
    needed = {"settings", "config", "reload_config", "store", "store_call", "emit", "publish_task", "disconnect_client",
              "spawn", "security_event", "report_error", "feature_enabled", "metrics", "extensions", "list_connections"}
    assert needed <= set(host_api_members())


DOC_HEADING = re.compile(r"^#{2,4} `(?P<name>[A-Za-z_][A-Za-z_0-9.]*)", re.MULTILINE)


def documented_names() -> set[str]:
    return {match["name"] for match in DOC_HEADING.finditer(HOST_API_MD.read_text())}


@pytest.mark.parametrize("name", sorted(tkr_host.__all__))
def test_docs_host_api_md_documents_the_public_name(name: str) -> None:
    assert name in documented_names(), f"docs/host-api.md has no heading `{name}` (### `{name}`)"


@pytest.mark.parametrize("member", host_api_members())
def test_docs_host_api_md_documents_the_host_api_member(member: str) -> None:
    assert f"HostAPI.{member}" in documented_names(), f"docs/host-api.md has no heading `HostAPI.{member}`"
