"""The README cannot drift: its config table lists every setting, and every TOML example validates."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from tkr_auth_jwt.settings import JwtSettings

from tkr_host.config import resolve_secrets

README = Path(__file__).resolve().parents[1] / "README.md"
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_config_table_lists_every_setting() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", README.read_text(), flags=re.MULTILINE))
    assert set(JwtSettings.model_fields) <= documented


@pytest.mark.parametrize("block", TOML_BLOCKS)
def test_every_toml_example_validates(block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rsa_key: Any, ec_key: Any) -> None:
    # Lay out the files the examples name, relative to the working directory as the host reads them.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TKR_JWT_SECRET", "e" * 48)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "jwt-secret").write_text("f" * 48 + "\n")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "issuer.pub.pem").write_bytes(rsa_key.public_pem)
    jwks = [
        {**RSAAlgorithm.to_jwk(rsa_key.private.public_key(), as_dict=True), "kid": "r1", "alg": "RS256"},
        {**ECAlgorithm.to_jwk(ec_key.private.public_key(), as_dict=True), "kid": "e1", "alg": "ES256"},
    ]
    (tmp_path / "keys" / "jwks.json").write_text(json.dumps({"keys": jwks}))

    table = tomllib.loads(block)["plugins"]["auth_jwt"]
    settings = JwtSettings.model_validate(resolve_secrets(table, "README.md", "plugins.auth_jwt"))
    assert settings.keys.secret or settings.keys.public_key or settings.keys.jwks


def test_the_examples_never_hold_a_literal_secret() -> None:
    for block in TOML_BLOCKS:
        table = tomllib.loads(block)["plugins"]["auth_jwt"]
        assert "secret" not in table or str(table["secret"]).startswith("env:")
