"""Every hook a tkr-host plugin can implement.

Two calling conventions are used, and each hook's docstring says which:

* **sync**: pluggy calls every implementation (last registered first) and the
  host receives the list of results, or the first non-None one for the
  ``firstresult`` factory hooks called once at start-up.
* **async, first result**: the host calls the implementations itself, one at a
  time in pluggy's order, awaiting each; the first result that is not None wins
  and the rest are not called. **async, all**: the same, but every
  implementation runs. (pluggy cannot await, so these hooks are never
  ``firstresult``.) See :mod:`tkr_host.plugins`.

``docs/plugins.md`` documents every hook and argument; a test keeps it complete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

from tkr_host.errors import ErrorCode, HostError
from tkr_host.types import (
    Handshake,
    Message,
    MessageDraft,
    Principal,
    RateLimiter,
    RecoveryStrategy,
    SecurityEvent,
    Store,
)

if TYPE_CHECKING:
    import argparse

    import socketio
    from pydantic import BaseModel
    from quart import Quart

    from tkr_host.api import HostAPI, MessageType
    from tkr_host.cluster import ClusterState

hookspec = pluggy.HookspecMarker("tkr_host")
hookimpl = pluggy.HookimplMarker("tkr_host")

#: The hooks whose implementations may be async: the host calls them itself,
#: one implementation at a time (:mod:`tkr_host.plugins`), so pluggy's
#: ``wrapper``/``hookwrapper`` implementations cannot work there and are refused
#: at start-up. Their docstrings say "may be async"; a test keeps the two in step.
ASYNC_HOOKS: frozenset[str] = frozenset({
    "host_startup", "host_shutdown", "authenticate", "on_connect", "on_http_request", "on_disconnect",
    "on_security_event", "before_store", "after_store", "on_error",
})


# --- lifecycle ---------------------------------------------------------------


@hookspec
def config_model() -> type[BaseModel] | None:
    """Name the pydantic model that validates this plugin's config table.

    Called once per plugin while the host loads its configuration. The table is
    ``[plugins.<name>]`` where ``<name>`` is the plugin's entry-point name. Unknown
    keys, wrong types and missing required values stop start-up with an error
    naming the file, the table and the key; give the model ``extra="forbid"``.

    :return: the model class, or None when the plugin takes no configuration.

    Calling convention: sync, called by the host for each plugin on its own, so
    the result is tied to the plugin that returned it.

    Example::

        class PollSettings(BaseModel):
            model_config = ConfigDict(extra="forbid")
            max_options: int = Field(default=10, ge=2, le=50)

        @hookimpl
        def config_model() -> type[BaseModel]:
            return PollSettings
    """


@hookspec
def error_codes() -> dict[str, ErrorCode] | None:
    """Register the error codes this plugin raises, with their defaults.

    The core's catalogue (``tkr_host/errors.py``) holds only the core's codes; a
    plugin's own codes are registered here, and docs/protocol.md's table of codes
    is generated from both. A ``HostError`` of a registered code takes the
    entry's message, hint and severity for whatever it does not set itself. A code
    is ``category.reason`` with one of the host's categories. Two plugins that
    register one code, or a plugin that registers a core code, stop start-up
    with an error naming both.

    :return: ``{code: ErrorCode(message, hint, severity, when=...)}``, or None.

    Calling convention: sync, called by the host for each plugin on its own when
    the plugin manager is built, so each code is tied to the plugin that gave it.

    Example::

        @hookimpl
        def error_codes() -> dict[str, ErrorCode]:
            return {"not_found.poll": ErrorCode("There is no such poll.", "Check the poll_id.",
                                                when="a vote names a poll that was never opened")}
    """


@hookspec
def host_startup(host: HostAPI) -> Awaitable[None] | None:
    """Start what the plugin needs (connections, background tasks).

    Called once after the store has started and before the first connection.
    An exception stops start-up.

    :param host: the host being started.
    :return: None, or an awaitable the host awaits.

    Calling convention: may be async; all implementations run, in pluggy's order.

    Example::

        @hookimpl
        async def host_startup(host: HostAPI) -> None:
            settings = host.config("audit", AuditSettings)
            host.extensions["audit"] = await AuditLog.open(settings.path)
    """


@hookspec
def host_shutdown(host: HostAPI) -> Awaitable[None] | None:
    """Stop what ``host_startup`` started.

    Called once while the host drains, after connections are closed and before
    the store is closed. Exceptions are logged and the next plugin still runs.

    :param host: the host being stopped.
    :return: None, or an awaitable the host awaits.

    Calling convention: may be async; all implementations run, in pluggy's order.

    Example::

        @hookimpl
        async def host_shutdown(host: HostAPI) -> None:
            audit = host.extensions.pop("audit", None)
            if audit is not None:
                await audit.close()
    """


@hookspec
def register_blueprints(host: HostAPI, app: Quart) -> None:
    """Add HTTP routes to the host's Quart app.

    Called once while the app is built.

    :param host: the host being built.
    :param app: the Quart application; call ``app.register_blueprint``.
    :return: None.

    Calling convention: sync; all implementations run.

    Example::

        @hookimpl
        def register_blueprints(host: HostAPI, app: Quart) -> None:
            routes = Blueprint("audit", __name__)

            @routes.get("/api/v1/audit")
            async def recent() -> Any:
                principal = await http_principal(host)  # Bearer auth, as the core routes
                return {"entries": host.extensions["audit"].recent(principal)}

            app.register_blueprint(routes)
    """


@hookspec
def register_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add sub-commands to the ``tkr-host`` command line.

    Each sub-command sets ``func`` with ``parser.set_defaults(func=...)``; the
    function receives the parsed arguments and returns the exit status.

    :param subcommands: the ``add_subparsers()`` object of ``tkr-host``.
    :return: None.

    Calling convention: sync; all implementations run.

    Example::

        @hookimpl
        def register_commands(subcommands: Any) -> None:
            parser = subcommands.add_parser("audit", help="print the audit log")
            parser.add_argument("--config", default="config.toml")
            parser.set_defaults(func=lambda args: print_audit(args.config) or 0)
    """


@hookspec
def readiness_checks(host: HostAPI) -> dict[str, Callable[[], Awaitable[bool]]] | None:
    """Name the checks that ``GET /readyz`` runs for this plugin.

    Called by every ``/readyz`` request. A check is an async callable that
    returns True while what it checks is usable (a connection that answers, a
    background task that runs); False or an exception marks the node not ready,
    so a load balancer stops sending it traffic. The reason stays in the log.
    Each check appears under its name in the ``checks`` of ``/readyz`` as ``ok``,
    ``failing`` (False or an exception) or ``timeout`` (no answer within 2 s; the
    checks run at once). ``tkr-redis`` names ``redis``.

    :param host: the running host.
    :return: ``{check_name: check}``, or None when the plugin has nothing to check.

    Calling convention: sync; all implementations run; the host awaits every
    check they return, each with a time limit.

    Example::

        @hookimpl
        def readiness_checks(host: HostAPI) -> dict[str, Callable[[], Awaitable[bool]]]:
            async def broker() -> bool:
                return await host.extensions["queue"].ping()

            return {"queue": broker}
    """


# --- connection --------------------------------------------------------------


@hookspec
def authenticate(host: HostAPI, handshake: Handshake) -> Principal | Awaitable[Principal | None] | None:
    """Turn a namespace connect into a principal.

    Called once per namespace connect, before any handler runs. With no
    credential (``handshake.token is None``), return None; the host answers
    ``auth.required`` when nobody accepts the connect.

    :param host: the running host; read settings and services from it.
    :param handshake: the credential, headers, peer address and namespace.
    :return: the principal, or None to let the next plugin try. Raise
        ``HostError("auth.invalid")`` or ``HostError("auth.expired")`` to refuse
        outright.

    Calling convention: may be async; first result. Implementations run one at a
    time in pluggy's order; the first non-None result wins.

    Example::

        @hookimpl
        async def authenticate(host: HostAPI, handshake: Handshake) -> Principal | None:
            if handshake.token is None or not handshake.token.startswith("sso_"):
                return None  # not ours: the next plugin may know it
            user = await sso_lookup(handshake.token)
            if user is None:
                raise HostError("auth.invalid", message="The SSO session has ended.")
            return Principal(id=user.login, kind="user", name=user.display_name)
    """


@hookspec
def on_connect(host: HostAPI, principal: Principal, sid: str, namespace: str, peer: str) -> Awaitable[None] | None:
    """Observe a namespace connect that was accepted.

    May refuse it after all by raising ``HostError`` (the guard plugin refuses a
    banned principal this way).

    :param host: the running host.
    :param principal: who connected.
    :param sid: the Socket.IO session id of the new socket.
    :param namespace: ``/chat``, ``/agents`` or ``/tasks``.
    :param peer: the client address.
    :return: None, or an awaitable.

    Calling convention: may be async; all implementations run.

    Example::

        @hookimpl
        async def on_connect(host: HostAPI, principal: Principal, sid: str, namespace: str, peer: str) -> None:
            if principal.kind == "service" and namespace == "/chat":
                raise HostError("permission.namespace", message="Services use /agents.")
    """


@hookspec
def on_http_request(host: HostAPI, principal: Principal, peer: str, path: str) -> Awaitable[None] | None:
    """Check an authenticated HTTP request before its route runs.

    The HTTP counterpart of ``on_connect``: called for every request that
    authenticated with a Bearer credential (the history route, the guard's bans
    API, any plugin route that uses ``http_principal``). Raise ``HostError`` to
    refuse it (the guard plugin refuses a banned principal this way); the
    request is answered with that Error.

    :param host: the running host.
    :param principal: who sent the request.
    :param peer: the client address.
    :param path: the request's path.
    :return: None, or an awaitable.

    Calling convention: may be async; all implementations run, in pluggy's order,
    and the first error refuses the request.

    Example::

        @hookimpl
        async def on_http_request(host: HostAPI, principal: Principal, peer: str, path: str) -> None:
            if path.startswith("/api/v1/admin") and "admin" not in principal.roles:
                raise HostError("permission.not_member", message="Admins only.")
    """


@hookspec
def on_disconnect(host: HostAPI, principal: Principal, sid: str, namespace: str, reason: str) -> Awaitable[None] | None:
    """Observe a socket that left a namespace, whatever the cause.

    :param host: the running host.
    :param principal: who was connected.
    :param sid: the socket's id.
    :param namespace: the namespace it left.
    :param reason: why, as python-socketio says (``client disconnect``, ``ping timeout``…).
    :return: None, or an awaitable.

    Calling convention: may be async; all implementations run; exceptions are logged.

    Example::

        @hookimpl
        def on_disconnect(host: HostAPI, principal: Principal, sid: str, namespace: str, reason: str) -> None:
            log.info("%s left %s (%s)", principal.id, namespace, reason)
    """


# --- limits ------------------------------------------------------------------


@hookspec(firstresult=True)
def rate_limiter(host: HostAPI) -> RateLimiter | None:
    """Build the rate limiter the host asks before connects, sends and new sessions.

    :param host: the host being started.
    :return: a RateLimiter, or None to let the next plugin decide. With none at
        all, nothing is limited.

    Calling convention: sync factory, called once at start-up; first result.

    Example::

        @hookimpl
        def rate_limiter(host: HostAPI) -> RateLimiter:
            return TokenBuckets(host.config("quota", QuotaSettings))
    """


@hookspec
def on_security_event(host: HostAPI, event: SecurityEvent) -> Awaitable[None] | None:
    """Observe something suspicious: an auth failure, a rate-limit hit, a
    malformed packet, a refused namespace or room.

    :param host: the running host.
    :param event: what happened, where and by whom.
    :return: None, or an awaitable.

    Calling convention: may be async; all implementations run; exceptions are logged.

    Example::

        @hookimpl
        async def on_security_event(host: HostAPI, event: SecurityEvent) -> None:
            if event.kind == "auth_failure":
                await host.extensions["siem"].send(event.peer, event.detail)
    """


# --- messages ----------------------------------------------------------------


@hookspec
def register_message_types(host: HostAPI) -> list[MessageType] | None:
    """Offer message types (``text``, ``context``, ``task``, or your own).

    A later plugin's type replaces an earlier one of the same name.

    :param host: the host being started.
    :return: a list of MessageType objects, or None.

    Calling convention: sync; all implementations run and their lists are merged.

    Example::

        @hookimpl
        def register_message_types(host: HostAPI) -> list[MessageType]:
            return [PollType()]  # name "poll", payload_model PollPayload, async handle(ctx, draft)
    """


@hookspec
def before_store(host: HostAPI, draft: MessageDraft, principal: Principal) -> Awaitable[None] | None:
    """Inspect a message after its type has handled it and before it is stored.

    Raise ``HostError`` to refuse it; nothing is stored then.

    :param host: the running host.
    :param draft: the message about to be stored; it may be changed.
    :param principal: who sends it.
    :return: None, or an awaitable.

    Calling convention: may be async; all implementations run, in pluggy's order,
    and the first error stops the send.

    Example::

        @hookimpl
        async def before_store(host: HostAPI, draft: MessageDraft, principal: Principal) -> None:
            if draft.type == "text" and "password" in draft.payload["text"].lower():
                raise HostError("validation.payload", message="Do not share passwords here.")
    """


@hookspec
def after_store(host: HostAPI, message: Message) -> Awaitable[None] | None:
    """Observe a message that was stored (duplicates are not reported again).

    :param host: the running host.
    :param message: the stored message with its seq and ts.
    :return: None, or an awaitable.

    Calling convention: may be async; all implementations run; exceptions are
    logged and do not undo the send.

    Example::

        @hookimpl
        async def after_store(host: HostAPI, message: Message) -> None:
            await host.extensions["search"].index(message.session_id, message.seq, message.payload)
    """


# --- persistence -------------------------------------------------------------


@hookspec(firstresult=True)
def message_store(host: HostAPI) -> Store | None:
    """Build the store of sessions, messages, deliveries, contexts and tasks.

    :param host: the host being started; the store reads its own config table.
    :return: a Store, or None to let the next plugin decide. The host refuses to
        start with none.

    Calling convention: sync factory, called once at start-up; first result.

    Example::

        @hookimpl
        def message_store(host: HostAPI) -> Store:
            return DynamoStore(host.config("dynamo", DynamoSettings))
    """


# --- errors ------------------------------------------------------------------


@hookspec
def recovery_strategies(host: HostAPI) -> list[RecoveryStrategy] | None:
    """Offer recovery strategies, chosen by the category of the error.

    :param host: the host being started.
    :return: a list of strategies, or None. The recovery plugin orders them by
        its ``order`` setting.

    Calling convention: sync; all implementations run and their lists are merged.

    Example::

        @hookimpl
        def recovery_strategies(host: HostAPI) -> list[RecoveryStrategy]:
            return [AuditRetries()]  # named "audit"; runs once listed in [plugins.recovery] order
    """


@hookspec
def on_error(host: HostAPI, error: HostError, context: dict[str, Any]) -> Awaitable[None] | None:
    """Observe every error the host answers with (for logs and metrics).

    :param host: the running host.
    :param error: the error sent to the client.
    :param context: where it happened: ``namespace``, ``event``, ``sid``,
        ``principal_id`` where known.
    :return: None, or an awaitable.

    Calling convention: may be async; all implementations run; exceptions are logged.

    Example::

        @hookimpl
        def on_error(host: HostAPI, error: HostError, context: dict[str, Any]) -> None:
            if error.category == "internal":
                alerts.page(error.request_id, context.get("event"))
    """


# --- roll-out ----------------------------------------------------------------


@hookspec
def feature_flag(host: HostAPI, name: str, principal: Principal) -> bool | None:
    """Say whether a feature flag is on for a principal (plugin ``tkr-flags``).

    Plugins ask through :meth:`HostAPI.feature_enabled`, never this hook directly.

    :param host: the running host.
    :param name: the flag's name, such as ``task_panel``.
    :param principal: who is asking, or for whom the feature would run.
    :return: True or False when the plugin knows the flag, None to let the
        next plugin answer. A flag no plugin knows is off.

    Calling convention: sync; the first result that is not None wins.

    Example::

        @hookimpl
        def feature_flag(host: HostAPI, name: str, principal: Principal) -> bool | None:
            if name != "beta_search":
                return None  # another plugin's flag
            return "beta" in principal.roles
    """


# --- scale -------------------------------------------------------------------


@hookspec(firstresult=True)
def client_manager(host: HostAPI) -> socketio.AsyncManager | None:
    """Build python-socketio's client manager (the Redis plugin returns an
    ``AsyncRedisManager``).

    :param host: the host being built.
    :return: a manager, or None to let the next plugin decide; the host's default
        is the in-process ``AsyncManager``.

    Calling convention: sync factory, called once while the app is built; first result.

    Example::

        @hookimpl
        def client_manager(host: HostAPI) -> socketio.AsyncManager | None:
            url = host.config("redis", RedisSettings).url
            return socketio.AsyncRedisManager(url) if url else None
    """


@hookspec(firstresult=True)
def cluster_state(host: HostAPI, local: ClusterState) -> ClusterState | None:
    """Provide the view every node of a deployment shares (the Redis plugin keeps it in Redis).

    Presence, the ``streams`` and ``agents`` of a ``session:join``, the agent
    directory, and the ``stream:stop`` and ``disconnect_client`` meant for a
    socket on another node go through it (:mod:`tkr_host.cluster`). The host
    calls ``start(handlers)`` once the plugins have started and ``close()``
    after the drain.

    :param host: the host being started.
    :param local: the host's one-node default, which answers from this node's
        memory; a strategy may fall back on it while its backend is unreachable.
    :return: a :class:`tkr_host.ClusterState`, or None to let the next
        plugin decide; the host's default answers from this node's memory.

    Calling convention: sync factory, called once at start-up; first result.

    Example::

        @hookimpl
        def cluster_state(host: HostAPI, local: ClusterState) -> ClusterState | None:
            url = host.config("redis", RedisSettings).url
            return RedisCluster(local, url) if url else None
    """
