"""The renderer hook: how a plugin shows its own message type on the page.

A plugin that registers a message type may also ship an ES module that draws
it, and name it through the ``web_renderers`` hook. tkr-web defines the hook
(it is not one of the host's) and adds its spec when the app is built. A plugin
implements it with ``@hookimpl(optionalhook=True)``, so that it still loads
where tkr-web is not installed. ``docs/web.md`` describes the module's side.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pluggy

log = logging.getLogger(__name__)

hookspec = pluggy.HookspecMarker("tkr_host")

#: PROTOCOL.md: the names of third-party message types.
TYPE_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


class RendererSpecs:
    """The hook tkr-web adds to the host's plugin manager."""

    @hookspec
    def web_renderers(self) -> list[dict[str, Any]] | None:
        """Name the browser modules that draw a plugin's message types on the web page.

        :return: a list of ``{"type": <message type>, "module": <path of an ES module file>}``,
            or None. The module's directory is served under a content hash, and
            the page imports the module when it first shows a message of that type.

        Calling convention: sync; all implementations run; a later plugin's
        module for the same type replaces an earlier one.
        """


def collect_renderers(pm: pluggy.PluginManager) -> dict[str, Path]:
    """Every renderer the installed plugins offer: message type → module file."""
    if not getattr(pm.hook, "web_renderers", None) or not pm.hook.web_renderers.has_spec():
        pm.add_hookspecs(RendererSpecs)
    found: dict[str, Path] = {}
    # pluggy returns the last registered plugin's result first; let it win.
    for offered in reversed(pm.hook.web_renderers()):
        for item in offered or []:
            message_type, module = item.get("type"), item.get("module")
            if not isinstance(message_type, str) or not TYPE_NAME.match(message_type) or not module:
                log.warning("tkr-web: a web_renderers entry %r is not {type, module}; it is left out", item)
                continue
            found[message_type] = Path(module)
    return found
