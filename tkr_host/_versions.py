"""The versions of python-socketio, python-engineio, Hypercorn and wsproto that the transport
(:mod:`tkr_host._transport`, :mod:`tkr_host._read_deadline`, :mod:`tkr_host._socket_queue`,
:mod:`tkr_host.room_index`) was read in.

Those modules use these libraries' internals, so the host refuses to start on any other
version. The ranges are read from the installed package's metadata, so they are written
once, in ``pyproject.toml``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import Version

from tkr_host.config import ConfigError

log = logging.getLogger(__name__)

#: The distributions whose internals the transport uses; their ranges are pyproject.toml's.
TRANSPORT_DISTRIBUTIONS = ("python-socketio", "python-engineio", "hypercorn", "wsproto")
HOST_DISTRIBUTION = "tkr-host"


class TransportVersionError(ConfigError):
    """An installed library is outside the range the transport was tested with.

    A ConfigError, so that ``tkr-host`` prints it as one line and exits 2."""


def supported_ranges() -> dict[str, Requirement]:
    """The tested range of each transport library, as tkr-host's metadata (pyproject.toml) states it."""
    ranges: dict[str, Requirement] = {}
    for line in metadata.requires(HOST_DISTRIBUTION) or []:
        requirement = Requirement(line)
        if requirement.marker is None and requirement.name in TRANSPORT_DISTRIBUTIONS:
            ranges[requirement.name] = requirement
    return ranges


def version_problems(installed: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per transport library that is missing a range, or installed outside it.

    ``installed`` maps names to versions; by default, what is installed here.
    """
    ranges = supported_ranges()
    problems = []
    for name in TRANSPORT_DISTRIBUTIONS:
        requirement = ranges.get(name)
        if requirement is None or not any(spec.operator in ("<", "<=", "==", "~=") for spec in requirement.specifier):
            problems.append(f"pyproject.toml names no tested range with an upper bound for {name}")
            continue
        version = installed.get(name) if installed is not None else _installed_version(name)
        if version is None:
            problems.append(f"{name} is not installed; tkr-host's transport needs {requirement}")
        elif not requirement.specifier.contains(Version(version), prereleases=True):
            problems.append(f"{name} {version} is installed, but tkr-host's transport (tkr_host/_transport.py) is tested "
                            f"with {requirement} only: install a version in that range, or test the transport "
                            f"against {version} and widen the range in pyproject.toml")
    return problems


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_versions(installed: Mapping[str, str] | None = None) -> None:
    """Refuse to run on library versions the transport was not tested with."""
    problems = version_problems(installed)
    if problems:
        for problem in problems:
            log.critical("%s", problem)
        raise TransportVersionError("; ".join(problems))
