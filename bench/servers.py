"""Start, watch and stop the three servers under test, each in a process of its own.

The host and the bare server read one generated TOML file: its top-level keys
are Hypercorn's (the same for both), the host also reads ``[host]`` and
``[plugins.*]``. The host gets a fresh SQLite file in the run's temp dir and its
JWT secret through ``TKR_JWT_SECRET``. The Node server (``bench/node/server.js``)
takes only its port.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import aiohttp

BENCH_DIR = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TARGETS = ("bare", "host", "node")
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def installed_plugins() -> list[str]:
    """Entry-point names of the host plugins installed here: the host loads them all."""
    return sorted({ep.name for ep in entry_points(group="tkr_host")})


#: Tables for plugins that would refuse the benchmark's traffic: every client
#: comes from 127.0.0.1 and sends as fast as acks allow. The limits are set out
#: of reach and the address exempt, so the plugins still do their per-event
#: work but refuse nothing. Written only for plugins that are installed (the host
#: refuses a table for a plugin it does not have).
PERMISSIVE_TABLES = {
    "ratelimit": (
        "messages_per_second = 1000000\nmessage_burst = 1000000\n"
        "connects_per_minute = 60000000\nconnect_burst = 1000000\n"
        "sessions_per_minute = 60000000\nsession_burst = 1000000\n"
    ),
    "guard": 'exempt = ["127.0.0.1/32"]\n',
}


def write_config(directory: Path, port: int, host_workers: int = 1, redis_url: str | None = None) -> Path:
    """The config both servers read; only the host reads past the top-level keys.

    ``host_workers`` > 1 (the host only: the bare server runs one process
    whatever it says) makes Hypercorn fork that many workers, and then
    ``redis_url`` gives them ``[plugins.redis]``, on a channel of this run's own.
    """
    installed = installed_plugins()
    config = directory / "config.toml"
    text = (
        f'bind = ["127.0.0.1:{port}"]\n'
        f"workers = {host_workers}\n"
        "graceful_timeout = 5\n"
        "\n[host]\n"
        f'public_url = "http://127.0.0.1:{port}"\n'
        "drain_timeout_s = 2\n"
        # Every load client comes from 127.0.0.1: lift the host's per-address caps.
        "max_connections_per_address = 0\n"
        "max_unconnected_sessions_per_address = 10000\n"
        "\n[plugins.auth_jwt]\n"
        'secret = "env:TKR_JWT_SECRET"\n'
        "\n[plugins.store_peewee]\n"
        f'url = "sqlite:///{directory / "tkr.db"}"\n'
    )
    for name, table in PERMISSIVE_TABLES.items():
        if name in installed:
            text += f"\n[plugins.{name}]\n{table}"
    if redis_url is not None:
        text += f'\n[plugins.redis]\nurl = "{redis_url}"\nchannel = "tkr-bench-{directory.name}"\n'
    config.write_text(text)
    return config


@dataclass
class Server:
    """One running server process."""

    target: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    config_text: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def warnings(self, limit: int = 20) -> list[str]:
        """The log's WARNING, ERROR and CRITICAL lines and tracebacks (the first ``limit``)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        marks = (" WARNING ", " ERROR ", " CRITICAL ", "[WARNING]", "[ERROR]", "[CRITICAL]", "Traceback")
        return [line for line in lines if any(mark in line for mark in marks)][:limit]

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        return self.process.returncode


def start_server(target: str, directory: Path, jwt_secret: str, host_workers: int = 1, redis_url: str | None = None) -> Server:
    """Start ``target`` ("bare", "host" or "node") on a fresh port, logging to ``directory``."""
    port = free_port()
    config = write_config(directory, port, host_workers if target == "host" else 1, redis_url if target == "host" else None)
    if target == "host":
        args = [str(BIN / "tkr-host"), "serve", "--config", str(config)]
    elif target == "bare":
        args = [sys.executable, str(BENCH_DIR / "bare_server.py"), "--config", str(config)]
    elif target == "node":
        args = ["node", str(BENCH_DIR / "node" / "server.js"), "--port", str(port)]
    else:
        raise ValueError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    # The user's TKR_* overrides would make the run depend on the shell it was started from.
    env = {key: value for key, value in os.environ.items() if not key.startswith("TKR_")}
    env["TKR_JWT_SECRET"] = jwt_secret
    log_path = directory / f"{target}.log"
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=directory, env=env)
    return Server(target=target, url=f"http://127.0.0.1:{port}", process=process, log_path=log_path, config_text=config.read_text())


async def wait_ready(server: Server) -> None:
    """Until the server answers its readiness route (``/readyz`` or ``/healthz``)."""
    path = "/readyz" if server.target == "host" else "/healthz"
    deadline = time.monotonic() + READY_TIMEOUT_S
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.target} exited with {server.process.returncode}:\n{server.log_tail()}")
            try:
                async with http.get(server.url + path) as response:
                    if response.status == 200:
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.target} was not ready within {READY_TIMEOUT_S:.0f} s:\n{server.log_tail()}")


# --- /proc readings ---------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB (``VmRSS``), or None where /proc has none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a host with workers is a parent and its forks)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def tree_cpu_seconds(pid: int) -> float | None:
    """:func:`cpu_seconds` of ``pid`` and its descendants, summed."""
    values = [cpu_seconds(p) for p in process_tree(pid)]
    return sum(v for v in values if v is not None) if any(v is not None for v in values) else None


def tree_rss_kib(pid: int) -> int | None:
    """:func:`rss_kib` of ``pid`` and its descendants, summed."""
    values = [rss_kib(p) for p in process_tree(pid)]
    return sum(v for v in values if v is not None) if any(v is not None for v in values) else None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` (all its threads) in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # The command name may hold spaces; the fields after it are fixed.
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def machine_busy_seconds() -> float | None:
    """CPU time all CPUs have spent not idle since boot (``/proc/stat``), in seconds.

    Its growth during the load, less the server's and the workers' own, is what
    other processes took: the noise of a shared machine.
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
