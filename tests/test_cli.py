"""The tkr-host command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "tkr-host"
#: The repository's example config, found from this file: the tests pass from any directory.
EXAMPLE = str(Path(__file__).resolve().parents[1] / "config.example.toml")


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, cwd=cwd)


def test_check_config_accepts_the_example_file():
    result = run("check-config", EXAMPLE, env={"TKR_JWT_SECRET": "x" * 40})
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_config_names_the_file_table_and_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[host]\nhistory_limit = "lots"\n')
    result = run("check-config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip() == f"tkr-host: {config}: [host] history_limit: Input should be a valid integer, unable to parse string as an integer"


def test_check_config_reports_a_missing_secret_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TKR_JWT_SECRET"}
    result = subprocess.run([str(BIN), "check-config", EXAMPLE], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "TKR_JWT_SECRET is not set" in result.stderr


def test_plugins_lists_distributions_and_hooks():
    result = run("plugins", "--json", "--config", EXAMPLE, env={"TKR_JWT_SECRET": "x" * 40})
    assert result.returncode == 0, result.stderr
    names = {plugin["name"]: plugin for plugin in json.loads(result.stdout)}
    assert names["store_peewee"]["distribution"] == "tkr-store-peewee"
    assert "authenticate" in names["auth_jwt"]["hooks"]
    text = run("plugins", "--config", EXAMPLE, env={"TKR_JWT_SECRET": "x" * 40})
    assert "messages_core  [tkr-messages-core 0.1.0]" in text.stdout
