"""The right-sizing result as JSON (docs/contracts.md) and as a table for people."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from regions.catalog import DB_MAINTENANCE_WINDOW
from regions.roles import roles
from regions.stackfile import stack_of
from rightsize.rules import CHANGE, Finding, key


def _finding(f: Finding) -> dict[str, Any]:
    found = {"resource": f.resource, "rule": f.rule or None, "status": f.status, "reason": f.reason,
             "changes": [asdict(c) for c in f.changes], "evidence": f.evidence,
             "monthly_saving_usd": f.monthly_saving_usd}
    if f.parameters:
        found["parameters"] = f.parameters
    return found


def document(*, stacks: Any, window: tuple[datetime, datetime], days: int, period: int, thresholds: dict[str, float],
             findings: list[Finding], costs: dict[str, dict[str, Any]], traffic: dict[str, Any] | None,
             written: bool) -> dict[str, Any]:
    s = stacks.settings
    saving = [c["saving"] for c in costs.values()]
    return {
        "stack": stacks.file[len("Pulumi."):-len(".yaml")], "stack_file": stacks.file, "region": s.region.name,
        "active_region": s.active_region, "standby": s.services.sized_by_peer,
        "window": {"start": window[0].isoformat(), "end": window[1].isoformat(), "days": days,
                   "period_seconds": period},
        "thresholds": thresholds,
        "recommendations": [_finding(f) for f in findings if f.status == CHANGE],
        "unchanged": [_finding(f) for f in findings if f.status != CHANGE],
        "traffic": traffic,
        "cost": costs,
        "monthly_saving_usd": None if None in saving else round(sum(saving), 2),
        "written": written,
    }


def _value(value: Any) -> str:
    return json.dumps(value)


def _evidence(e: dict[str, Any]) -> str:
    if "metric" not in e:
        return f"{e['file']}: {e['key']} = {_value(e['value'])}"
    return (f"{e['metric']} ({'/'.join(e['dimensions'].values())}) {e['statistic']}: {e['value']:,g} {e['unit']} "
            f"({e['datapoints']} datapoints on {e['days']} days)")


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.2f}"


def _saving(value: float | None) -> str:
    if value is None:
        return "saving unknown (a size has no price in synth/prices.yaml)"
    return f"saves {value:,.2f} USD a month" if value >= 0 else f"costs {-value:,.2f} USD a month more"


def table(doc: dict[str, Any]) -> str:
    w = doc["window"]
    role = "standby" if doc["standby"] else "active"
    lines = [f"right-sizing {doc['stack_file']} ({doc['region']}, {role}) from {w['start']} to {w['end']} "
             f"({w['days']} days, {w['period_seconds']}-second periods)"]
    if doc["traffic"]:
        lines.append(f"traffic: {doc['traffic']['requests_per_day']:,.0f} requests a day through the load balancer")
    for f in doc["recommendations"]:
        lines += ["", f"{f['resource']}: {f['rule']}, {_saving(f['monthly_saving_usd'])}", f"  {f['reason']}"]
        files, keys = (max(len(c[k]) for c in f["changes"]) for k in ("file", "key"))
        lines += [f"  {c['file']:<{files}}  {c['key']:<{keys}}  {_value(c['current'])} -> {_value(c['proposed'])}"
                  for c in f["changes"]]
        lines += [f"  parameter {p['name']}: {p['current_mib']:,g} MiB -> {p['proposed_mib']:,g} MiB"
                  for p in f.get("parameters", [])]
        lines += [f"  evidence: {_evidence(e)}" for e in f["evidence"]]
    if doc["unchanged"]:
        lines.append("")
    lines += [f"{f['resource']}: {f['status']}: {f['reason']}" for f in doc["unchanged"]]
    lines += ["", f"{'monthly cost (USD)':<24}{'before':>12}{'after':>12}{'saving':>12}"]
    for file, c in doc["cost"].items():
        flag = "" if c["complete"] else f"  {c.get('error') or 'INCOMPLETE: some sizes have no price (synth --cost)'}"
        lines.append(f"{file:<24}{_money(c['before']):>12}{_money(c['after']):>12}{_money(c['saving']):>12}{flag}")
    lines.append(f"total saving: {_money(doc['monthly_saving_usd'])} USD a month")
    changes = [c for f in doc["recommendations"] for c in f["changes"]]
    if changes and not doc["written"]:
        files = " and ".join(dict.fromkeys(c["file"] for c in changes))
        lines.append(f"--write applies the {len(changes)} changes to {files} (comments and order kept); then review "
                     "`pulumi preview` per stack")
    return "\n".join(lines)


def waiting(findings: list[Finding], stacks: Any) -> list[str]:
    """The class changes a stack file's database queues for its maintenance window (regions/roles.py: the writer
    unless database.applyImmediately), with when they happen and how to apply one at once."""
    lines = []
    for c in (c for f in findings for c in f.changes if c.key == key("database.instanceClass")):
        settings = stacks.settings if c.file == stacks.file else stacks.peer
        if not roles(settings).db_applies_immediately:
            lines.append(f"{c.file}: {c.current} -> {c.proposed} waits for the maintenance window "
                         f"{DB_MAINTENANCE_WINDOW} UTC (database.applyImmediately: false), its outage then; to apply "
                         f"it now, after `pulumi up -s {stack_of(c.file)}`: aws rds modify-db-instance --region "
                         f"{settings.region.name} --db-instance-identifier {settings.resource_prefix} "
                         f"--db-instance-class {c.proposed} --apply-immediately")
    return lines
