"""``/tasks``: following the state of tasks (PROTOCOL.md, ``/tasks``)."""

from __future__ import annotations

from tkr_host.dispatch import NamespaceSpec


def namespace() -> NamespaceSpec:
    return NamespaceSpec(path="/tasks", events={})
