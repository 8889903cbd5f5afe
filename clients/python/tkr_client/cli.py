"""``tkr-agent run FILE_OR_MODULE:ATTR --url URL``: run an agent; the credential is in ``TKR_TOKEN``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from pathlib import Path

from tkr_client.agent import Agent
from tkr_client.errors import TkrError


def load_agent(target: str) -> Agent:
    """The :class:`Agent` named by ``path/to/file.py:attr`` or ``package.module:attr``.

    ``attr`` may also be a callable that returns the agent.
    """
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise SystemExit(f"tkr-agent: {target!r} is not FILE_OR_MODULE:ATTR (for example examples/echo_agent.py:agent)")
    if where.endswith(".py") or os.sep in where or Path(where).is_file():
        path = Path(where).resolve()
        if not path.is_file():
            raise SystemExit(f"tkr-agent: no file {where}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"tkr-agent: cannot load {where}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        sys.path.insert(0, str(path.parent))
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    found = getattr(module, attr, None)
    if found is None:
        raise SystemExit(f"tkr-agent: {where} has no attribute {attr!r}")
    if not isinstance(found, Agent) and callable(found):
        found = found()
    if not isinstance(found, Agent):
        raise SystemExit(f"tkr-agent: {target} is a {type(found).__name__}, not a tkr_client.Agent")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tkr-agent", description="Run a tkr agent against a tkr-host.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an agent until SIGTERM or Ctrl-C")
    run.add_argument("target", help="FILE_OR_MODULE:ATTR, e.g. examples/echo_agent.py:agent")
    run.add_argument("--url", default=os.environ.get("TKR_URL"), help="the host's URL, or several nodes' URLs comma-separated for failover (default: $TKR_URL)")
    run.add_argument("--concurrency", type=int, default=None, help="handlers running at once (default: the agent's own)")
    run.add_argument("--shutdown-timeout", type=float, default=None, help="seconds running handlers get on SIGTERM")
    run.add_argument("--log-level", default=os.environ.get("TKR_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = os.environ.get("TKR_TOKEN")
    if not args.url:
        parser.error("--url is required (or set TKR_URL)")
    if not token:
        parser.error("the credential goes in the TKR_TOKEN environment variable")
    agent = load_agent(args.target)
    agent.configure(url=args.url, token=token)
    if args.concurrency is not None:
        agent.max_concurrency = args.concurrency
    if args.shutdown_timeout is not None:
        agent.shutdown_timeout = args.shutdown_timeout
    try:
        agent.run()
    except TkrError as error:
        print(f"tkr-agent: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
