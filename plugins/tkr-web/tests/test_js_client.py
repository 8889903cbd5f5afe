"""The browser client's own tests (clients/js/test, Node's test runner) against a real host.

They start `tkr-host serve` themselves (clients/js/test/host.js); this test runs
them inside the pytest suite, with this environment's tkr-host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[3] / "clients" / "js"


def test_the_browser_client_passes_its_node_tests() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the browser client's tests need Node.js 20 or later on PATH")
    if not (CLIENT / "node_modules" / "socket.io-client").is_dir() or not (CLIENT / "node_modules" / "fake-indexeddb").is_dir():
        pytest.fail("clients/js/node_modules is incomplete: run `make test`, or `npm ci --prefix clients/js`")
    tests = sorted(str(path) for path in (CLIENT / "test").glob("*.test.js"))
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", *tests], cwd=CLIENT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TKR_HOST_BIN": str(Path(sys.executable).parent / "tkr-host")},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
