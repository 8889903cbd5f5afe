"""What the docs promise, read from the docs: every event with its error codes
(docs/protocol.md) and every configuration key (docs/configuration.md).

An event's documented codes are the codes named in its own table row, in its own
paragraph (``- **`event`**: ...``, or the ``/tasks`` paragraph), and the host codes
whose "when" column names the event. Every host code must also have at least one
test of its own, as the pair ``("*", code)``.
"""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
CODE = re.compile(r"`((?:auth|permission|validation|rate_limit|not_found|conflict|agent|store|protocol|internal)\.[a-z_]+)`")
EVENT = re.compile(r"`([a-z]+:[a-z]+)`")
SECTION = re.compile(r"^(#+) (.*)$")


def sections(text: str) -> list[tuple[str, list[str]]]:
    """(heading, lines) of every section, the lines up to the next heading."""
    found: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        match = SECTION.match(line)
        if match:
            found.append((match.group(2), []))
        else:
            found[-1][1].append(line)
    return found


def table_rows(lines: list[str]) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines
            if line.strip().startswith("|") and not line.strip().startswith("|---")]


def host_codes(text: str) -> dict[str, str]:
    """The host's error codes table: code -> its "when" text."""
    for heading, lines in sections(text):
        if heading == "Error codes of the host":
            return {m.group(1): row[1] for row in table_rows(lines) if (m := CODE.fullmatch(row[0]))}
    raise AssertionError("docs/protocol.md has no 'Error codes of the host' section")


def client_events(text: str) -> dict[str, str]:
    """Every client -> server event: event -> the doc text about it (row and paragraph)."""
    events: dict[str, str] = {}
    for heading, lines in sections(text):
        if heading in ("`/chat`: client → server", "`/agents` (kind `agent`)"):
            for row in table_rows(lines):
                if (m := EVENT.fullmatch(row[0])):
                    events[m.group(1)] = " | ".join(row)
            body = "\n".join(lines)
            for paragraph in re.split(r"\n(?=- )", body):
                if (m := re.match(r"- \*\*`([a-z]+:[a-z]+)`\*\*", paragraph)) and m.group(1) in events:
                    events[m.group(1)] += "\n" + paragraph
        if heading == "`/tasks`":
            body = "\n".join(lines)
            paragraph = next(p for p in re.split(r"\n(?=- )", body) if "client → server" in p)
            for name in re.findall(r"`(task:[a-z]+) \{", paragraph):
                events[name] = paragraph
    return events


def event_codes() -> set[tuple[str, str]]:
    """Every (event, code) the docs promise, plus ("*", code) for every host code."""
    text = (DOCS / "protocol.md").read_text()
    codes = host_codes(text)
    events = client_events(text)
    pairs = {("*", code) for code in codes}
    for event, about in events.items():
        pairs |= {(event, code) for code in CODE.findall(about)}
    for code, when in codes.items():
        pairs |= {(event, code) for event in EVENT.findall(when) if event in events}
    return pairs


def config_keys() -> set[str]:
    """Every key of docs/configuration.md's tables: ``hypercorn.bind``, ``host.history_limit``,
    ``plugins.guard.window_s``, ``plugins.auth_apikey.keys[].sha256``."""
    keys: set[str] = set()
    table = ""
    for heading, lines in sections((DOCS / "configuration.md").read_text()):
        if heading == "The top level: Hypercorn":
            table = "hypercorn"
        elif (m := re.fullmatch(r"`\[(host|plugins\.[a-z_]+)\]`", heading)):
            table = m.group(1)
        elif heading == "Each entry of `keys`":
            table = "plugins.auth_apikey.keys[]"
        else:
            continue
        rows = table_rows(lines)
        if not rows or rows[0][0] not in ("key", "field"):
            continue
        for row in rows[1:]:
            for name in re.findall(r"`([a-z0-9_]+)`", row[0]):
                keys.add(f"{table}.{name}")
    return keys
