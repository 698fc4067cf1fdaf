"""Running a scenario's steps against the journal: record, stop conditions, rollback, measurements."""

from __future__ import annotations

import time
from collections.abc import Callable

from drills.endpoints import unreachable
from drills.heartbeat import DatabaseError
from drills.journal import Journal, iso, now
from drills.probe import ProbeTimeout
from drills.scenarios import Context, Refused, Step, StopCondition, SwitchDidNotHold
from regions.sessions import AWS_ERRORS

DONE, STEP_FAILED, ABORTED = 0, 4, 5
Say = Callable[[str], None]
# Statuses of steps that may have changed something, and so have something to undo.
ACTED = ("done", "running", "failed", "skipped")


def _elapsed(entry: dict) -> str:
    return f"{entry['ended_at_epoch'] - entry['started_at_epoch']:.1f} s"


def rollback(journal: Journal, steps: list[Step], ctx: Context, say: Say) -> str:
    """Undo the reversible steps that ran, newest first; nothing is deleted, irreversible steps stay.
    Returns the drill's status: `aborted`, or `abort-failed` when an undo failed (run `abort` again)."""
    by_name = {s.name: s for s in steps}
    kept, failed = [], []
    for entry in reversed(journal.data["steps"]):
        step = by_name[entry["name"]]
        if entry["status"] not in ACTED:
            continue
        if step.undo is None:
            if entry["status"] == "done":
                kept.append(entry["name"])
            continue
        say(f"  undo {entry['name']} ...")
        try:
            step.undo(ctx, entry.get("detail") or {})
        except AWS_ERRORS as exc:
            entry["undo_error"] = str(exc)
            failed.append(entry["name"])
            say(f"  undo of {entry['name']} FAILED: {exc}")
        else:
            entry.update(status="undone", undone_at=iso(now()))
        journal.save()
    if kept:
        say(f"  kept (irreversible, nothing is deleted): {', '.join(kept)}")
    if failed:
        say(f"  not undone: {', '.join(failed)}; run python -m drills abort --journal {journal.path} again")
    return "abort-failed" if failed else "aborted"


def promoted(journal: Journal) -> bool:
    """Whether a promotion was requested: from then on there is no going back by undoing steps."""
    detail = (journal.find("promote-replica") or {}).get("detail") or {}
    return bool(detail.get("promote_called") or detail.get("promote_requested_at"))


def _from_heartbeat(measured: dict, where: str, gone: dict | None) -> tuple[float | None, str]:
    if measured.get("method") == "replication-probe":
        reason = (f"measured through the databases by the replication probe, read from CloudWatch in "
                  f"{measured['read_in']}: the last heartbeat the old writer acknowledged before the fence - the "
                  f"newest on {where}; {measured['rows_missing']} acknowledged heartbeats lost")
        if measured["at_least"]:
            reason += f"; none of the old writer's heartbeats is on {where}: unknown, not zero"
    else:
        reason = (f"measured through the database: the last heartbeat the old writer acknowledged - the newest on "
                  f"{where}; {measured['rows_missing']} of {measured['acknowledged']} acknowledged rows lost")
        if measured["at_least"]:
            reason += f"; none of the drill's heartbeats reached {where}, so at least this much"
    if gone:
        reason += (f"; the old writer stopped answering at {iso(gone['at'])} ({gone['error']}): measured from the "
                   "last write it acknowledged before it went away")
    return measured["seconds"], reason


def _rpo(journal: Journal) -> tuple[float | None, str, int | None]:
    """(seconds, how it was found, acknowledged rows lost or None): the heartbeat on the promoted writer, else
    on the replica just before the promotion, else ReplicaLag's estimate, else unknown."""
    promoted = journal.find("promote-replica")
    if promoted is None:
        return 0, "DNS failover only: no data changed hands", None
    if promoted["status"] != "done":
        return None, "the replica was not promoted", None
    wait = (journal.find("wait-for-replica-lag") or {}).get("detail") or {}
    loss = (journal.find("measure-data-loss") or {}).get("detail") or {}
    if loss.get("measured"):
        seconds, reason = _from_heartbeat(loss["measured"], "the promoted writer", loss.get("writer_gone"))
        return seconds, reason, loss["measured"]["rows_missing"]
    unread = f"; the promoted writer's heartbeats could not be read ({loss['error']})" if loss.get("error") else ""
    if wait.get("heartbeat"):
        measured = wait["heartbeat"]
        seconds, reason = _from_heartbeat(measured, "the replica just before the promotion", wait.get("writer_gone"))
        return seconds, reason + unread, measured["rows_missing"]
    lag = wait.get("replica_lag_seconds")
    if lag is not None:
        return lag, "ReplicaLag (latest datapoint before the promotion), an estimate" + unread, None
    accepted = "; promoted with --accept-data-loss" if wait.get("data_loss_accepted") else ""
    return None, ("CloudWatch had no ReplicaLag datapoints before the promotion (missing for an idle or just-created "
                  "replica, -1 while replication is stopped): unknown, not zero" + accepted + unread), None


def measure(journal: Journal) -> None:
    """RTO: from the start of the first step that changes what users get to the first good answer from the
    backup region. RPO: measured through the database when the probe ran, else the replica lag before the
    promotion (DNS-only drills change no data); CloudWatch's ReplicaLag is kept beside it for comparison."""
    data = journal.data
    # Where users go: the backup's region, or the primary's for a failback.
    backup_region = data["outputs"][data.get("target", "backup")]["region"]
    # The switch's datapoint time, when it was set, is when users start to move.
    faults = [(s.get("detail") or {}).get("on_at") or s["started_at_epoch"] for s in data["steps"]
              if s.get("fault") and s.get("started_at_epoch")]
    good = [p["at"] for p in data["probes"]
            if p["region"] == backup_region and p["status"] and 200 <= p["status"] < 300
            and faults and p["at"] >= min(faults)]
    data["rto_seconds"] = round(min(good) - min(faults), 3) if faults and good else None
    if data["rto_seconds"] is None:
        data["rto_reason"] = "no fault step ran" if not faults else f"{backup_region} never answered"
    wait = (journal.find("wait-for-replica-lag") or {}).get("detail") or {}
    data["replica_lag_seconds"] = wait.get("replica_lag_seconds")
    data["rpo_seconds"], data["rpo_reason"], data["rows_lost"] = _rpo(journal)


def _run_step(journal: Journal, step: Step, ctx: Context, say: Say, started: float) -> bool:
    """Run one step; False when it failed (the drill stops there)."""
    entry = journal.step(step.name)
    resumed = entry["status"] == "running"
    entry.update(status="running", started_at=entry.get("started_at") or iso(now()),
                 started_at_epoch=entry.get("started_at_epoch") or now(), fault=step.fault)
    entry.pop("error", None)
    journal.save()
    say(f"- {step.name}: {'resuming' if resumed else 'start'} ({time.time() - started:.1f} s into the drill)")
    detail = entry.setdefault("detail", {})
    try:
        ctx.check_stop_conditions()
        detail.update(step.run(ctx, detail))
    except (*AWS_ERRORS, ProbeTimeout, TimeoutError, Refused, SwitchDidNotHold,
            DatabaseError) as exc:
        skipped = step.best_effort and unreachable(exc)
        entry.update(status="skipped" if skipped else "failed", error=str(exc), ended_at=iso(now()),
                     ended_at_epoch=now())
        journal.save()
        if skipped:
            # Best-effort steps act on the region being evacuated: later reads there are not waited for.
            ctx.unreachable_regions.add(ctx.source.region)
            say(f"  SKIPPED after {_elapsed(entry)} (best effort, its region is unreachable): {exc}")
            return True
        say(f"  FAILED after {_elapsed(entry)}: {exc}")
        return False
    entry.update(status="done", ended_at=iso(now()), ended_at_epoch=now())
    journal.save()
    say(f"  done in {_elapsed(entry)}")
    return True


def writes_ended(journal: Journal, steps: list[Step]) -> float | None:
    """When the step that ends the writes finished (done, or skipped with its region out); None before."""
    for step in steps:
        entry = journal.step(step.name)
        if step.ends_writes and entry["status"] in ("done", "skipped"):
            return entry.get("ended_at_epoch")
    return None


def heartbeat_needed(journal: Journal, steps: list[Step]) -> bool:
    """Until the step that ends the writes has run (or was skipped)."""
    return any(s.ends_writes and journal.step(s.name)["status"] not in ("done", "skipped") for s in steps)


def start_heartbeat(ctx: Context, say: Say, lead: float = 0) -> None:
    """Start writing heartbeats, then let them run for `lead` seconds before the first step, so that the
    record and the replica have a baseline."""
    ctx.start_heartbeat()
    assert ctx.heartbeat_record is not None and ctx.writer_heartbeat is not None
    say(f"database probe: a heartbeat every {ctx.db_probe_interval:g} s on {ctx.writer_heartbeat.writer} until the "
        f"writers are fenced (record: {ctx.heartbeat_record.path})")
    end = time.time() + lead
    while time.time() < end:
        time.sleep(min(5.0, max(0.0, end - time.time())))
        summary = ctx.heartbeat_record.summary()
        say(f"  heartbeat: {summary['acknowledged']} acknowledged, {summary['failures']} failed "
            f"({max(0.0, end - time.time()):.0f} s of --db-probe-lead left)")


def execute(journal: Journal, steps: list[Step], ctx: Context, say: Say) -> int:
    ctx.record_probe = lambda answer: (journal.data["probes"].append(answer.to_dict()), journal.save())
    ctx.say = say
    ctx.checkpoint = journal.save
    ctx.detail_of = lambda name: journal.step(name).get("detail") or {}
    journal.data["status"] = "running"
    journal.save()
    started = time.time()
    try:
        for step in steps:
            # A skipped step is tried again: its region may be back.
            if journal.step(step.name)["status"] == "done":
                say(f"- {step.name}: done earlier")
                continue
            ok = _run_step(journal, step, ctx, say, started)
            if step.ends_writes:
                ctx.writes_ended_at = writes_ended(journal, steps)
                failure = ctx.stop_heartbeat()
                if failure:
                    say(f"  database probe: {failure}")
            if not ok:
                journal.data["status"] = "failed"
                measure(journal)
                journal.save()
                say(f"  the journal says where: python -m drills resume --journal {journal.path}")
                return STEP_FAILED
    except StopCondition as exc:
        if promoted(journal):
            # Rolling back now would send users and writers back to the old writer while the promoted one
            # holds newer writes: two diverged databases. Halt where it stands instead.
            journal.data.update(status="halted", stop_reason=str(exc))
            measure(journal)
            journal.save()
            say(f"STOP: {exc}; the replica was promoted, so nothing is rolled back (users stay on the promoted "
                f"writer). Resolve the alarm, then python -m drills resume --journal {journal.path}")
            return ABORTED
        journal.data.update(status="aborting", stop_reason=str(exc))
        journal.save()
        say(f"STOP: {exc}; rolling back the reversible steps")
        journal.data["status"] = rollback(journal, steps, ctx, say)
        measure(journal)
        journal.save()
        return ABORTED
    except KeyboardInterrupt:
        journal.data["status"] = "interrupted"
        journal.save()
        say(f"interrupted: the journal is intact; resume with python -m drills resume --journal {journal.path}")
        raise
    finally:
        ctx.stop_heartbeat()
    journal.data["status"] = "done"
    measure(journal)
    journal.save()
    return DONE
