"""Running a scenario's steps against the journal: record, stop conditions, rollback, measurements."""

from __future__ import annotations

import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from drills.journal import Journal, iso, now
from drills.probe import ProbeTimeout
from drills.scenarios import Context, Step, StopCondition

DONE, STEP_FAILED, ABORTED = 0, 4, 5
Say = Callable[[str], None]


def _elapsed(entry: dict) -> str:
    return f"{entry['ended_at_epoch'] - entry['started_at_epoch']:.1f} s"


def rollback(journal: Journal, steps: list[Step], ctx: Context, say: Say) -> str:
    """Undo the reversible steps that ran, newest first; nothing is deleted, irreversible steps stay.
    Returns the drill's status: `aborted`, or `abort-failed` when an undo failed (run `abort` again)."""
    by_name = {s.name: s for s in steps}
    kept, failed = [], []
    for entry in reversed(journal.data["steps"]):
        step = by_name[entry["name"]]
        if entry["status"] not in ("done", "running", "failed"):
            continue
        if step.undo is None:
            if entry["status"] == "done":
                kept.append(entry["name"])
            continue
        say(f"  undo {entry['name']} ...")
        try:
            step.undo(ctx, entry.get("detail") or {})
        except (ClientError, BotoCoreError) as exc:
            entry["undo_error"] = str(exc)
            failed.append(entry["name"])
            say(f"  undo of {entry['name']} FAILED: {exc}")
        else:
            entry.update(status="undone", undone_at=iso(now()))
        journal.save()
    if kept:
        say(f"  kept (irreversible, nothing is deleted): {', '.join(kept)}")
    if "promote-replica" in kept:
        # Traffic and writers are back on the primary; the promoted backup no longer follows it.
        say("  WARNING: the backup database was promoted and no longer replicates from the primary: rebuild the "
            "replica (`pulumi up -s backup` with database.promoted false re-creates it; see `failback plan`)")
        journal.data["warning"] = "the backup database was promoted during the drill: rebuild the replica"
    if failed:
        say(f"  not undone: {', '.join(failed)}; run python -m drills abort --journal {journal.path} again")
    return "abort-failed" if failed else "aborted"


def measure(journal: Journal) -> None:
    """RTO: first fault step's start to the first good answer from the backup region.
    RPO: the replica lag when it was promoted (DNS-only drills change no data)."""
    data = journal.data
    backup_region = data["outputs"]["backup"]["region"]
    faults = [s["started_at_epoch"] for s in data["steps"] if s.get("fault") and s.get("started_at_epoch")]
    good = [p["at"] for p in data["probes"]
            if p["region"] == backup_region and p["status"] and 200 <= p["status"] < 300
            and faults and p["at"] >= min(faults)]
    data["rto_seconds"] = round(min(good) - min(faults), 3) if faults and good else None
    if data["rto_seconds"] is None:
        data["rto_reason"] = "no fault step ran" if not faults else "the backup region never answered"
    promoted = next((s for s in data["steps"] if s["name"] == "promote-replica"), None)
    if promoted is None:
        data["rpo_seconds"], data["rpo_reason"] = 0, "DNS failover only: no data changed hands"
    elif promoted["status"] != "done":
        data["rpo_seconds"], data["rpo_reason"] = None, "the replica was not promoted"
    elif promoted["detail"].get("replica_lag_seconds") is None:
        data["rpo_seconds"] = None
        data["rpo_reason"] = ("CloudWatch had no ReplicaLag datapoints at promotion (the metric is missing for "
                              "an idle or just-created replica); unknown, not zero")
    else:
        data["rpo_seconds"] = promoted["detail"]["replica_lag_seconds"]
        data["rpo_reason"] = "ReplicaLag (maximum over the 5 minutes before promotion)"


def execute(journal: Journal, steps: list[Step], ctx: Context, say: Say) -> int:
    ctx.record_probe = lambda answer: (journal.data["probes"].append(answer.to_dict()), journal.save())
    journal.data["status"] = "running"
    journal.save()
    started = time.time()
    try:
        for step in steps:
            entry = journal.step(step.name)
            if entry["status"] == "done":
                say(f"- {step.name}: done earlier, skipped")
                continue
            resumed = entry["status"] == "running"
            entry.update(status="running", started_at=entry.get("started_at") or iso(now()),
                         started_at_epoch=entry.get("started_at_epoch") or now(), fault=step.fault)
            journal.save()
            say(f"- {step.name}: {'resuming' if resumed else 'start'} ({time.time() - started:.1f} s into the drill)")
            detail = entry.setdefault("detail", {})
            ctx.checkpoint = journal.save
            try:
                ctx.check_stop_conditions()
                detail.update(step.run(ctx, detail))
            except (ClientError, BotoCoreError, ProbeTimeout, TimeoutError) as exc:
                entry.update(status="failed", error=str(exc), ended_at=iso(now()), ended_at_epoch=now())
                journal.data["status"] = "failed"
                journal.save()
                say(f"  FAILED after {_elapsed(entry)}: {exc}")
                say(f"  the journal says where: python -m drills resume --journal {journal.path}")
                return STEP_FAILED
            entry.update(status="done", ended_at=iso(now()), ended_at_epoch=now())
            journal.save()
            say(f"  done in {_elapsed(entry)}")
    except StopCondition as exc:
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
    journal.data["status"] = "done"
    measure(journal)
    journal.save()
    return DONE
