"""Reading a connect: the credential, the headers and the client's address.

A credential comes from the Socket.IO ``auth`` payload (``{"token": …}``) or an
``Authorization: Bearer`` header. It is never read from the URL: a token in a
query string ends up in proxy logs and browser history.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from tkr_host.types import Handshake

BEARER = "bearer "


def peer_address(scope: Mapping[str, Any] | None, headers: Mapping[str, str], trusted_proxies: list[str]) -> str:
    """The client's address.

    ``REMOTE_ADDR`` is always 127.0.0.1 under ASGI, so read the ASGI scope.
    ``X-Forwarded-For`` is believed only when the direct peer is a trusted proxy;
    then the right-most address that is not itself a trusted proxy is the client.
    """
    client = (scope or {}).get("client")
    peer = str(client[0]) if client else "unknown"
    forwarded = headers.get("x-forwarded-for")
    if not forwarded or not is_trusted_proxy(peer, trusted_proxies):
        return peer
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        if not is_trusted_proxy(hop, trusted_proxies):
            return hop
    return peer


def is_trusted_proxy(address: str, trusted_proxies: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in trusted_proxies:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def headers_from_environ(environ: Mapping[str, Any]) -> dict[str, str]:
    """The request headers, lower-cased, from a WSGI-style environ."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            headers[key[5:].replace("_", "-").lower()] = value
    return headers


def headers_from_scope(scope: Mapping[str, Any]) -> dict[str, str]:
    """The request headers, lower-cased, from an ASGI scope."""
    return {bytes(name).decode("latin-1").lower(): bytes(value).decode("latin-1") for name, value in scope.get("headers") or []}


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    if value[: len(BEARER)].lower() == BEARER:
        token = value[len(BEARER) :].strip()
        return token or None
    return None


def build_handshake(namespace: str, environ: Mapping[str, Any], auth: Any, trusted_proxies: list[str]) -> Handshake:
    """Collect what an auth plugin needs from a namespace connect."""
    headers = headers_from_environ(environ)
    auth_payload: Mapping[str, Any] = auth if isinstance(auth, Mapping) else {}
    token = auth_payload.get("token")
    if not isinstance(token, str) or not token:
        token = bearer_token(headers)
    peer = peer_address(environ.get("asgi.scope"), headers, trusted_proxies)
    return Handshake(namespace=namespace, token=token, headers=headers, peer=peer, auth=dict(auth_payload))
