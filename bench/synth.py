"""How long the offline synth of both stacks takes: in-process and as separate processes.

    python bench/synth.py [--runs 5]

In-process: evaluate primary then backup (fed primary's outputs) in one warm interpreter.
Processes: `python -m synth --stack primary --format json` then the same for backup, as the
pre-stop hook and a CI job run them; the backup process evaluates primary too, for its reference.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def in_process(runs: int) -> list[float]:
    from synth.engine import evaluate

    evaluate("backup", REPO)  # warm-up: imports
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        evaluate("backup", REPO, {})
        times.append(time.perf_counter() - start)
    return times


def as_processes(runs: int, commands: list[list[str]]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for command in commands:
            subprocess.run([sys.executable, "-m", "synth", *command], cwd=REPO, check=True,
                           stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    rows = [
        ("both stacks, in-process (warm)", in_process(runs)),
        ("both stacks, one process (python -m synth)", as_processes(runs, [["--format", "json"]])),
        ("both stacks, two processes (--stack primary; --stack backup)",
         as_processes(runs, [["--stack", "primary", "--format", "json"], ["--stack", "backup", "--format", "json"]])),
    ]
    print(f"synth timings, median of {runs} (min-max), {sys.platform}, python {sys.version.split()[0]}")
    for label, times in rows:
        print(f"  {label:<62} {statistics.median(times):6.2f} s  ({min(times):.2f}-{max(times):.2f})")


if __name__ == "__main__":
    main()
