"""Failover drills between the primary (us-east-1) and backup (us-west-2) stacks.

    python -m drills plan --scenario region-evacuation --primary-outputs p.json --backup-outputs b.json
    python -m drills preflight --primary-stack org/trading-platform/primary --backup-stack org/.../backup
    python -m drills run --scenario dns-failover ...                       (dry run: the plan)
    python -m drills run --scenario region-evacuation --execute --confirm us-west-2 ...
    python -m drills resume|abort|report --journal .drills/drill-ID.json
    python -m drills reconcile --journal .drills/drill-ID.json --project-dir . --write
    python -m drills failback plan|preflight|run|phase ...                 (back to us-east-1)

Exit codes: 0 done, 2 usage or input error, 3 preflight failed (nothing changed), 4 a step failed or
refused to go on (the journal says where; `resume` or `abort`), 5 aborted by a stop condition.
"""

from __future__ import annotations

from regions import console

if __name__ == "__main__":  # before the imports below; the installed commands: regions/commands.py
    console.stop_at_once("drills")

import argparse
import getpass
import json
import math
import secrets
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from drills import phases, reconcile, report, status
from drills.endpoints import parse_endpoints
from drills.heartbeat import TABLE as HEARTBEAT_TABLE
from drills.heartbeat import DatabaseError, Record, heartbeat_path
from drills.journal import RESUMABLE, Journal, iso, now, open_journals
from drills.outputs import InputError, StackOutputs, from_file, from_stack, parse
from drills.preflight import run_checks
from drills.retire import delete_retired
from drills.runner import ABORTED, execute, heartbeat_needed, promoted, rollback, start_heartbeat, writes_ended
from drills.scenarios import BUILDERS, PROMOTING, RETURNING, SCENARIOS, Context
from regions.sessions import AWS_ERRORS, have_credentials, new_session
from regions.stackfile import StackFileError, given_stack_file, stack_file_name

USAGE, PREFLIGHT_FAILED = 2, 3
# What `run` records and `resume` and `abort` reuse.
JOURNALED = ("hold", "probe_url", "probe_timeout", "probe_interval", "max_lag", "accept_data_loss", "wait_timeout",
             "stop_alarm", "promotion_keeps_source_link", "db_probe", "db_probe_interval", "db_ca_bundle",
             "replication_probe", "snapshot_replica")
# How far before the drill the replication probe's metrics are read: the writer's acknowledgements before it.
MEASURE_LEAD = 300


def say(text: str) -> None:
    print(text, flush=True)


def _inputs(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("stack outputs (either the Pulumi CLI's or files)")
    group.add_argument("--primary-stack", help="read `pulumi stack output` of this stack")
    group.add_argument("--backup-stack", help="read `pulumi stack output` of this stack")
    group.add_argument("--primary-outputs", type=Path, help="a JSON file of the primary stack's outputs")
    group.add_argument("--backup-outputs", type=Path, help="a JSON file of the backup stack's outputs")


def _lag_options(parser: argparse.ArgumentParser, max_lag: float | None, accept: bool | None) -> None:
    """Defaults for `run`; None on `resume`, where an option not given keeps the journal's."""
    parser.add_argument("--max-lag", "--max-replica-lag", dest="max_lag", type=_not_negative, default=max_lag,
                        help="seconds of ReplicaLag at most before promoting (--max-replica-lag: the former name); "
                             "a lag that keeps growing while the primary is out needs a higher value on resume")
    parser.add_argument("--accept-data-loss", action="store_true", default=accept,
                        help="promote even when CloudWatch has no ReplicaLag (the data loss is unknown); "
                             "recorded in the journal and the reports")


def _seconds(text: str, lowest: float, inclusive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of seconds, found {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"a finite number of seconds, found {text}")
    if value < lowest or (value == lowest and not inclusive):
        raise argparse.ArgumentTypeError(f"must be {'0 or more' if inclusive else 'more than 0'}, found {text}")
    return value


def _positive(text: str) -> float:
    return _seconds(text, 0, inclusive=False)


def _not_negative(text: str) -> float:
    return _seconds(text, 0, inclusive=True)


def _tuning(parser: argparse.ArgumentParser, heartbeats: bool = True) -> None:
    """The options that shape a drill; without `heartbeats` (a preflight) not the database probe's pace."""
    _lag_options(parser, 300, False)
    parser.add_argument("--journal-dir", type=Path, default=Path(".drills"),
                        help="where the drill's journal is written, and open journals are looked for")
    measuring = parser.add_argument_group("measuring the data loss (region-evacuation, failback)")
    measuring.add_argument("--replication-probe", action=argparse.BooleanOptionalAction, default=True,
                           help="measure the lag and the RPO from the replication probe's metrics (stack output "
                                "replication_probe), read from CloudWatch in the region users go to: no connection "
                                "to a database, and it works with the writer's region down (default: on)")
    measuring.add_argument("--snapshot-replica", action="store_true",
                           help="region-evacuation: take a manual snapshot of the replica before promoting it (off "
                                "by default: it sits on the RTO path, and the replica's automated backups cover the "
                                "moment before the promotion; the preflight fails when the replica has none and "
                                "this is not given). A failback always takes one, before users move")
    probe = parser.add_argument_group("the drill's own database probe (needs a network path to both databases)")
    probe.add_argument("--db-probe", action=argparse.BooleanOptionalAction, default=False,
                       help="instead of the replication probe's metrics, write a heartbeat row a second to the writer "
                            "from here until the fence and read the databases directly (default: off; an evacuation "
                            "turns it off, with a warning, when the writer's region is unreachable; a writer that "
                            "cannot be reached otherwise fails the preflight)")
    if heartbeats:
        probe.add_argument("--db-probe-interval", type=_positive, default=1.0, metavar="SECONDS",
                           help="seconds between heartbeats (default 1)")
        probe.add_argument("--db-probe-lead", type=_not_negative, default=5.0, metavar="SECONDS",
                           help="heartbeats before the first step, for a baseline (default 5)")
    probe.add_argument("--db-ca-bundle", metavar="PEM",
                       help="RDS's CA bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem): "
                            "verify the database servers; without it TLS is required but the server unverified")


def _aws(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", action="append", default=[], metavar="REGION=URL",
                        help="send this region's AWS calls to URL instead of AWS_ENDPOINT_URL or AWS's endpoint "
                             "(repeatable; for emulators and private endpoints; given again on resume and abort)")


def _run_options(parser: argparse.ArgumentParser, scenario: bool = True) -> None:
    if scenario:
        parser.add_argument("--scenario", choices=SCENARIOS, required=True,
                            help="dns-failover (traffic only, reversible), region-evacuation (moves the writer), "
                                 "failback (back to the primary's region, planned)")
    parser.add_argument("--probe-url", help="default: https://<app_domain>/api/health")
    parser.add_argument("--hold", type=_not_negative, default=60, help="dns-failover: seconds to serve from the backup")
    parser.add_argument("--probe-timeout", type=_positive, default=600,
                        help="seconds to wait for the region users go to to answer --probe-url")
    parser.add_argument("--probe-interval", type=_positive, default=1, help="seconds between two GETs of --probe-url")
    parser.add_argument("--wait-timeout", type=_positive, default=1800, help="seconds to wait for AWS to settle")
    parser.add_argument("--stop-alarm", action="append", default=[], help="abort when this alarm is in ALARM")
    parser.add_argument("--promotion-keeps-source-link", action="store_true",
                        help="emulators only (moto keeps the replica's source link after a promotion; AWS drops it)")


def _load_outputs(args: argparse.Namespace) -> tuple[StackOutputs, StackOutputs]:
    pairs = {"files": (args.primary_outputs, args.backup_outputs), "stacks": (args.primary_stack, args.backup_stack)}
    given = {kind: pair for kind, pair in pairs.items() if any(pair)}
    if len(given) != 1 or not all(next(iter(given.values()))):
        raise InputError("give either --primary-outputs and --backup-outputs, or --primary-stack and --backup-stack")
    if "files" in given:
        return from_file(args.primary_outputs, "primary"), from_file(args.backup_outputs, "backup")
    return from_stack(args.primary_stack, "primary"), from_stack(args.backup_stack, "backup")


def _context(primary: StackOutputs, backup: StackOutputs, options: dict, drill_id: str = "plan") -> Context:
    """A scenario that returns to the primary's region moves users and writes from the backup's."""
    scenario = options.get("scenario") or PROMOTING[0]
    returning = scenario in RETURNING
    assert primary.failover_switch is not None, "the primary's outputs are parsed with their switch"
    target = primary if returning else backup
    db_probe = bool(options.get("db_probe")) and scenario in PROMOTING
    # The drill's own probe measures when asked for; else the probe in the stacks, where they run one.
    metrics = bool(options.get("replication_probe")) and scenario in PROMOTING and not db_probe
    return Context(source=backup if returning else primary, target=target,
                   replication=target.replication_probe if metrics else None,
                   switch=primary.failover_switch, switch_to_target=0 if returning else 1, no_loss=returning,
                   drill_id=drill_id,
                   probe_url=options.get("probe_url") or f"https://{primary.app_domain}/api/health",
                   **{k: options[k] for k in ("hold", "probe_timeout", "probe_interval", "max_lag", "wait_timeout",
                                              "promotion_keeps_source_link", "db_probe_interval", "db_ca_bundle")
                      if k in options},
                   db_probe=db_probe,
                   accept_data_loss=bool(options.get("accept_data_loss")),
                   snapshot_replica=bool(options.get("snapshot_replica")), promotes=scenario in PROMOTING,
                   stop_alarms=tuple(options.get("stop_alarm", ())),
                   endpoints=parse_endpoints(options.get("endpoint_url", ())))


def _print_plan(scenario: str, ctx: Context) -> None:
    say(f"{scenario}: {ctx.source.region} -> {ctx.target.region} (a plan: nothing is called)")
    for number, step in enumerate(BUILDERS[scenario](ctx), 1):
        undo = "reversible" if step.undo else "irreversible" if "promote" in step.name else "no undo needed"
        marks = "".join((", fault" if step.fault else "",
                         f", best effort: skipped if {ctx.source.region} is unreachable" if step.best_effort else ""))
        say(f"{number}. {step.name}: {step.description} [{undo}{marks}]")
        for call in step.calls:
            say(f"     {call}")


def _preflight(ctx: Context, journal_dir: Path) -> tuple[bool, list[dict]]:
    checks = run_checks(ctx, journal_dir)
    marks = []
    for check in checks:
        mark = "PASS" if check.passed else ("FAIL" if check.blocking else "WARN")
        marks.append(mark)
        say(f"[{mark}] {check.name}: {check.evidence}")
    passed = all(c.passed or not c.blocking for c in checks)
    say(f"preflight: {marks.count('PASS')} passed, {marks.count('WARN')} warnings, {marks.count('FAIL')} failed: "
        + ("ready" if passed else "not ready"))
    return passed, [c.to_dict() for c in checks]


def _say_reconcile(plan: dict, journal_path: Path, written: bool = False) -> None:
    """What the stack files should now say, unless `written` has just said it line by line, then the commands."""
    if not written:
        say("The stack files should now say (python -m drills reconcile --journal "
            f"{journal_path} --write applies this; the failover switch is a metric, not a setting: no `up` moves it):")
        for setting in plan["settings"]:
            say(f"  {reconcile.line(setting)}")
    say("Then, in this order:")
    for command in plan["commands"]:
        say(f"  {command}")


def _finish(journal: Journal, code: int, report_dir: Path | None) -> int:
    if journal.data["scenario"] in reconcile.MOVES_THE_WRITER and journal.data["status"] == "done":
        journal.data["reconcile"] = reconcile.plan(journal.data)
        journal.save()
        _say_reconcile(journal.data["reconcile"], journal.path)
    for path in report.write(journal.data, report_dir or journal.path.parent / "reports", journal.path):
        say(f"report: {path}")
    data = journal.data
    skipped = [s["name"] for s in data["steps"] if s["status"] == "skipped"]
    if skipped:
        say(f"skipped (best effort, region unreachable): {', '.join(skipped)}")
    found = report.summary(data)
    for fence in found["fences"]:
        say(f"fence {fence['fence']}: {report.held(fence['held'])} ({fence['how']})")
    if found["broker"]:
        say(f"broker: {found['broker']}")
    rto = report.seconds(data.get("rto_seconds"), data.get("rto_reason"))
    say(f"RTO {rto}{'' if data.get('rto_seconds') is None else ' (switch to the first answer from where users went)'}, "
        f"RPO {report.rpo(found)}")
    return code


def cmd_run(args: argparse.Namespace) -> int:
    primary, backup = _load_outputs(args)
    options = vars(args)
    ctx = _context(primary, backup, options)
    if not args.execute:
        _print_plan(args.scenario, ctx)
        say("dry run: add --execute --confirm " + ctx.target.region + " to run it")
        return 0
    if args.confirm != ctx.target.region:
        found = f"found {args.confirm!r}" if args.confirm else "not given"
        raise InputError(f"--confirm must be the region users go to, {ctx.target.region} ({found}); "
                         "nothing was called")
    if args.scenario in RETURNING and not ctx.measures:
        raise InputError("a failback promotes only once the heartbeat shows that nothing would be lost: run it with "
                         "the replication probe (the stacks' replication_probe output; drop --no-replication-probe) "
                         "or the database probe (--db-probe); nothing was called")
    already = open_journals(args.journal_dir)
    if already:
        raise InputError(f"a drill is in progress ({already[0]}): resume or abort it first")
    _credentials()
    ctx.drill_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
    ctx.since = time.time() - MEASURE_LEAD
    ctx.command = ["python", "-m", "drills", *args.argv]
    passed, evidence = _preflight(ctx, args.journal_dir)
    if args.scenario in RETURNING and not ctx.measures:
        say("[FAIL] database-probe: a failback needs it (it promotes only once nothing would be lost), and the "
            f"writer's region {ctx.source.region} did not answer")
        passed = False
    if not passed:
        say("preflight failed: nothing was changed")
        return PREFLIGHT_FAILED
    if ctx.db_probe:
        args.journal_dir.mkdir(parents=True, exist_ok=True)
        ctx.heartbeat_record = Record(heartbeat_path(args.journal_dir, ctx.drill_id))
        try:
            start_heartbeat(ctx, say, args.db_probe_lead)
        except (DatabaseError, *AWS_ERRORS) as exc:
            ctx.stop_heartbeat()
            say(f"the database probe could not start: {exc}\npreflight failed: nothing was changed")
            return PREFLIGHT_FAILED
        except KeyboardInterrupt:
            ctx.stop_heartbeat()
            say(f"interrupted before the first step: nothing was changed but the heartbeat rows in "
                f"{HEARTBEAT_TABLE} (record: {ctx.heartbeat_record.path})")
            raise
    options["db_probe"] = ctx.db_probe  # the preflight turns it off when the primary's region is out
    steps = BUILDERS[args.scenario](ctx)
    journal = Journal.create(args.journal_dir, {
        "id": ctx.drill_id, "scenario": args.scenario, "executed": True, "status": "running",
        "source": ctx.source.role, "target": ctx.target.role,
        "operator": {"user": getpass.getuser(), "host": socket.gethostname()}, "started_at": iso(now()),
        "probe_url": ctx.probe_url, "options": {k: options[k] for k in JOURNALED},
        "stacks": {"primary": args.primary_stack, "backup": args.backup_stack},
        "outputs": {"primary": primary.to_dict(), "backup": backup.to_dict()},
        "preflight": evidence, "probes": [], "measure_since": ctx.since,
        "heartbeat_record": ctx.heartbeat_record.path.name if ctx.heartbeat_record else None,
        "steps": [{"name": s.name, "description": s.description, "calls": s.calls, "status": "pending",
                   "fault": s.fault, "best_effort": s.best_effort} for s in steps],
    })
    say(f"journal: {journal.path}")
    return _finish(journal, execute(journal, steps, ctx, say), args.report_dir)


def _from_journal(args: argparse.Namespace) -> tuple[Journal, Context]:
    """The journal's drill, with this invocation's endpoints."""
    journal = Journal.load(args.journal)
    data = journal.data
    primary = parse(data["outputs"]["primary"], f"{args.journal} (primary)", "primary")
    backup = parse(data["outputs"]["backup"], f"{args.journal} (backup)", "backup")
    ctx = _context(primary, backup, {**data["options"], "endpoint_url": args.endpoint_url,
                                     "scenario": data["scenario"]}, data["id"])
    if data.get("heartbeat_record"):
        # Beside the journal, wherever the journal is now.
        ctx.heartbeat_record = Record(heartbeat_path(args.journal.parent, data["id"]))
    ctx.since = data.get("measure_since") or 0
    steps = BUILDERS[data["scenario"]](ctx)
    ctx.writes_ended_at = writes_ended(journal, steps)
    expected = [step.name for step in steps]
    if [step["name"] for step in data["steps"]] != expected:
        raise InputError(f"{args.journal}: its steps are not {data['scenario']}'s ({', '.join(expected)}): a journal "
                         "of an earlier version of the drill tool; finish it with that version")
    return journal, ctx


def cmd_resume(args: argparse.Namespace) -> int:
    journal, ctx = _from_journal(args)
    _credentials()
    if journal.data["status"] not in RESUMABLE:
        raise InputError(f"{args.journal}: the drill is {journal.data['status']}; nothing to resume"
                         + ("; finish the abort with `abort`" if journal.is_open else ""))
    for key in ("max_lag", "accept_data_loss"):  # the operator's decisions, given now
        if getattr(args, key) is not None:
            journal.data["options"][key] = getattr(args, key)
            setattr(ctx, key, getattr(args, key))
            say(f"recorded in the journal: {key} = {getattr(args, key)}")
    say(f"resuming {journal.data['scenario']} {journal.data['id']}")
    steps = BUILDERS[journal.data["scenario"]](ctx)
    if ctx.db_probe and heartbeat_needed(journal, steps):
        try:
            start_heartbeat(ctx, say)
        except (DatabaseError, *AWS_ERRORS) as exc:
            # Recorded: the measurement then says the old writer went away, and from when.
            ctx.heartbeat_record.append({"at": time.time(), "error": str(exc)})
            say(f"database probe: the writer cannot be reached ({exc}); measuring from the writes it acknowledged")
    return _finish(journal, execute(journal, steps, ctx, say), args.report_dir)


def cmd_abort(args: argparse.Namespace) -> int:
    journal, ctx = _from_journal(args)
    _credentials()
    if journal.data["status"] in ("aborted", "done"):
        raise InputError(f"{args.journal}: the drill is {journal.data['status']}; nothing to abort")
    if promoted(journal):
        raise InputError(f"{args.journal}: the replica was promoted; undoing the switch and the fence now would send "
                         "users and writers back to the old writer while the promoted one holds newer writes. "
                         "Finish with resume; going back means a new replica of the promoted instance and a "
                         "planned switchover")
    say(f"aborting {journal.data['id']}: undoing the reversible steps in reverse order")
    journal.data.update(status="aborting", stop_reason="aborted by the operator")
    journal.save()
    journal.data["status"] = rollback(journal, BUILDERS[journal.data["scenario"]](ctx), ctx, say)
    journal.save()
    return _finish(journal, ABORTED, args.report_dir)


def cmd_report(args: argparse.Namespace) -> int:
    journal = Journal.load(args.journal)
    for path in report.write(journal.data, args.report_dir or journal.path.parent / "reports", journal.path):
        say(f"report: {path}")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    journal = Journal.load(args.journal)
    reconcile.check_evacuated(journal.data, args.journal)
    plan = reconcile.plan(journal.data)
    if args.write:
        say(f"in {args.project_dir.resolve()}:")
        for line in reconcile.write(args.project_dir, plan["settings"]):
            say(f"  {line}")
    _say_reconcile(plan, args.journal, written=args.write)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    primary, backup = _load_outputs(args)
    _print_plan(args.scenario, _context(primary, backup, vars(args)))
    return 0


def cmd_preflight(args: argparse.Namespace) -> int:
    primary, backup = _load_outputs(args)
    ctx = _context(primary, backup, vars(args))
    _credentials()
    ctx.since = time.time() - MEASURE_LEAD
    ctx.command = ["python", "-m", "drills", *args.argv]
    passed, _ = _preflight(ctx, args.journal_dir)
    if ctx.no_loss and not ctx.measures:
        say("[FAIL] database-probe: a failback promotes only once the heartbeat shows nothing would be lost: the "
            "replication probe (stack output replication_probe) or --db-probe")
        passed = False
    return 0 if passed else PREFLIGHT_FAILED


def cmd_failback_plan(args: argparse.Namespace) -> int:
    """The whole way back, as commands: rebuild the primary's replica, switch over, rebuild the backup's."""
    primary, backup = _load_outputs(args)
    stacks = {"primary": args.primary_stack or "primary", "backup": args.backup_stack or "backup"}
    say(f"Failback to {primary.region}, after an evacuation to {backup.region} (stack files reconciled: "
        f"activeRegion {backup.region}, Pulumi.primary.yaml database.detached true). Run from the project directory.")
    say(f"\n1. Rebuild {primary.region}'s replica of the writer in {backup.region}:")
    for command in reconcile.rebuild_commands("primary", stacks["primary"]):
        say(f"   {command}")
    say("   python -m drills failback preflight ...   # the replica available, replicating, caught up")
    say(f"\n2. The planned switchover (RPO 0 by the heartbeat): "
        f"python -m drills failback run --execute --confirm {primary.region} ...")
    _print_plan("failback", _context(primary, backup, {**vars(args), "scenario": "failback"}))
    say("\n3. Record it and rebuild the backup's replica: python -m drills reconcile --journal <the failback's "
        "journal> --write, then the commands it prints (they end with the rebuild of "
        f"{backup.region}'s replica). Both stack files are then as they were before the evacuation.")
    return 0


def _phase_file(args: argparse.Namespace) -> str:
    """The stack file's name: --stack-file FILE (its directory the project), else Pulumi.<--stack or role>.yaml in
    --project-dir."""
    if args.stack_file is None:
        return stack_file_name((args.stack or args.role).rsplit("/", 1)[-1])
    try:
        path = given_stack_file(args.stack_file)
    except StackFileError as exc:
        raise InputError(str(exc)) from None
    args.project_dir = path.parent
    return path.name


def cmd_failback_phase(args: argparse.Namespace) -> int:
    """The settings of one rebuild phase for one stack file, printed or written."""
    file = _phase_file(args)
    key = f"{reconcile.PROJECT}:database.detached"
    if reconcile.current(args.project_dir, file, key) is not True:
        raise InputError(f"{args.project_dir / file}: {key} is not true: a rebuild follows a switchover that left "
                         "this region's former writer detached (python -m drills reconcile --write)")
    retire_key = f"{reconcile.PROJECT}:database.retireWithSnapshot"
    snapshot = reconcile.current(args.project_dir, file, retire_key)
    if args.phase == "retire":
        environment = reconcile.current(args.project_dir, file, f"{reconcile.PROJECT}:environment")
        # Kept when already set: writing the phase twice changes nothing.
        settings = phases.retiring(args.role, snapshot or phases.retire_snapshot(
            f"{reconcile.PROJECT}-{environment}", time.strftime("%Y%m%dt%H%M%Sz", time.gmtime())))
    elif snapshot is None:
        raise InputError(f"{args.project_dir / file}: {retire_key} is not set: retire the former writer first "
                         f"(python -m drills failback phase retire --role {args.role} --write, then pulumi up)")
    else:
        settings = phases.rebuilt(args.role)
        if args.write:
            environment = reconcile.current(args.project_dir, file, f"{reconcile.PROJECT}:environment")
            region = reconcile.current(args.project_dir, file, "aws:region")
            delete_retired(region, f"{reconcile.PROJECT}-{environment}", snapshot, say)
    named = [{**s, "file": file} for s in settings]
    if args.write:
        for line in reconcile.write(args.project_dir, named):
            say(f"  {line}")
    else:
        for setting in named:
            say(f"  {reconcile.line(setting)}")
        say("(--write applies it)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    primary, backup = _load_outputs(args)
    assert primary.failover_switch is not None
    region = args.region or primary.failover_switch.region
    endpoint = parse_endpoints(args.endpoint_url).get(region)
    _credentials()
    session = new_session()
    found = status.check(primary, backup, region, lambda service: session.client(
        service, region_name=region, endpoint_url=endpoint, config=status.CONFIG))
    if args.format == "json":
        print(json.dumps(found.document, indent=2))
    else:
        for line in found.lines:
            say(line)
        say("READY: the standby can take over" if found.ready else
            "NOT READY: " + "; ".join(found.blockers))
    return status.READY if found.ready else status.NOT_READY


def _journal_command(commands: argparse._SubParsersAction, name: str, text: str,
                     func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=text, description=text)
    sub.add_argument("--journal", type=Path, required=True, help="the drill's journal, .drills/drill-<id>.json")
    sub.set_defaults(func=func)
    return sub


def build_parser() -> argparse.ArgumentParser:
    parser = console.Parser(prog="python -m drills", description=__doc__.split("\n\n")[0], epilog=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="the steps, calls and targets; changes nothing")
    _inputs(plan), _tuning(plan), _run_options(plan)
    plan.set_defaults(func=cmd_plan)
    preflight = commands.add_parser("preflight", help="readiness checks; changes nothing")
    _inputs(preflight), _tuning(preflight, heartbeats=False), _aws(preflight)
    preflight.add_argument("--stop-alarm", action="append", default=[], help="check that this alarm exists")
    preflight.set_defaults(func=cmd_preflight)
    run = commands.add_parser("run", help="plan, or with --execute --confirm REGION run a scenario")
    _inputs(run), _tuning(run), _run_options(run), _aws(run)
    run.add_argument("--execute", action="store_true", help="run it (without: print the plan, call nothing)")
    run.add_argument("--confirm", help="the region users go to: us-west-2 for an evacuation, us-east-1 for a failback")
    run.set_defaults(func=cmd_run)
    resume = _journal_command(commands, "resume", "continue a drill from its journal (skipped steps are tried "
                                                  "again)", cmd_resume)
    _aws(resume), _lag_options(resume, None, None)
    abort = _journal_command(commands, "abort", "undo a drill's reversible steps; deletes nothing", cmd_abort)
    _aws(abort)
    reports = _journal_command(commands, "report", "write the JSON, Markdown and HTML reports", cmd_report)
    for sub in (run, resume, abort, reports):
        sub.add_argument("--report-dir", type=Path,
                         help="where the JSON, Markdown and HTML reports are written "
                              "(default: reports/ beside the journal)")
    reconciling = _journal_command(commands, "reconcile", "after a completed region evacuation or failback: the "
                                   "stack-file settings and the pulumi commands that record it", cmd_reconcile)
    reconciling.add_argument("--project-dir", type=Path, default=Path("."),
                             help="where Pulumi.primary.yaml and Pulumi.backup.yaml are (default: here)")
    reconciling.add_argument("--write", action="store_true",
                             help="apply the settings to the stack files, keeping comments and key order; a "
                                  "second run changes nothing")
    _failback_commands(commands)
    state = commands.add_parser("status", help="whether the standby is ready to take over, from one region's APIs "
                                "alone (exit 0 ready, 3 not ready)", description=status.__doc__)
    _inputs(state), _aws(state)
    state.add_argument("--region", help="the only region called (default: the failover switch's, the backup's "
                                        "region, so it answers with the primary's region down)")
    state.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    state.set_defaults(func=cmd_status)
    console.describe_subcommands(parser)
    return parser


def _failback_commands(commands: argparse._SubParsersAction) -> None:
    failback = commands.add_parser("failback", help="back to the primary's region after an evacuation: plan, "
                                   "preflight, run, and the phases that rebuild a replica")
    steps = failback.add_subparsers(dest="failback_command", required=True)
    plan = steps.add_parser("plan", help="the whole way back as commands; changes nothing")
    _inputs(plan), _tuning(plan), _run_options(plan, scenario=False)
    plan.set_defaults(func=cmd_failback_plan)
    preflight = steps.add_parser("preflight", help="readiness for the switchover: the primary's replica "
                                 "replicating from the backup's writer and caught up; changes nothing")
    _inputs(preflight), _tuning(preflight, heartbeats=False), _aws(preflight)
    preflight.add_argument("--stop-alarm", action="append", default=[], help="check that this alarm exists")
    preflight.set_defaults(func=cmd_preflight, scenario="failback")
    run = steps.add_parser("run", help="the planned switchover, with --execute --confirm <the primary's region>")
    _inputs(run), _tuning(run), _run_options(run, scenario=False), _aws(run)
    run.add_argument("--execute", action="store_true", help="run it (without: print the plan, call nothing)")
    run.add_argument("--confirm", help="must equal the primary's region (where users and writes go back to)")
    run.add_argument("--report-dir", type=Path,
                     help="where the JSON, Markdown and HTML reports are written "
                              "(default: reports/ beside the journal)")
    run.set_defaults(func=cmd_run, scenario="failback")
    phase = steps.add_parser("phase", help="the stack-file settings that rebuild a region's replica: retire "
                             "the former writer, then rebuild it as a replica (each followed by pulumi up)")
    phase.add_argument("phase", choices=("retire", "rebuild"),
                       help="retire: the former writer may be deleted, leaving a named final snapshot; rebuild: it "
                            "is deleted and a replica takes its identifier")
    phase.add_argument("--role", choices=phases.ROLES, required=True, help="the stack whose former writer it is")
    named = phase.add_mutually_exclusive_group()
    named.add_argument("--stack-file", type=Path, metavar="FILE",
                       help="the stack file, Pulumi.<stack>.yaml, with the project's Pulumi.yaml beside it (default: "
                            "Pulumi.<--stack>.yaml in --project-dir)")
    named.add_argument("--stack", metavar="NAME", help="the stack's name (default: the role)")
    phase.add_argument("--project-dir", type=Path, default=Path("."),
                       help="the directory of the stack files (default: the current one)")
    phase.add_argument("--write", action="store_true",
                       help="apply it, keeping comments and order; for rebuild, first delete the retired instance "
                            "leaving its final snapshot (with the credentials pulumi up runs with)")
    phase.set_defaults(func=cmd_failback_phase)


def _credentials() -> None:
    if not have_credentials():
        raise InputError("no AWS credentials: set AWS_PROFILE to the drill role's profile (docs/runbook.md), or "
                         "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; nothing was called")


def _directories(args: argparse.Namespace) -> None:
    """Where the drill writes: checked before anything is called, so that nothing fails after a drill ran."""
    for option in ("journal_dir", "report_dir"):
        path = getattr(args, option, None)
        # The directory, or the nearest part of it that exists, must be a directory (it is created below it).
        existing = next((p for p in (path, *path.parents) if p.exists()), None) if path is not None else None
        if existing is not None and not existing.is_dir():
            where = "" if existing == path else f" ({existing} is a file)"
            raise InputError(f"--{option.replace('_', '-')} {path}: a file, not a directory{where}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    # The command as given: a refusal names it with the option that accepts what it refused.
    args.argv = argv
    try:
        _directories(args)
        return args.func(args)
    except InputError as exc:
        print(f"drills: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return 130


def entry() -> None:
    """The console script (pyproject.toml)."""
    console.run(main, "drills")


if __name__ == "__main__":
    entry()
