"""tkr-auth-apikey: API-key authentication for agents and services.

The hook implementations only; the work lives in ``keys`` (what a key looks
like), ``settings`` (the config table of digests), ``verify`` (key → Principal),
``render`` and ``command`` (``tkr-host apikey new``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pydantic import BaseModel

from tkr_auth_apikey.command import add_apikey_command
from tkr_auth_apikey.keys import has_prefix
from tkr_auth_apikey.settings import PLUGIN_NAME, ApiKeySettings
from tkr_auth_apikey.verify import verify_key
from tkr_host import Handshake, Principal, hookimpl

if TYPE_CHECKING:
    from tkr_host import HostAPI

__all__ = ["ApiKeySettings", "authenticate", "config_model", "register_commands"]


@hookimpl
def config_model() -> type[BaseModel]:
    return ApiKeySettings


@hookimpl
def authenticate(host: HostAPI, handshake: Handshake) -> Principal | None:
    # Synchronous on purpose: one SHA-256 and one dictionary lookup.
    if handshake.token is None:
        return None  # no credential: the host answers auth.required
    if not has_prefix(handshake.token):
        # Not an API key (a JWT, say): let another backend such as tkr-auth-jwt
        # try it; with none, the host answers auth.invalid.
        return None
    return verify_key(host.config(PLUGIN_NAME, ApiKeySettings), handshake.token)


@hookimpl
def register_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_apikey_command(subcommands)
