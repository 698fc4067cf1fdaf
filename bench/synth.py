"""How long the offline synth of both stacks takes: in-process and as separate processes.

    python bench/synth.py [--runs 5]

In-process: evaluate primary then backup (fed primary's outputs) in one warm interpreter.
Processes: `python -m synth --stack primary --format json` and the same for backup, one after the
other (as the pre-stop hook runs them) and side by side; the backup process evaluates primary too,
for its stack reference.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def in_process(runs: int) -> list[float]:
    from synth.engine import evaluate

    logging.disable(logging.WARNING)  # the program's warnings, once per evaluation

    evaluate("backup", REPO)  # warm-up: imports
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        evaluate("backup", REPO, {})
        times.append(time.perf_counter() - start)
    return times


def as_processes(runs: int, commands: list[list[str]], parallel: bool = False) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        started = []
        for command in commands:
            process = subprocess.Popen([sys.executable, "-m", "synth", *command], cwd=REPO,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            started.append(process)
            if not parallel:
                process.wait()
        if any(process.wait() != 0 for process in started):
            raise SystemExit(f"synth failed: {commands}")
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    per_stack = [["--stack", "primary", "--format", "json"], ["--stack", "backup", "--format", "json"]]
    measurements = [
        ("both stacks, in-process (warm)", lambda: in_process(runs)),
        ("both stacks, one process (python -m synth)", lambda: as_processes(runs, [["--format", "json"]])),
        ("both stacks, two processes one after the other", lambda: as_processes(runs, per_stack)),
        ("both stacks, two processes side by side (2 cores)", lambda: as_processes(runs, per_stack, parallel=True)),
    ]
    rows = []
    for number, (label, measure) in enumerate(measurements, 1):
        # About a minute in all: say what runs.
        print(f"[{number}/{len(measurements)}] {label}, {runs} runs ...", file=sys.stderr, flush=True)
        rows.append((label, measure()))
    print(f"synth timings, median of {runs} (min-max), {sys.platform}, python {sys.version.split()[0]}")
    for label, times in rows:
        print(f"  {label:<62} {statistics.median(times):6.2f} s  ({min(times):.2f}-{max(times):.2f})")


if __name__ == "__main__":
    main()
