"""Logging: one line per record, human-readable or JSON, with the event's context.

``[host] log_format = "json"`` prints one JSON object per line with ``time``,
``level``, ``logger`` and ``message``, and, where known, ``request_id``, ``sid``,
``principal``, ``namespace`` and ``event``. The default, ``"text"``, is for
people and adds the same context at the end of the line.

The context lives in a :class:`~contextvars.ContextVar`: the dispatcher binds it
for each event, and since every event runs in its own task, whatever that event
logs (the host, a plugin, the store) carries it. A :class:`~tkr_host.HostError`
raised inside an event takes the event's ``request_id``, so an error ack and
its log lines name the same request.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import Literal

LogFormat = Literal["text", "json"]

#: The context fields, in the order they are printed.
CONTEXT_FIELDS = ("request_id", "sid", "principal", "namespace", "event")

#: Never mutated: :func:`bound` sets a new mapping, so the shared default is safe.
_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("tkr_log_context", default=_EMPTY)


def log_context() -> Mapping[str, str]:
    """The context of the running event (empty outside one)."""
    return _context.get()


def current_request_id() -> str | None:
    return _context.get().get("request_id")


def bound(**fields: str | None) -> Bound:
    """``with bound(...):`` adds ``fields`` (None values are skipped) to the log context inside the block."""
    return Bound(fields)


class Bound:
    """The context manager of :func:`bound`: a class, not a generator, since
    every client event enters one."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: Mapping[str, str | None]) -> None:
        self._fields = fields
        self._token: Token[Mapping[str, str]] | None = None

    def __enter__(self) -> None:
        context = dict(_context.get())
        for key, value in self._fields.items():
            if value is not None:
                context[key] = value
        self._token = _context.set(context)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self._token is not None:
            _context.reset(self._token)
            self._token = None


class ContextFilter(logging.Filter):
    """Copies the log context onto each record, as ``record.tkr_context``.

    A field passed with ``extra=`` (``log.warning(..., extra={"request_id": …})``)
    wins over the context.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = dict(_context.get())
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if isinstance(value, str):
                context[name] = value
        record.tkr_context = context
        return True


def _context_of(record: logging.LogRecord) -> dict[str, str]:
    context: dict[str, str] = getattr(record, "tkr_context", {})
    return {name: context[name] for name in CONTEXT_FIELDS if name in context}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback goes into ``exception``, on the same line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": _rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_context_of(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [request_id=… sid=…]`` for people."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _context_of(record)
        if not context:
            return text
        first, newline, rest = text.partition("\n")
        suffix = " [" + " ".join(f"{name}={value}" for name, value in context.items()) + "]"
        return first + suffix + newline + rest


def _rfc3339(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def make_handler(log_format: LogFormat, stream: object = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    return handler


def configure(level: str, log_format: LogFormat) -> None:
    """Send every record, Hypercorn's included, through one handler on the root logger."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "tkr_handler", False)]:
        root.removeHandler(old)
    handler = make_handler(log_format)
    handler.tkr_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Hypercorn is handed these loggers (see serve.py), so it adds no handler of
    # its own and its lines come out in the same format, once.
    for name in ("hypercorn.error", "hypercorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
