"""The report: medians over rounds, ratios to each baseline, and the table printed at the end."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

#: (key, label, digits) of the table's rows, in order. A key is ``<client kind>.<figure>``
#: for the figures measured with each client kind, or a plain figure of the host alone.
FIGURES = [
    ("deliveries_per_s", "deliveries/s", 0),
    ("sends_per_s", "sends/s", 0),
    ("ack_p50_ms", "ack p50 (ms)", 1),
    ("ack_p99_ms", "ack p99 (ms)", 1),
    ("lost", "lost messages", 0),
    ("failed_sends", "failed or refused sends", 0),
    ("server_cpu_ms_per_send", "server CPU per send (ms)", 3),
    ("server_cpu_ms_per_delivery", "server CPU per delivery (ms)", 4),
    ("server_cpu_percent", "server CPU (% of one core)", 0),
    ("load_cpu_percent", "load generator CPU (% of one core)", 0),
    ("other_cpu_percent", "other processes' CPU (% of one core)", 0),
    ("idle_kib_per_connection", "RSS per idle connection (KiB)", 1),
]
HOST_ONLY = [
    ("replay_server_ms", "replay of N missed messages, server side (ms)", 1),
    ("replay_round_trip_ms", "replay of N missed messages, round trip (ms)", 1),
    ("chunk_rate_per_s", "streamed chunks delivered/s", 0),
    ("chunk_p50_ms", "chunk latency p50 (ms)", 1),
    ("chunk_p99_ms", "chunk latency p99 (ms)", 1),
    ("chunks_lost", "streamed chunks lost", 0),
]
#: Figures where a higher value is better (a ratio above 1 is the host ahead).
HIGHER_IS_BETTER = {"deliveries_per_s", "sends_per_s", "chunk_rate_per_s"}


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0–100)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def medians(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per target, the median of each numeric figure over the rounds that measured it."""
    out: dict[str, dict[str, Any]] = {}
    for results in rounds:
        for target, figures in results.items():
            for key, value in figures.items():
                out.setdefault(target, {}).setdefault(key, []).append(value)
    for figures in out.values():
        for key, values in list(figures.items()):
            numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            if numbers and len(numbers) == len(values):
                figures[key] = statistics.median(numbers)
            else:
                figures[key] = values[-1]  # text (compression negotiated), the same each round
    return out


def ratios(medians_: dict[str, dict[str, Any]], baseline: str) -> dict[str, float | None]:
    """host ÷ ``baseline`` for every numeric figure both have."""
    host, base = medians_.get("host"), medians_.get(baseline)
    if not host or not base:
        return {}
    out: dict[str, float | None] = {}
    for key, h in host.items():
        b = base.get(key)
        if isinstance(h, int | float) and isinstance(b, int | float) and not isinstance(h, bool):
            out[key] = h / b if b else None
    return out


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def rows(kinds: Sequence[str]) -> list[tuple[str, str, int]]:
    """(key, label, digits) of every row, the client kinds' first."""
    out = [(f"{kind}.{key}", f"{label} [{kind}]", digits) for kind in kinds for key, label, digits in FIGURES]
    out += [(f"{kind}.compression", f"compression negotiated [{kind}]", 0) for kind in kinds]
    return out + HOST_ONLY


def table(medians_: dict[str, dict[str, Any]], kinds: Sequence[str], by_baseline: dict[str, dict[str, float | None]]) -> str:
    targets = list(medians_)
    header = ["figure (median of rounds)", *targets, *(f"host/{b}" for b in by_baseline)]
    lines = [header]
    for key, label, digits in rows(kinds):
        if not any(key in medians_[t] for t in targets):
            continue
        cells = [label, *(fmt(medians_[t].get(key), digits) for t in targets)]
        cells += [fmt(r.get(key), 2) for r in by_baseline.values()]
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line)) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)
