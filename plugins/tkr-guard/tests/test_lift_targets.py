"""``tkr-host bans lift`` with a target it cannot read: the lines the README shows, status 2.

The target is read before any backend is asked (README, "Managing bans"), so no host and no
Redis run here: a real ``tkr-host`` process, as an operator runs it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

TKR_HOST = Path(sys.executable).with_name("tkr-host")
#: README, "Managing bans": an unreadable target is one line on stderr and status 2.
USAGE_ERROR = 2


async def bans(*args: str) -> tuple[int, str, str]:
    """``tkr-host bans`` as a process (``--import-mode=importlib``: test_commands' helper cannot be imported)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TKR_")}
    process = await asyncio.create_subprocess_exec(str(TKR_HOST), "bans", *args, env=environment,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("target", "line"),
    [
        ("ip:mallory", "tkr-host bans: 'mallory' is not an IP address"),
        (" ", "tkr-host bans: a ban target is an address or a principal id; got an empty string"),
    ],
)
async def test_an_unreadable_target_says_why_in_one_line(target: str, line: str) -> None:
    status, out, err = await bans("lift", target, "--url", "http://127.0.0.1:1", "--token", "t")
    assert (status, out) == (USAGE_ERROR, "")
    assert err.splitlines() == [line]
