"""`make mutants`: mutmut over the modules of `modules.txt`, each against its own tests.

Why mutmut 2.x, in a scratch copy: mutmut 2 mutates the source file in place and
runs a plain command per mutant, so it works with this repository's layout (the
host, the SDK and eleven plugins, each an editable install). mutmut 3 instead
rewrites every function into a trampoline under `mutants/` and expects the tests to
import from there; the editable installs resolve `tkr_host` and each `tkr_<plugin>`
to the work tree, and pluggy reads hook implementations by their signature. Running
mutmut 2 in place on the work tree would leave a mutant behind if the run is killed,
so each module is mutated in a copy of the committed tree under `MUTANTS_DIR` (default
`/tmp/tkr-mutants`), imported ahead of the editable installs through `PYTHONPATH`
(their finders come after the path on `sys.meta_path`), with the work tree's venv.

The report goes to `mutants/report.md` (git-ignored): the score per module and the
diff of every surviving mutant. `make mutants MUTANTS="tkr_host/errors.py"` runs
only the modules named (paths as in `modules.txt`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = Path(__file__).with_name("modules.txt")


@dataclass
class Module:
    path: str
    tests: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    survivors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Mutants whose own run stalled too (left untested).
    restarts: int = 0
    note: str = ""

    @property
    def score(self) -> str:
        # mutmut 2's "suspicious" is a mutant the tests killed, slowly; a timeout is a mutant that
        # hung the tests (and pytest-timeout failed them). Both count as caught.
        killed = sum(self.counts.get(status, 0) for status in ("killed", "suspicious", "timeout"))
        total = sum(self.counts.values())
        return f"{100 * killed / total:.0f} %" if total else "-"


def read_modules() -> list[Module]:
    modules = []
    for line in MODULES.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            path, *tests = line.split()
            modules.append(Module(path, tests))
    return modules


def copy_tree(target: Path) -> None:
    """The committed tree (HEAD), not the working files: a bug planted by hand for a
    moment while a run starts must not end up in the copy."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)


def import_roots(tree: Path) -> str:
    """The copy's packages ahead of the editable installs: the host, the SDK, every plugin."""
    roots = [tree, tree / "clients" / "python", *sorted(p for p in (tree / "plugins").iterdir() if p.is_dir())]
    return os.pathsep.join(str(root) for root in roots)


def progress(tree: Path) -> list[tuple[str, str, int]] | None:
    """What mutmut's cache holds: (status, hash of the tests it was tested against, count).
    A mutant tested (for the first time, or again because the tests changed) changes it."""
    try:
        with sqlite3.connect(f"file:{tree / '.mutmut-cache'}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("select status, tested_against_hash, count(*) from Mutant group by 1, 2 order by 1, 2").fetchall()
            return [(str(status), str(tests), int(count)) for status, tests, count in rows]
    except sqlite3.Error:
        return None


def untested_ids(tree: Path) -> list[int]:
    with sqlite3.connect(f"file:{tree / '.mutmut-cache'}?mode=ro", uri=True, timeout=5) as db:
        return [int(row[0]) for row in db.execute("select id from Mutant where status = 'untested' order by id")]


def run_watched(command: list[str], tree: Path, env: dict[str, str], stall_s: float, restore: Callable[[], object]) -> bool:
    """Run mutmut; True when it ended by itself, False when it was stopped after making no
    progress (no mutant finished) for ``stall_s`` seconds."""
    # mutmut's own output, a dying worker's traceback included, goes to mutmut.log in the copy.
    with (tree / "mutmut.log").open("ab") as log:
        process = subprocess.Popen(command, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    last, moved = progress(tree), time.monotonic()
    while True:
        try:
            process.wait(timeout=10)
            return True
        except subprocess.TimeoutExpired:
            pass
        now = progress(tree)
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall_s:
            os.killpg(process.pid, signal.SIGKILL)  # mutmut and its workers, never anything else
            process.wait()
            restore()
            return False


def run_module(module: Module, scratch: Path, python: Path, stall_s: float, resume: bool, ids: list[int]) -> None:
    tree = scratch / re.sub(r"[^A-Za-z0-9]+", "_", module.path)
    if not (resume and (tree / ".mutmut-cache").exists()):
        copy_tree(tree)
    # The module as committed: a mutmut run killed mid-mutant leaves its mutant in the file,
    # and every later mutant would be tested on top of it. Put back after every kill.
    pristine = tree / ".pristine"
    if not pristine.exists():
        shutil.copyfile(tree / module.path, pristine)
    shutil.copyfile(pristine, tree / module.path)

    def restore() -> object:
        return shutil.copyfile(pristine, tree / module.path)
    env = {**os.environ, "PYTHONPATH": import_roots(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    # -x: a mutant is killed by its first failing test; no randomly: the same order per mutant;
    # a timeout per test, so that a mutant that hangs (an endless loop) fails instead.
    # pytest_or_1.py: any failure, an import broken by the mutant included, kills it.
    runner = f"{python} tests/mutation/pytest_or_1.py -x -q -p no:randomly -p no:cacheprovider --timeout=60 " + " ".join(module.tests)
    mutmut = python.parent / "mutmut"
    started = time.monotonic()
    command = [str(mutmut), "run", "--paths-to-mutate", module.path, "--runner", runner, "--tests-dir", module.tests[0],
               "--simple-output", "--no-progress", "--CI"]
    if ids:
        # Only these mutants (an earlier report's survivors, say): mutmut numbers a module's
        # mutants in the order of the source, so a fresh copy of the same file gives the same ids.
        register = ("import sys; from mutmut import add_mutations_by_file; from mutmut.cache import update_line_numbers; "
                    "update_line_numbers(sys.argv[1]); add_mutations_by_file({}, sys.argv[1], [], None)")
        subprocess.run([str(python), "-c", register, module.path], cwd=tree, env=env, check=True)
        for mutant_id in ids:
            if not run_watched([command[0], "run", str(mutant_id), *command[2:]], tree, env, stall_s, restore):
                module.restarts += 1
        module.note = f"only mutants {', '.join(map(str, ids))} were run; the others are counted as untested"
    elif not run_watched(command, tree, env, stall_s, restore):
        # mutmut 2 can hang for good: its worker process is gone and the main process waits on
        # its queue, and a new `mutmut run` of the whole module hangs again at once. So the
        # mutants left are run one by one (`mutmut run <id>`, which has no such queue); one
        # that still stalls is left untested, and the report says so.
        print(f"  no progress for {stall_s:.0f} s: the mutants left are run one by one", flush=True)
        for mutant_id in untested_ids(tree):
            if not run_watched([command[0], "run", str(mutant_id), *command[2:]], tree, env, stall_s, restore):
                module.restarts += 1
    module.seconds = time.monotonic() - started
    results = subprocess.run([str(mutmut), "result-ids", "survived"], cwd=tree, env=env, capture_output=True, text=True)
    survived = results.stdout.split()
    for status in ("killed", "survived", "timeout", "suspicious", "untested", "skipped"):
        found = subprocess.run([str(mutmut), "result-ids", status], cwd=tree, env=env, capture_output=True, text=True).stdout.split()
        module.counts[status] = len(found)
    if not sum(module.counts.values()):
        module.note = "no result: the unmutated tests did not pass in the copy (run the runner there to see why)"
    for mutant in survived:
        shown = subprocess.run([str(mutmut), "show", mutant], cwd=tree, env=env, capture_output=True, text=True).stdout
        module.survivors.append(f"mutant {mutant}:\n{shown.strip()}")


def write_report(modules: list[Module], report: Path) -> None:
    lines = ["# Mutants", "", "| module | tests | killed | survived | timeout | suspicious | score | minutes |", "|---|---|---|---|---|---|---|---|"]
    for module in modules:
        if not module.counts:
            lines.append(f"| `{module.path}` | {' '.join(module.tests)} | not run | | | | | |")
            continue
        c = module.counts
        lines.append(f"| `{module.path}` | {' '.join(module.tests)} | {c['killed']} | {c['survived']} | {c['timeout']} | {c['suspicious']} "
                     f"| {module.score} | {module.seconds / 60:.1f} |")
    for module in modules:
        if module.note:
            lines += ["", f"`{module.path}`: {module.note}"]
        if module.survivors:
            lines += ["", f"## Survivors of `{module.path}`", "", "```diff", *module.survivors, "```"]
    report.parent.mkdir(exist_ok=True)
    report.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="module paths from modules.txt (default: all)")
    parser.add_argument("--scratch", default=os.environ.get("MUTANTS_DIR", "/tmp/tkr-mutants"))
    parser.add_argument("--report", default=str(REPO / "mutants" / "report.md"))
    # Longer than the slowest mutant: -x and a 60 s timeout per test bound one mutant's run.
    parser.add_argument("--stall", type=float, default=300.0, help="restart mutmut after this many seconds without progress")
    parser.add_argument("--ids", type=lambda text: [int(i) for i in text.split(",")], default=[],
                        help="run only these mutants of the (one) module named, e.g. an earlier run's survivors: 6,7,8")
    parser.add_argument("--resume", action="store_true", help="keep an existing copy and its cache: test only what is left")
    args = parser.parse_args()
    modules = read_modules()
    unknown = set(args.only) - {m.path for m in modules}
    if unknown:
        parser.error(f"not in {MODULES.name}: {', '.join(sorted(unknown))}")
    chosen = [m for m in modules if not args.only or m.path in args.only]
    python = Path(sys.executable)
    scratch = Path(args.scratch)
    for module in chosen:
        print(f"mutants: {module.path} against {' '.join(module.tests)}", flush=True)
        run_module(module, scratch, python, args.stall, args.resume, args.ids)
        print(f"  {module.counts} score {module.score} in {module.seconds / 60:.1f} min, {module.restarts} stalled", flush=True)
        write_report(chosen, Path(args.report))  # after each module: a run cut short keeps what it finished
    return 0


if __name__ == "__main__":
    sys.exit(main())
