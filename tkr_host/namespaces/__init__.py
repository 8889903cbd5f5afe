"""The three namespaces the host serves. Each module is thin: it validates a
payload and calls the pipeline or the store."""

from __future__ import annotations

from tkr_host.dispatch import NamespaceSpec
from tkr_host.namespaces import agents, chat, tasks


def all_namespaces() -> list[NamespaceSpec]:
    return [chat.namespace(stream_stop=agents.stream_stop), agents.namespace(), tasks.namespace()]
