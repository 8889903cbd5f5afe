"""Every hook is typed and documented, here and in docs/plugins.md."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from tkr_host import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def _hooks() -> list[tuple[str, inspect.Signature, str]]:
    found = []
    for name, function in vars(hookspecs).items():
        if inspect.isfunction(function) and hasattr(function, "tkr_host_spec"):
            found.append((name, inspect.signature(function), inspect.getdoc(function) or ""))
    return found


def test_there_are_hooks_in_every_group():
    names = {name for name, _, _ in _hooks()}
    assert {"config_model", "host_startup", "host_shutdown", "register_blueprints", "register_commands"} <= names
    assert {"authenticate", "on_connect", "on_disconnect", "rate_limiter", "on_security_event"} <= names
    assert {"register_message_types", "before_store", "after_store", "message_store"} <= names
    assert {"recovery_strategies", "on_error", "client_manager"} <= names


@pytest.mark.parametrize(("name", "signature", "doc"), _hooks(), ids=[h[0] for h in _hooks()])
def test_hook_is_typed_and_its_docstring_is_complete(name, signature, doc):
    assert signature.return_annotation is not inspect.Signature.empty, f"{name} has no return type"
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name}) has no type"
        assert f":param {parameter.name}:" in doc, f"{name}'s docstring does not describe {parameter.name}"
    assert ":return:" in doc
    assert "Calling convention:" in doc


@pytest.mark.parametrize(("name", "signature", "doc"), _hooks(), ids=[h[0] for h in _hooks()])
def test_docs_plugins_md_documents_the_hook_and_each_argument(name, signature, doc):
    text = DOCS.read_text()
    section = re.search(rf"^### `{name}\((?P<args>[^)]*)\)`\n(?P<body>.*?)(?=^### |\Z)", text, re.S | re.M)
    assert section, f"docs/plugins.md has no section '### `{name}(...)`'"
    documented = [arg.strip() for arg in section["args"].split(",") if arg.strip()]
    assert documented == list(signature.parameters), f"docs/plugins.md lists {documented} for {name}"
    for parameter in signature.parameters:
        assert f"`{parameter}`" in section["body"], f"docs/plugins.md does not describe {name}'s `{parameter}`"
    assert "Calling convention" in section["body"]


def test_docs_plugins_md_is_generated_from_the_hookspecs_and_up_to_date():
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "hook_reference.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_hook_has_an_example():
    for name, _, doc in _hooks():
        example = doc.partition("Example::")[2]
        assert f"def {name}(" in example, f"{name}'s docstring has no Example:: that implements it"
