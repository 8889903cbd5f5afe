"""The contract, covered: every (event, error code) of docs/protocol.md and every key of
docs/configuration.md has a test in registry.py, or is a known gap that may only shrink."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from .docs_contract import config_keys, event_codes
from .registry import CONFIG_KEYS, EVENT_CODES, KNOWN_GAPS

REPO = Path(__file__).resolve().parents[2]


@cache
def names_in(path: str) -> set[str]:
    """The test names of a file, ``Class::test`` for methods."""
    tree = ast.parse((REPO / path).read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {f"{node.name}::{n.name}" for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return names


def problem_with(node_id: str, *mentions: str) -> str | None:
    path, _, name = node_id.partition("::")
    if not (REPO / path).is_file():
        return f"{node_id}: no such file"
    if name not in names_in(path):
        return f"{node_id}: no such test"
    text = (REPO / path).read_text()
    missing = [m for m in mentions if m != "*" and m not in text]
    return f"{node_id}: its file never names {', '.join(missing)}" if missing else None


def test_every_documented_event_code_has_a_test():
    missing = sorted(event_codes() - EVENT_CODES.keys() - KNOWN_GAPS)
    assert not missing, f"documented in docs/protocol.md, with no test in tests/contract/registry.py: {missing}"


def test_every_documented_config_key_has_a_test():
    missing = sorted(config_keys() - CONFIG_KEYS.keys() - KNOWN_GAPS)
    assert not missing, f"documented in docs/configuration.md, with no test in tests/contract/registry.py: {missing}"


def test_every_registered_test_exists_and_names_what_it_covers():
    problems = [problem_with(node, event, code) for (event, code), node in EVENT_CODES.items()]
    problems += [problem_with(node, key.rsplit(".", 1)[-1]) for key, node in CONFIG_KEYS.items()]
    assert [p for p in problems if p] == []


def test_the_registry_names_only_what_the_docs_promise():
    documented = event_codes() | config_keys()
    stale = sorted(map(str, (EVENT_CODES.keys() | CONFIG_KEYS.keys() | KNOWN_GAPS) - documented))
    assert not stale, f"in tests/contract/registry.py, no longer in the docs: {stale}"


def test_a_known_gap_that_got_a_test_leaves_the_list():
    assert sorted(map(str, KNOWN_GAPS & (EVENT_CODES.keys() | CONFIG_KEYS.keys()))) == []
