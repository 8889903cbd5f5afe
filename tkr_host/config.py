"""Configuration: one TOML file for Hypercorn and the host, plus TKR_* variables.

The file's top-level keys belong to Hypercorn; ``[host]`` is :class:`HostSettings`;
``[plugins.<name>]`` is each plugin's own table, validated by the model its
``config_model`` hook names (see :func:`tkr_host.plugins.validate_plugin_tables`).
Environment variables override the file: ``TKR_HOST__MAX_PAYLOAD_BYTES=1000``,
``TKR_PLUGINS__AUTH_JWT__SECRET=…``. A string value ``"env:NAME"`` is read from
the variable ``NAME``, so no secret needs to be written into a file.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from hypercorn.config import Config as HypercornConfig
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tkr_host.peer_limits import PeerLimitedConfig

ENV_PREFIX = "TKR_"
READ_TIMEOUT_MARGIN_S = 15
SECRET_PREFIX = "env:"


class ConfigError(Exception):
    """A configuration problem, told in one line that names the file, table and key."""


class HostSettings(BaseModel):
    """The ``[host]`` table."""

    model_config = ConfigDict(extra="forbid")

    public_url: str = "http://127.0.0.1:8000"
    #: Origins allowed to open a Socket.IO connection from a browser; empty means
    #: the host's own origin only.
    cors_allowed_origins: list[str] = Field(default_factory=list)
    #: Entry-point names of installed plugins not to load.
    disable_plugins: list[str] = Field(default_factory=list)
    #: Accept connects without credentials as anonymous users. Off by default.
    allow_anonymous: bool = False
    #: Largest event payload, in UTF-8 bytes of its JSON, before `validation.too_large`.
    max_payload_bytes: int = Field(default=262_144, gt=0, le=1_048_576)
    #: Seconds an Engine.IO session may stay without a namespace.
    connect_timeout_s: float = Field(default=45.0, gt=0)
    ping_interval_s: float = Field(default=25.0, gt=0)
    ping_timeout_s: float = Field(default=20.0, gt=0)
    #: Messages returned by `session:join` without `since_seq`.
    history_limit: int = Field(default=50, ge=1, le=1000)
    #: Messages returned by `session:join` with `since_seq` before `truncated`.
    resume_limit: int = Field(default=500, ge=1, le=10_000)
    #: Seconds SIGTERM waits for in-flight acks before closing connections.
    drain_timeout_s: float = Field(default=10.0, ge=0)
    #: Peers whose X-Forwarded-For header is believed (a reverse proxy).
    trusted_proxies: list[str] = Field(default_factory=list)
    #: A Bearer credential that may read ``/metrics`` from anywhere (``"env:NAME"``);
    #: without it, only the loopback and the trusted proxies may.
    metrics_token: str | None = Field(default=None, min_length=16)
    #: Events of one Engine.IO session answered at a time; the next packet waits.
    max_inflight_events: int = Field(default=8, ge=1, le=256)
    #: Engine.IO sessions of one address that have not connected a namespace yet.
    max_unconnected_sessions_per_address: int = Field(default=16, ge=1, le=10_000)
    #: Open TCP connections of one address (0: no cap). Trusted proxies are exempt.
    max_connections_per_address: int = Field(default=256, ge=0, le=1_000_000)
    #: Accept permessage-deflate when a client offers it (off, as in Node's socket.io):
    #: a zlib state per direction costs memory per socket (docs/operations.md).
    websocket_compression: bool = False
    #: With compression on, messages smaller than this go out uncompressed (RFC 7692 allows it).
    websocket_compression_min_bytes: int = Field(default=1024, ge=0, le=1_048_576)
    #: The root log level of ``tkr-host serve``; a choice, so that a typo stops start-up
    #: instead of surfacing only when serve hands it to logging.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: ``text`` for people, ``json`` for one JSON object per line (time, level,
    #: logger, message, and request_id, sid, principal, namespace, event where known).
    log_format: Literal["text", "json"] = "text"


class Settings(BaseSettings):
    """Everything read from the file and the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

    host: HostSettings = Field(default_factory=HostSettings)
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)

    #: Where the settings came from (None: defaults and environment only).
    config_path: Path | None = Field(default=None, exclude=True)
    #: The file's top-level keys, for Hypercorn.
    hypercorn: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides what ``load_settings`` read from the file,
        # which arrives as init arguments.
        return (env_settings, init_settings)

    def hypercorn_config(self) -> PeerLimitedConfig:
        """Hypercorn's Config: the host's defaults (:func:`hypercorn_defaults`), then the file's keys."""
        config = PeerLimitedConfig.from_mapping({**hypercorn_defaults(self.host), **self.hypercorn})
        assert isinstance(config, PeerLimitedConfig)  # from_mapping is a classmethod: cls(), then the keys
        config.max_connections_per_address = self.host.max_connections_per_address
        config.exempt_addresses = list(self.host.trusted_proxies)
        return config

    def where(self) -> str:
        return str(self.config_path) if self.config_path else "<environment>"


#: Hypercorn's settings the host sets when the file does not: what bounds a
#: client that opens connections and sends little or nothing (docs/operations.md,
#: "Limits and abuse").
HYPERCORN_DEFAULTS: dict[str, Any] = {
    # A connection must send a whole request head within this many seconds of
    # opening, and an idle keep-alive connection is closed after it.
    "keep_alive_timeout": 5.0,
    # The largest request head (request line and headers) Hypercorn buffers.
    "h11_max_incomplete_size": 16_384,
    # The largest WebSocket message, as Engine.IO's own limit (MAX_HTTP_BUFFER_SIZE).
    "websocket_max_message_size": 1_048_576,
    # Received ASGI events queued per connection before Hypercorn stops reading it.
    "max_app_queue_size": 4,
}


def hypercorn_defaults(host: HostSettings) -> dict[str, Any]:
    """:data:`HYPERCORN_DEFAULTS`, and a ``read_timeout`` that a live client never hits.

    A long-polling GET, and a WebSocket between heartbeats, send nothing for up
    to ``ping_interval_s + ping_timeout_s``; a connection silent for longer than
    that plus a margin is dead.
    """
    return {**HYPERCORN_DEFAULTS, "read_timeout": math.ceil(host.ping_interval_s + host.ping_timeout_s) + READ_TIMEOUT_MARGIN_S}


def hypercorn_setting_names() -> set[str]:
    """The names of Hypercorn's settings: the top-level keys a config file may hold besides its tables."""
    return {name for name in dir(HypercornConfig) if not name.startswith("_") and not callable(getattr(HypercornConfig, name))}


def resolve_secrets(value: Any, where: str, path: str) -> Any:
    """Replace every ``"env:NAME"`` string with the variable's value."""
    if isinstance(value, str) and value.startswith(SECRET_PREFIX):
        name = value[len(SECRET_PREFIX) :]
        if name not in os.environ:
            raise ConfigError(f"{where}: {path}: environment variable {name} is not set (the value is {value!r})")
        return os.environ[name]
    if isinstance(value, Mapping):
        return {k: resolve_secrets(v, where, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v, where, path) for v in value]
    return value


def describe_validation_error(where: str, error: ValidationError, table: str | None = None) -> str:
    """One line per problem: ``file: [table] key: what is wrong``.

    Without ``table``, the first part of each error's location names it (as for
    the root settings, where it is ``host``).
    """
    lines = []
    for problem in error.errors():
        loc = [str(part) for part in problem["loc"]]
        if table is None:
            name, loc = (loc[0], loc[1:]) if loc else ("(root)", [])
        else:
            name = table
        key = ".".join(loc) or "(table)"
        lines.append(f"{where}: [{name}] {key}: {problem['msg']}")
    return "\n".join(lines)


def read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (when given), check it, and apply the environment.

    Plugin tables are checked later, once the plugins are known.
    """
    data: dict[str, Any] = {}
    config_path = Path(path) if path is not None else None
    if config_path is not None:
        data = read_toml(config_path)
    where = str(config_path) if config_path else "<environment>"
    known = hypercorn_setting_names()
    hypercorn: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("host", "plugins"):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key} must be a table ([{key}])")
            continue
        if key not in known:
            raise ConfigError(f"{where}: unknown top-level key {key!r}: it is neither a Hypercorn setting nor [host] or [plugins]")
        hypercorn[key] = value
    for name, table in data.get("plugins", {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: plugins.{name} must be a table ([plugins.{name}])")
    file_values: dict[str, Any] = {k: data[k] for k in ("host", "plugins") if k in data}
    if "host" in file_values:
        file_values["host"] = resolve_secrets(file_values["host"], where, "host")
    file_values.update(overrides)
    try:
        settings = Settings(**file_values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(where, exc)) from None
    settings.config_path = config_path
    settings.hypercorn = hypercorn
    check_read_timeout(settings, where)
    return settings


def check_read_timeout(settings: Settings, where: str) -> None:
    """Refuse a ``read_timeout`` that would drop live clients between two heartbeats."""
    read_timeout = settings.hypercorn.get("read_timeout")
    heartbeat = settings.host.ping_interval_s + settings.host.ping_timeout_s
    if read_timeout is None:
        return
    if isinstance(read_timeout, bool) or not isinstance(read_timeout, int | float):
        raise ConfigError(f"{where}: read_timeout: must be a number of seconds")
    if read_timeout <= heartbeat:
        raise ConfigError(f"{where}: read_timeout: {read_timeout} s would drop live clients; it must be more than "
                          f"[host] ping_interval_s + ping_timeout_s ({heartbeat:g} s)")
