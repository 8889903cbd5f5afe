"""tkr-web: the web chat page at ``/``, its assets under ``/static/``.

Entry point ``web`` in the ``tkr_host`` group; config table ``[plugins.web]``.
It also defines the ``web_renderers`` hook through which other plugins draw
their own message types on the page (see :mod:`tkr_web.renderers`).
"""

from __future__ import annotations

from pydantic import BaseModel
from quart import Quart

from tkr_host import HostAPI as Host
from tkr_host import hookimpl
from tkr_web.assets import collect
from tkr_web.renderers import RendererSpecs, collect_renderers
from tkr_web.routes import install
from tkr_web.settings import WebSettings

__all__ = ["RendererSpecs", "WebSettings", "config_model", "register_blueprints"]

PLUGIN_NAME = "web"


@hookimpl
def config_model() -> type[BaseModel]:
    return WebSettings


@hookimpl
def register_blueprints(host: Host, app: Quart) -> None:
    settings = host.config(PLUGIN_NAME, WebSettings)
    renderers = collect_renderers(host.pm)
    assets = collect(settings.client_dir, settings.node_modules, renderers)
    install(app, settings.title, assets, sorted(renderers), settings.img_src)
