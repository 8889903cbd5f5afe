"""The transport's tested version ranges (pyproject.toml; docs/operations.md, "Upgrading
the transport libraries"): the installed versions are in them, and a version outside
one stops the host at start-up with a sentence that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tkr_host import _versions as _transport
from tkr_host.app import create_app
from tkr_host.config import load_settings
from tkr_host.testing import default_settings

#: docs/operations.md: the libraries whose internals the transport uses.
TRANSPORT_LIBRARIES = {"python-socketio", "python-engineio", "hypercorn", "wsproto"}


def test_every_transport_library_has_a_tested_range_with_an_upper_bound() -> None:
    ranges = _transport.supported_ranges()
    assert set(ranges) == TRANSPORT_LIBRARIES
    for name, requirement in ranges.items():
        assert any(spec.operator == "<" for spec in requirement.specifier), f"{name}: {requirement} has no upper bound"


def test_the_installed_versions_are_the_tested_ones() -> None:
    problems = _transport.version_problems()
    assert not problems, "\n".join(problems)


def test_a_version_past_the_range_is_named_with_its_range() -> None:
    installed = {"python-socketio": "5.18.1", "python-engineio": "4.15.1", "hypercorn": "0.18.0", "wsproto": "1.3.2"}
    assert _transport.version_problems(installed) == []
    problems = _transport.version_problems({**installed, "python-engineio": "4.16.0"})
    assert len(problems) == 1
    assert "python-engineio 4.16.0 is installed" in problems[0]
    assert str(_transport.supported_ranges()["python-engineio"]) in problems[0]
    with pytest.raises(_transport.TransportVersionError, match=r"python-engineio 4\.16\.0"):
        _transport.check_versions({**installed, "python-engineio": "4.16.0"})


def test_the_host_does_not_start_on_an_untested_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_version = _transport.metadata.version

    def version(name: str) -> str:
        return "6.0.0" if name == "python-socketio" else real_version(name)

    # The one stand-in of this file: an installed version cannot be changed for one test.
    monkeypatch.setattr(_transport.metadata, "version", version)
    with pytest.raises(_transport.TransportVersionError, match=r"python-socketio 6\.0\.0 is installed"):
        create_app(load_settings(None, **default_settings(f"sqlite:///{tmp_path}/tkr.db")))
