"""``[plugins.web]``: the plugin's config table."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class WebSettings(BaseModel):
    """Where the page's files come from, and what it is called.

    The defaults fit this repository: the browser client in ``clients/js/src``
    and the npm modules that ``npm ci --prefix plugins/tkr-web`` installs into
    ``plugins/tkr-web/node_modules``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The page's title and the name in its header.
    title: str = Field(default="tkr chat", min_length=1, max_length=80)
    #: The browser client's ES modules (``clients/js/src``); empty: found next to this plugin's source.
    client_dir: Path | None = None
    #: The ``node_modules`` holding socket.io-client, marked and DOMPurify; empty: ``plugins/tkr-web/node_modules``.
    node_modules: Path | None = None
    #: Image sources rendered Markdown may load besides the host itself (CSP ``img-src``). Empty by
    #: default: an image from anywhere else would load by itself and tell its server who reads the
    #: conversation, so the page shows it as a link instead.
    img_src: list[str] = Field(default_factory=list)
