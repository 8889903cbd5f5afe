"""The suite's own split (docs/testing.md, "Speed"): what must run alone.

`make pytest` runs everything not marked ``serial`` on several pytest-xdist workers, then the
``serial`` tests one after another with nothing beside them. The fault tests stop PostgreSQL
for real (and hold the machine's SQLite and kill hosts on a clock), which would break any test
running beside them, so every test under ``tests/faults/`` is ``serial``. A test elsewhere that
needs the shared servers to itself says so with ``@pytest.mark.serial``.

It also holds ``json_log``, the host's JSON log lines captured, shared by the log tests.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tkr_host.logs import make_handler

FAULTS = Path(__file__).resolve().parent / "faults"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(FAULTS):
            item.add_marker(pytest.mark.serial)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The root logger's lines, as the host writes them with `log_format = "json"`."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)
