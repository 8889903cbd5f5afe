"""`tkr-host serve`'s garbage collector settings (docs/operations.md, "`tkr-host serve --config FILE`").

Run in a child interpreter: tuning the test process's own collector would change every later test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tkr_host.testing import TEST_JWT_SECRET, listening_socket, wait_ready

BIN = Path(sys.executable).parent

#: docs/operations.md: the youngest generation's threshold while serving.
DOCUMENTED_YOUNG_THRESHOLD = 50_000

PROBE = """
import gc, json
before = gc.get_threshold()
from tkr_host.serve import tune_gc
tune_gc()
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def test_serving_freezes_start_up_and_raises_only_the_youngest_threshold() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    seen = json.loads(done.stdout)
    young, middle, oldest = seen["after"]
    assert young == DOCUMENTED_YOUNG_THRESHOLD
    # "the two older thresholds are left as they are"
    assert [middle, oldest] == seen["before"][1:]
    assert seen["frozen"] > 0  # what start-up made is out of the collector's walks


def start_host(config: Path, log_path: Path, listener: socket.socket) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([str(BIN / "tkr-host"), "serve", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                cwd=log_path.parent, start_new_session=True, pass_fds=[listener.fileno()],
                                env={**os.environ, "TKR_JWT_SECRET": TEST_JWT_SECRET})


def stop_host(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(10)


async def test_tkr_host_serve_tunes_the_collector_before_it_serves(tmp_path: Path) -> None:
    with listening_socket() as listener:
        port = listener.getsockname()[1]
        config = tmp_path / "config.toml"
        config.write_text(
            f'bind = ["fd://{listener.fileno()}"]\nworkers = 1\n'
            '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
            f'[plugins.store_peewee]\nurl = "sqlite:///{tmp_path}/tkr.db"\n'
        )
        log_path = tmp_path / "server.log"
        server = start_host(config, log_path, listener)
        try:
            await wait_ready(f"http://127.0.0.1:{port}", server)
            lines = log_path.read_text().splitlines()
        finally:
            stop_host(server)
    tuned = [line for line in lines if "garbage collector:" in line]
    assert tuned and f"({DOCUMENTED_YOUNG_THRESHOLD}," in tuned[0], "\n".join(lines)
    serving = next(i for i, line in enumerate(lines) if "tkr-host serving on" in line)
    assert lines.index(tuned[0]) < serving
