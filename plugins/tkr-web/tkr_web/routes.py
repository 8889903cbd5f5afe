"""``GET /`` (the page) and ``GET /static/<mount>/<digest>/<file>`` (its assets).

The page carries no inline script or style: it names its modules through
``data-*`` attributes of ``<html>``, and ``main.js`` imports them. So the
Content-Security-Policy can say ``script-src 'self'`` and ``style-src 'self'``.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files
from pathlib import PurePosixPath
from typing import Any

from quart import Blueprint, Quart, Response

from tkr_web.assets import MEDIA_TYPES, VENDOR, Assets
from tkr_web.offline import worker_script

#: A year: only for URLs that hold a content hash.
IMMUTABLE = "public, max-age=31536000, immutable"


def content_security_policy(img_src: list[str]) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' {' '.join(img_src)}".strip(),
            "font-src 'self'",
            # 'self' covers ws:// and wss:// to the same host in CSP Level 3 browsers.
            "connect-src 'self'",
            "manifest-src 'self'",
            "worker-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


def security_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }


def render_page(title: str, assets: Assets, renderers: dict[str, str], img_src: list[str] | None = None) -> str:
    template = files("tkr_web").joinpath("page.html").read_text(encoding="utf-8")
    data: dict[str, str] = {
        "title": title,
        "css": assets.url("app", "app.css") if "app" in assets.mounts else "",
        "icon": assets.url("app", "icon.svg") if "app" in assets.mounts else "",
        "main": assets.url("app", "main.js") if "app" in assets.mounts else "",
        "client": assets.url("client", "index.js") if "client" in assets.mounts else "",
        "renderers": json.dumps(renderers, sort_keys=True),
        "missing": json.dumps(assets.missing),
        # The page turns any other image into a link (the CSP would block it anyway).
        "imgsrc": json.dumps(img_src or []),
    }
    for package, (_subdir, module) in VENDOR.items():
        mount = f"vendor/{package}"
        data[package.replace(".", "").replace("-", "")] = assets.url(mount, module) if mount in assets.mounts else ""
    return template.format(**{key: html.escape(value, quote=True) for key, value in data.items()})


def install(app: Quart, title: str, assets: Assets, renderer_types: list[str], img_src: list[str]) -> None:
    """Serve the page at ``/`` and the assets under ``/static/``.

    Quart gives every app a ``/static/<path:filename>`` rule (endpoint
    ``static``) that would shadow a blueprint's route of the same shape, so the
    assets are served by taking over that endpoint's view.
    """
    routes = Blueprint("tkr_web", __name__)
    headers = security_headers(content_security_policy(img_src))
    renderers = {t: assets.url(f"renderers/{t}", next(iter(assets.mounts[f"renderers/{t}"].files)))
                 for t in renderer_types if f"renderers/{t}" in assets.mounts}
    page = render_page(title, assets, renderers, img_src)
    worker = worker_script(assets, list(renderers.values()))

    @routes.get("/")
    async def index() -> Response:
        # The page names hashed assets, so it must never be cached itself.
        return Response(page, status=200, content_type="text/html; charset=utf-8",
                        headers={**headers, "Cache-Control": "no-cache"})

    @routes.get("/sw.js")
    async def service_worker() -> Response:
        # At the root, so that its scope covers the page; never cached, so a
        # new deployment's worker is found on the next visit.
        return Response(worker, status=200, content_type="text/javascript; charset=utf-8",
                        headers={**headers, "Cache-Control": "no-cache"})

    async def static(filename: str) -> Any:
        found = find(assets, filename)
        if found is None:
            return Response("Not found\n", status=404, content_type="text/plain; charset=utf-8",
                            headers={**headers, "Cache-Control": "no-store"})
        body, media_type = found
        return Response(body, status=200, content_type=media_type, headers={**headers, "Cache-Control": IMMUTABLE})

    app.register_blueprint(routes)
    app.view_functions["static"] = static


def find(assets: Assets, asset: str) -> tuple[bytes, str] | None:
    """The bytes (as hashed at start) and media type of ``<mount>/<digest>/<file>``, or None.

    A mount name may hold a slash (``vendor/marked``), so the digest is found
    by matching each mount; a stale digest is not served (the page names the
    current one).
    """
    for mount in assets.mounts.values():
        prefix = f"{mount.name}/{mount.digest}/"
        if asset.startswith(prefix):
            file = asset[len(prefix):]
            body = mount.content_of(file)
            if body is None:
                return None
            return body, MEDIA_TYPES[PurePosixPath(file).suffix]
    return None
