"""``tkr-host token`` as a person runs it: a real process, a real config file, the secret in the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import jwt
import pytest

TKR_HOST = Path(sys.executable).with_name("tkr-host")


def write_config(folder: Path, table: str) -> Path:
    """A config with only this plugin on: other installed plugins' tables are not this test's business."""
    others = sorted(ep.name for ep in entry_points(group="tkr_host") if ep.name != "auth_jwt")
    path = folder / "config.toml"
    path.write_text(f"[host]\ndisable_plugins = {others!r}\n\n[plugins.auth_jwt]\n{table}\n")
    return path


@pytest.fixture
def hs_config(tmp_path: Path) -> Path:
    return write_config(tmp_path, 'secret = "env:TKR_JWT_SECRET"\ndefault_ttl_s = 120')


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TKR_")}
    environment.update(env)
    return subprocess.run([str(TKR_HOST), "token", *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=60, check=False)


def test_the_token_command_prints_a_token_with_the_right_claims(hs_config: Path, secret: str) -> None:
    done = run(
        ["--sub", "alice", "--kind", "agent", "--ttl", "1h", "--name", "Alice", "--role", "ops", "--role", "beta", "--config", str(hs_config)],
        hs_config.parent,
        TKR_JWT_SECRET=secret,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1  # only the token, so TOKEN=$(tkr-host token ...) works
    claims: dict[str, Any] = jwt.decode(lines[0], secret, algorithms=["HS256"])
    assert (claims["sub"], claims["kind"], claims["name"], claims["roles"]) == ("alice", "agent", "Alice", ["ops", "beta"])
    assert claims["exp"] - claims["iat"] == 3600


def test_without_ttl_the_configured_default_applies(hs_config: Path, secret: str) -> None:
    done = run(["--sub", "bob", "--config", str(hs_config)], hs_config.parent, TKR_JWT_SECRET=secret)
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip(), secret, algorithms=["HS256"])
    assert (claims["kind"], claims["exp"] - claims["iat"]) == ("user", 120)


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--kind", "robot"], "--kind must be user, agent or service"), (["--ttl", "soon"], "is not a duration"), (["--ttl", "0s"], "at least"),
     (["--ttl", "2d"], "longer than max_ttl_s")],
)
def test_bad_input_gets_one_clear_line_and_status_2(args: list[str], says: str, hs_config: Path, secret: str) -> None:
    done = run(["--sub", "alice", *args, "--config", str(hs_config)], hs_config.parent, TKR_JWT_SECRET=secret)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert says in done.stderr


def test_a_missing_secret_variable_is_reported(hs_config: Path) -> None:
    done = run(["--sub", "alice", "--config", str(hs_config)], hs_config.parent)
    assert done.returncode == 2
    assert "TKR_JWT_SECRET" in done.stderr and done.stdout == ""


def test_an_asymmetric_config_refuses_to_mint(tmp_path: Path, rsa_key: Any) -> None:
    config = write_config(tmp_path, f'algorithms = ["RS256"]\npublic_key_file = "{rsa_key.public_file}"')
    done = run(["--sub", "alice", "--config", str(config)], tmp_path)
    assert done.returncode == 2
    assert "cannot sign" in done.stderr and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
