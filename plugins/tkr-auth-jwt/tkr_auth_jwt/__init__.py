"""tkr-auth-jwt: JSON Web Token authentication for tkr-host.

The hook implementations only; the work lives in ``settings`` (the config
table and its keys), ``verify`` (token → Principal), ``mint`` and ``command``
(``tkr-host token``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pydantic import BaseModel

from tkr_auth_jwt.command import add_token_command
from tkr_auth_jwt.settings import PLUGIN_NAME, JwtSettings
from tkr_auth_jwt.verify import verify_token
from tkr_host import Handshake, Principal, hookimpl

if TYPE_CHECKING:
    from tkr_host import HostAPI

__all__ = ["JwtSettings", "authenticate", "config_model", "register_commands"]


@hookimpl
def config_model() -> type[BaseModel]:
    return JwtSettings


@hookimpl
def authenticate(host: HostAPI, handshake: Handshake) -> Principal | None:
    # Synchronous on purpose: verifying is CPU work on keys already in memory.
    if handshake.token is None:
        return None  # no credential: the host answers auth.required
    if handshake.token.count(".") != 2:
        # Not a JWT (header.payload.signature): let another backend, such as
        # tkr-auth-apikey, try it; with none, the host answers auth.invalid.
        return None
    return verify_token(host.config(PLUGIN_NAME, JwtSettings), handshake.token)


@hookimpl
def register_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_token_command(subcommands)
