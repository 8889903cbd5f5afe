"""The page's static files, each directory served under a content hash.

A mount is one directory served at ``/static/<name>/<hash>/<file>``. The hash
covers every file of the directory, so the URL changes whenever any file does:
that is what lets these responses be cached for a year (``immutable``) while
the page at ``/`` is never cached. Relative ``import`` statements between the
ES modules of one directory keep working, because the hash is a directory in
the URL, not part of each file name.

Third-party modules are served straight out of ``node_modules`` (installed by
``npm ci`` from the plugin's package-lock.json), so nothing of theirs is
copied into the repository.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: Served file types and their Content-Type. Anything else is not served.
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".map": "application/json; charset=utf-8",
    ".png": "image/png",
    ".json": "application/json; charset=utf-8",
}

#: The npm modules the page imports: package name → the directory (inside the
#: package) holding its self-contained ES module build, and that module's file.
VENDOR = {
    "socket.io-client": ("dist", "socket.io.esm.min.js"),
    "marked": ("lib", "marked.esm.js"),
    "dompurify": ("dist", "purify.es.mjs"),
}

PLUGIN_ROOT = Path(__file__).resolve().parent
#: In this repository: plugins/tkr-web/tkr_web → the repository root.
REPO_ROOT = PLUGIN_ROOT.parents[2]


@dataclass(frozen=True)
class Mount:
    """One directory served under ``/static/<name>/<digest>/``."""

    name: str
    directory: Path
    digest: str
    files: frozenset[str] = field(default_factory=frozenset)
    #: The bytes that were hashed, by file: an immutable URL must always serve
    #: them, even when the file on disk is edited while the host runs.
    contents: dict[str, bytes] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def url(self, file: str) -> str:
        return f"/static/{self.name}/{self.digest}/{file}"

    def content_of(self, file: str) -> bytes | None:
        """The bytes to send for ``file``, or None when it is not one of this mount's files."""
        return self.contents.get(file) if file in self.files else None

    def only(self, file: str) -> Mount:
        """This mount, serving one of its files and nothing else."""
        return Mount(self.name, self.directory, self.digest, frozenset({file}), {file: self.contents[file]})


def scan(name: str, directory: Path) -> Mount | None:
    """Hash a directory's servable files (recursively); None when it does not exist."""
    if not directory.is_dir():
        return None
    digest = hashlib.sha256()
    contents: dict[str, bytes] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in MEDIA_TYPES):
        relative = path.relative_to(directory).as_posix()
        # Read once: what is hashed is what is served.
        contents[relative] = body = path.read_bytes()
        digest.update(relative.encode() + b"\0" + body + b"\0")
    return Mount(name, directory, digest.hexdigest()[:16], frozenset(contents), contents)


@dataclass
class Assets:
    """Every mount of the page, and what is missing (reported on the page and in the log)."""

    mounts: dict[str, Mount] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def add(self, name: str, directory: Path, remedy: str) -> Mount | None:
        mount = scan(name, directory)
        if mount is None:
            self.missing.append(f"{directory} is missing: {remedy}")
            log.warning("tkr-web: %s is missing, so the web page cannot load: %s", directory, remedy)
        else:
            self.mounts[name] = mount
        return mount

    def url(self, name: str, file: str) -> str:
        return self.mounts[name].url(file)


def collect(client_dir: Path | None, node_modules: Path | None, renderers: dict[str, Path]) -> Assets:
    """The page's own files, the browser client, the npm modules and the plugins' renderers."""
    assets = Assets()
    assets.add("app", PLUGIN_ROOT / "static", "reinstall tkr-web")
    assets.add("client", client_dir or REPO_ROOT / "clients" / "js" / "src", "set [plugins.web] client_dir to clients/js/src")
    modules = node_modules or PLUGIN_ROOT.parent / "node_modules"
    for package, (subdir, _module) in VENDOR.items():
        assets.add(f"vendor/{package}", modules / package / subdir, f"run `npm ci --prefix {modules.parent}` (or `make run`)")
    for message_type, module in renderers.items():
        mount = scan(f"renderers/{message_type}", module.parent)
        if mount is None or module.name not in mount.files:
            log.warning("tkr-web: the renderer of %r (%s) is not a servable file; it is left out", message_type, module)
            continue
        # Only the module itself: a plugin's package directory holds more than the page needs.
        assets.mounts[mount.name] = mount.only(module.name)
    return assets
