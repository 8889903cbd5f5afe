"""Errors a program can act on: every failure the SDK reports is a :class:`TkrError`.

The host answers every failure with the protocol's Error object (``code``,
``category``, ``severity``, ``message``, ``hint``, ``retry_after``,
``request_id``). The SDK raises it as the :class:`TkrError` subclass of its
category, so a program catches :class:`RateLimitError` or :class:`AuthError`
rather than parsing codes. Failures the SDK finds itself (closed client, full
queue, a host that does not answer) use the category ``client``. No
python-socketio exception type ever leaves the SDK.
"""

from __future__ import annotations

from typing import Any, ClassVar

#: Categories whose failures go away by waiting: a send is retried, a connect attempted again.
RECOVERABLE_CATEGORIES = frozenset({"rate_limit", "store", "internal", "agent"})


class TkrError(Exception):
    """A failure, as the host (or the SDK) describes it."""

    category_name: ClassVar[str] = ""

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        hint: str = "",
        severity: str = "error",
        retry_after: float | None = None,
        request_id: str | None = None,
        recoverable: bool | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.category = code.partition(".")[0]
        self.message = message or code
        self.hint = hint
        self.severity = severity
        self.retry_after = retry_after
        self.request_id = request_id
        self.recoverable = (self.category in RECOVERABLE_CATEGORIES or retry_after is not None) if recoverable is None else recoverable
        self.details = details or {}
        super().__init__(self.code, self.message)

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        if self.request_id:
            text += f" [request_id={self.request_id}]"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, retry_after={self.retry_after!r})"

    @classmethod
    def from_wire(cls, error: Any) -> TkrError:
        """The subclass of the Error object's category; a shape the SDK does not
        know becomes ``protocol.bad_error``, never an exception of its own."""
        if not isinstance(error, dict) or not isinstance(error.get("code"), str):
            return ProtocolError("protocol.bad_error", f"The host sent an error the SDK cannot read: {str(error)[:200]}",
                                 hint="Check that the host speaks protocol 1.1.")
        code: str = error["code"]
        retry_after = error.get("retry_after")
        subclass = CATEGORY_CLASSES.get(code.partition(".")[0], TkrError)
        return subclass(
            code,
            str(error.get("message") or code),
            hint=str(error.get("hint") or ""),
            severity=str(error.get("severity") or "error"),
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
            request_id=error.get("request_id") if isinstance(error.get("request_id"), str) else None,
            recoverable=error.get("recoverable") if isinstance(error.get("recoverable"), bool) else None,
            details=error.get("details") if isinstance(error.get("details"), dict) else None,
        )


class AuthError(TkrError):
    """``auth.*``: the credential was refused (``auth.banned`` carries ``retry_after``)."""

    category_name = "auth"


class PermissionDeniedError(TkrError):
    """``permission.*``: the principal may not do this."""

    category_name = "permission"


class ValidationError(TkrError):
    """``validation.*``: the request is wrong; sending it again will not help."""

    category_name = "validation"


class RateLimitError(TkrError):
    """``rate_limit.*``: too much too fast; wait ``retry_after`` seconds."""

    category_name = "rate_limit"


class NotFoundError(TkrError):
    """``not_found.*``: no such session, message, stream or task."""

    category_name = "not_found"


class ConflictError(TkrError):
    """``conflict.*``: the state moved on (a task's state, a stopped stream)."""

    category_name = "conflict"


class AgentError(TkrError):
    """``agent.*``: an agent went away mid-reply."""

    category_name = "agent"


class StoreError(TkrError):
    """``store.*``: the host cannot save right now; queued sends are retried."""

    category_name = "store"


class ProtocolError(TkrError):
    """``protocol.*``: the client and host disagree about the protocol."""

    category_name = "protocol"


class InternalError(TkrError):
    """``internal.*``: the host failed unexpectedly; quote ``request_id``."""

    category_name = "internal"


class ClientError(TkrError):
    """``client.*``: found by the SDK itself (closed client, full queue, timeout, host unreachable)."""

    category_name = "client"


class QueueFullError(ClientError):
    """``client.queue_full``: the offline queue holds its limit; the send was not queued."""


class StreamStopped(ConflictError):
    """A member stopped the stream (``stream:stop``); the reply was stored as ``stopped``."""



CATEGORY_CLASSES: dict[str, type[TkrError]] = {
    cls.category_name: cls
    for cls in (AuthError, PermissionDeniedError, ValidationError, RateLimitError, NotFoundError, ConflictError, AgentError, StoreError,
                ProtocolError, InternalError, ClientError)
}


def client_error(reason: str, message: str, hint: str, **extra: Any) -> ClientError:
    """An error the SDK found itself, ``client.<reason>``."""
    cls = QueueFullError if reason == "queue_full" else ClientError
    return cls(f"client.{reason}", message, hint=hint, **extra)
