"""The suite's own split (docs/testing.md, "Speed"): what must run alone.

`make pytest` runs everything not marked ``serial`` on several pytest-xdist workers, then the
``serial`` tests one after another with nothing beside them. The fault tests stop PostgreSQL
for real (and hold the machine's SQLite and kill hosts on a clock), which would break any test
running beside them, so every test under ``tests/faults/`` is ``serial``. A test elsewhere that
needs the shared servers to itself says so with ``@pytest.mark.serial``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

FAULTS = Path(__file__).resolve().parent / "faults"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(FAULTS):
            item.add_marker(pytest.mark.serial)
