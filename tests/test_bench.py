"""``bench`` runs in its quick mode and writes a valid JSON report (no figure is judged: no test asserts a time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NODE_READY = (REPO / "bench" / "node" / "node_modules" / "socket.io" / "package.json").exists()


@pytest.mark.timeout(300)
def test_bench_quick_mode_writes_a_report(tmp_path: Path) -> None:
    targets, kinds = ("bare,host,node", "py,js") if NODE_READY else ("bare,host", "py")
    env = {**os.environ, "BENCH_QUICK": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--targets", targets, "--client-kinds", kinds, "--idle", "4", "--replay", "10",
         "--stream-agents", "1", "--stream-chunks", "3", "--out", str(tmp_path), "--timeout", "240"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (report_path,) = tmp_path.glob("*.json")
    report = json.loads(report_path.read_text())
    assert report["failures"] == {}
    assert report["params"]["quick"] is True and report["params"]["rounds"] == 1
    host = report["median"]["host"]
    for kind in kinds.split(","):
        # Every send acked and every delivery made: the quick load is tiny.
        assert host[f"{kind}.acked"] == host[f"{kind}.sent"]
        assert host[f"{kind}.lost"] == 0 and host[f"{kind}.duplicates"] == 0 and host[f"{kind}.out_of_order"] == 0
        assert f"{kind}.deliveries_per_s" in report["host_over_bare"]
        assert isinstance(host[f"{kind}.compression"], str)
    assert host["replay_messages"] == 10 and host["chunks_lost"] == 0
    if NODE_READY:
        assert "js.deliveries_per_s" in report["host_over_node"]
