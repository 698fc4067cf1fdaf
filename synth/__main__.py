"""Offline synth: evaluate the stacks under mocks and report their resources.

    python -m synth                          both stacks: resources, policy findings and monthly cost
    python -m synth --tables                 and every resource, grouped by component
    python -m synth --stack primary --format json
    python -m synth --diff                   what differs between primary and backup
    python -m synth --check                  exit 1 when a mandatory policy is violated

Exit 0 when the program evaluates, 2 for a settings error (message on stderr), 1 with --check and a
mandatory policy violated.
"""

from __future__ import annotations

from regions import console

if __name__ == "__main__":  # before the imports below; the installed commands: regions/commands.py
    console.stop_at_once("synth")

import json
import subprocess
import sys
from pathlib import Path

from regions.settings import SettingsError, load_settings
from regions.stackfile import StackFileError, read_stack_file, stack_file_name
from synth.cost import estimate, standby_share, usage_of
from synth.cost import table as cost_table
from synth.engine import PROGRAM, REPO, evaluate
from synth.findings import evaluate_policies, mandatory
from synth.graph import FORMATS as GRAPH_FORMATS
from synth.graph import GraphError
from synth.graph import write as write_graph
from synth.report import diff, diff_text, findings_text, summary_line, table, to_json

DEFAULT_STACKS = ("primary", "backup")


def cost_text(costs: dict, stacks: list[str], evaluations: dict | None = None) -> str:
    priced = [s for s in stacks if costs[s] is not None]
    parts = [cost_table(costs[s], s) for s in priced]
    if {"primary", "backup"} <= set(priced):
        # The standby is whichever stack's region is not the activeRegion: the primary's after a failover.
        active = "primary"
        if evaluations and evaluations["backup"].outputs.get("active_region") == evaluations["backup"].region:
            active = "backup"
        standby = "backup" if active == "primary" else "primary"
        parts.append(standby_share(costs[active], costs[standby], active, standby))
    return "\n\n".join(parts)


def _fail(message: str) -> int:
    print(f"synth: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = console.Parser(prog="python -m synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", action="append",
                        help="stack to evaluate (repeatable; default: primary and backup)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="table: for people; json: the contract in docs/contracts.md (default: table)")
    parser.add_argument("--tables", action="store_true",
                        help="also print every resource with its inputs, grouped by component (hundreds of lines)")
    parser.add_argument("--diff", action="store_true", help="show what differs between primary and backup")
    parser.add_argument("--region-renames", action="store_true",
                        help="with --diff, also list inputs that differ only by the region's name")
    parser.add_argument("--project-dir", type=Path, default=REPO,
                        help="directory holding Pulumi.yaml and the stack files (default: this repository)")
    parser.add_argument("--program", type=Path, default=PROGRAM,
                        help="the Pulumi program to evaluate (default: this repository's __main__.py)")
    parser.add_argument("--cost", action="store_true", help="print the monthly cost estimate only")
    parser.add_argument("--graph", type=Path, metavar="FILE",
                        help="write the architecture graph of both stacks (.dot, .mmd, .md or .svg)")
    parser.add_argument("--graph-detail", choices=("components", "resources"),
                        help="default: resources for .dot, components for .svg, .mmd and .md")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a mandatory policy is violated, and print the violations")
    args = parser.parse_args(argv)
    project_dir, program = args.project_dir.resolve(), args.program.resolve()
    stacks = args.stack or list(DEFAULT_STACKS)
    if args.diff and len(stacks) != 2:
        parser.error("--diff compares two stacks: give none (primary and backup) or two --stack")
    # Checked before the evaluation, which takes seconds: a typo is reported at once, on one line.
    if not program.is_file():
        return _fail(f"--program {args.program}: no such file")
    if not project_dir.is_dir():
        return _fail(f"--project-dir {args.project_dir}: no such directory")
    if args.graph is not None and not args.graph.resolve().parent.is_dir():
        return _fail(f"--graph {args.graph}: the directory {args.graph.parent} does not exist")
    if args.graph is not None and args.graph.suffix not in GRAPH_FORMATS:
        return _fail(f"--graph {args.graph}: the graph is written as {', '.join(GRAPH_FORMATS)}")

    cache: dict = {}
    try:
        # Every stack file read and validated before the evaluations, which take seconds each: a mistake in the
        # backup's file is named at once, not after the primary's evaluation.
        for stack in stacks:
            if not (project_dir / stack_file_name(stack)).exists():
                raise StackFileError(f"{stack_file_name(stack)}: no such stack file in {project_dir}")
            raw, secret_keys = read_stack_file(project_dir / stack_file_name(stack))
            if program == PROGRAM:
                load_settings(raw, stack, project_dir, secret_keys=secret_keys)
        for stack in stacks:
            evaluate(stack, project_dir, cache, program)
    except (SettingsError, StackFileError) as exc:
        print(f"synth: {exc}", file=sys.stderr)
        return 2
    if args.graph:
        # One drawing of both stacks, grouped by region, with the links between them: the peer of a single
        # --stack is evaluated from the same project and program.
        try:
            for stack in DEFAULT_STACKS:
                if stack not in cache and (project_dir / stack_file_name(stack)).is_file():
                    evaluate(stack, project_dir, cache, program)
            drawn = [cache[stack] for stack in DEFAULT_STACKS if stack in cache]
            write_graph(drawn, args.graph, args.graph_detail)
        except (SettingsError, StackFileError, GraphError) as exc:
            print(f"synth: {exc}", file=sys.stderr)
            return 2
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"synth: --graph {args.graph}: cannot be written ({getattr(exc, 'strerror', None) or exc})",
                  file=sys.stderr)
            return 2
        print(f"synth: wrote {args.graph}", file=sys.stderr)
        return 0
    findings = {stack: evaluate_policies(cache[stack]) for stack in stacks}
    # Usage settings exist only for this project's program; another program gets no estimate.
    costs = {stack: estimate(cache[stack], usage_of(project_dir, stack)) if program == PROGRAM else None
             for stack in stacks}

    if args.diff:
        result = diff(cache[stacks[0]], cache[stacks[1]], args.region_renames)
        print(json.dumps(result, indent=2, default=str) if args.format == "json" else diff_text(result))
    elif args.format == "json" and args.cost:
        # Only the cost objects, as `--cost` prints only the cost table.
        print(json.dumps(costs[stacks[0]] if len(stacks) == 1 else costs, indent=2, default=str))
    elif args.format == "json":
        documents = {s: to_json(cache[s], cost=costs[s], findings=findings[s]) for s in stacks}
        only = documents[stacks[0]] if len(stacks) == 1 else documents
        print(json.dumps(only, indent=2, default=str))
    elif args.cost:
        print(cost_text(costs, stacks, cache))
    else:
        summary = (table(cache[s]) if args.tables else summary_line(cache[s]) for s in stacks)
        print("\n\n".join(f"{text}\n{findings_text(findings[s])}" for text, s in zip(summary, stacks, strict=True)))
        print("\n" + cost_text(costs, stacks, cache))
    violations = [(s, f) for s in stacks for f in mandatory(findings[s])]
    if args.check and violations:
        for stack, finding in violations:
            print(f"synth: {stack}: mandatory policy {finding['policy']} violated by {finding['resource']}: "
                  f"{finding['message']}", file=sys.stderr)
        return 1
    return 0


def entry() -> None:
    """The console script (pyproject.toml)."""
    console.run(main, "synth", stateless=True)


if __name__ == "__main__":
    entry()
