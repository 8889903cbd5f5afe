"""The libraries whose private names the store uses are in the ranges it was checked against."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from tkr_store_peewee import _privates

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
PINNED = ("peewee", "aiosqlite", "asyncpg")


def requirements() -> dict[str, Requirement]:
    listed = [Requirement(text) for text in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]]
    return {r.name: r for r in listed}


@pytest.mark.parametrize("name", PINNED)
def test_the_installed_version_is_in_the_pinned_range(name: str) -> None:
    requirement = requirements()[name]
    # Bounded above: a new minor version must be checked before it is allowed.
    assert any(spec.operator == "<" for spec in requirement.specifier), requirement
    assert requirement.specifier.contains(version(name)), f"{name} {version(name)} is outside {requirement.specifier}"


def test_every_private_name_is_still_there() -> None:
    assert _privates.check() == []
