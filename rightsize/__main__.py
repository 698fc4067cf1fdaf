"""Right-size one stack from what it measurably uses: CloudWatch metrics -> reviewed changes to the stack file,
with the monthly saving from synth's price table.

    python -m rightsize --outputs primary.json              recommendations for the stack those outputs are of
    python -m rightsize --stack primary --format json       outputs read with the Pulumi CLI
    python -m rightsize --outputs primary.json --write      apply them to the stack files (comments and order kept)

The active region's metrics size the shared settings of both stack files (the standby follows); a standby's own
metrics size nothing. The rules and thresholds: docs/rightsize.md. Exit 0 with or without recommendations, 2 for
bad input (one line naming the file, output or option), 3 when an AWS call fails (naming the call).
"""

from __future__ import annotations

from regions import console

if __name__ == "__main__":  # before the imports below; the installed commands: regions/commands.py
    console.stop_at_once("rightsize")

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from drills import reconcile
from drills.outputs import InputError, read_document, stack_document
from regions.settings import SettingsError
from regions.stackfile import StackFileError
from rightsize import inputs, observe, report, rules, trial
from rightsize.metrics import window


def _progress(message: str) -> None:
    print(f"rightsize: {message}", file=sys.stderr, flush=True)


def _traffic(t: rules.Targets, series: dict, days: int) -> dict | None:
    requests = series.get(rules.traffic_metric(t))
    if not requests or not requests.points:
        return None
    # An ALB sends no RequestCount for a period without requests: per day of the window, not of the datapoints.
    total = sum(requests.values)
    return {"requests_per_day": round(total / days),
            "evidence": requests.evidence("sum", total)}


def run(args: argparse.Namespace) -> int:
    limits = inputs.thresholds(args.threshold)
    period = inputs.period(args.days, args.period)
    if args.days < limits["minDays"]:
        raise InputError(f"--days {args.days} is fewer than the {limits['minDays']:g} days (threshold minDays) a "
                         "resource needs: everything would be insufficient data")
    if args.outputs is not None:
        document, source = read_document(args.outputs), str(args.outputs)
    else:
        document, source = stack_document(args.stack, "--outputs FILE", show_secrets=False), f"stack {args.stack}"
    targets = inputs.targets(document, source)
    stacks = inputs.stacks(inputs.stack_file(args.stack_file, args.stack, targets.role, Path.cwd()), targets, source)
    settings = stacks.settings
    standby = settings.services.sized_by_peer
    start, end = window(datetime.now(UTC), args.days, period)
    wanted = rules.wanted(targets, standby, tuple(s.name for s in settings.services.services))
    if wanted:
        observe.check_credentials()
        _progress(f"reading {len(wanted)} CloudWatch series of {stacks.file} in {targets.region} ({args.days} days, "
                  f"{period}-second periods)")
    series = observe.series(targets, wanted, start, end, period)
    subject = rules.Subject(settings, stacks.file, stacks.peer_file, stacks.peer, targets, series, limits,
                            None if standby else observe.database(targets))
    findings = rules.evaluate(subject)
    _progress(f"pricing {' and '.join(stacks.files)} before and after (the synth evaluation, a few seconds)")
    costs = trial.settle(findings, stacks.project_dir, stacks.files)
    written = []
    if args.write:
        written = reconcile.write(stacks.project_dir, [c.setting() for f in findings for c in f.changes])
        trial.validate(stacks.project_dir, stacks.files)
    doc = report.document(stacks=stacks, window=(start, end), days=args.days, period=period, thresholds=limits,
                          findings=findings, costs=costs, traffic=_traffic(targets, series, args.days),
                          written=bool(written))
    print(json.dumps(doc, indent=2, default=str) if args.format == "json" else report.table(doc))
    for line in written:
        _progress(f"wrote {line}")
    for line in report.waiting(findings, stacks) if written else []:
        _progress(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = console.Parser(prog="python -m rightsize", description=__doc__.split("\n\n")[0],
                                     epilog="thresholds (--threshold NAME=VALUE): " + "; ".join(
                                         f"{name} {t.default:g}: {t.meaning}" for name, t in rules.THRESHOLDS.items()))
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--outputs", type=Path, metavar="FILE", help="the stack's `pulumi stack output --json`")
    given.add_argument("--stack", metavar="NAME", help="read the outputs with the Pulumi CLI (pulumi stack output)")
    parser.add_argument("--stack-file", type=Path, metavar="FILE",
                        help="the stack file (default: Pulumi.<stack>.yaml, or the stack file of the outputs' role, "
                             "beside the nearest Pulumi.yaml)")
    parser.add_argument("--days", type=int, default=14, help="how many days of metrics to read (default 14)")
    parser.add_argument("--period", type=int, metavar="SECONDS",
                        help="CloudWatch period the statistics are taken over (default 300; 3600 beyond 63 days)")
    parser.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                        help="override a rule threshold (repeatable; names below)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="table: for people; json: the contract in docs/contracts.md")
    parser.add_argument("--write", action="store_true",
                        help="apply the recommendations to the stack files (the standby's follows the active's); "
                             "a class change the writer queues for its maintenance window is said, with the command "
                             "that applies it at once")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (InputError, SettingsError, StackFileError) as exc:
        print(f"rightsize: {exc}", file=sys.stderr)
        return 2
    except observe.AwsError as exc:
        print(f"rightsize: {exc}", file=sys.stderr)
        return 3


def entry() -> None:
    """The console script (pyproject.toml)."""
    console.run(main, "rightsize")


if __name__ == "__main__":
    entry()
