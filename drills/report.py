"""Drill reports from a journal: JSON, Markdown, and an HTML page with a timeline."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from drills import fences

COLOURS = {"done": "#2e7d32", "failed": "#c62828", "undone": "#9e9e9e", "skipped": "#78909c"}


def _lag_detail(data: dict[str, Any]) -> dict[str, Any]:
    return next((s.get("detail") or {} for s in data["steps"] if s["name"] == "wait-for-replica-lag"), {})


def _moves_the_writer(data: dict[str, Any]) -> bool:
    return any(s["name"] == "promote-replica" for s in data["steps"])


def _broker(data: dict[str, Any]) -> str | None:
    """What became of the Celery tasks queued in the old region's cache (the broker), when the writer moved."""
    if not _moves_the_writer(data):
        return None
    source = data["outputs"][data.get("source", "primary")]
    target = data["outputs"][data.get("target", "backup")]
    if source.get("cache_global_datastore"):
        return (f"queued Celery tasks replicate with the cache's Global Datastore "
                f"({source['cache_global_datastore']}): those {source['region']} had sent before the promotion of "
                f"{target['region']}'s cluster are there, less its replication lag")
    return (f"queued Celery tasks in {source['region']}'s cache were not moved: those not yet run there are lost "
            f"(each region has its own broker; cache.globalDatastore: true replicates it)")


def summary(data: dict[str, Any]) -> dict[str, Any]:
    steps = [{"name": s["name"], "status": s["status"], "fault": s.get("fault", False),
              "best_effort": s.get("best_effort", False), "started_at": s.get("started_at"),
              "ended_at": s.get("ended_at"),
              "duration_seconds": round(s["ended_at_epoch"] - s["started_at_epoch"], 3)
              if s.get("ended_at_epoch") and s.get("started_at_epoch") else None,
              "error": s.get("error"), "detail": s.get("detail")} for s in data["steps"]]
    return {
        "id": data["id"], "scenario": data["scenario"], "status": data["status"], "executed": data["executed"],
        "rto_seconds": data.get("rto_seconds"), "rto_reason": data.get("rto_reason"),
        "rpo_seconds": data.get("rpo_seconds"), "rpo_reason": data.get("rpo_reason"),
        # Acknowledged heartbeats missing on the promoted writer: only when the database probe measured the RPO.
        "rows_lost": data.get("rows_lost"),
        "replica_lag_read": "replica_lag_seconds" in _lag_detail(data),
        "replica_lag_seconds": data.get("replica_lag_seconds"),
        "data_loss_accepted": bool(_lag_detail(data).get("data_loss_accepted")),
        "stop_reason": data.get("stop_reason"), "warning": data.get("warning"), "operator": data["operator"],
        "started_at": data["started_at"],
        "regions": {"primary": data["outputs"]["primary"]["region"], "backup": data["outputs"]["backup"]["region"]},
        # Where users and writes went from and to (a failback goes back to the primary's region).
        "moved": {"from": data["outputs"][data.get("source", "primary")]["region"],
                  "to": data["outputs"][data.get("target", "backup")]["region"]},
        "probe_url": data["probe_url"], "steps": steps,
        "skipped": [{"name": s["name"], "error": s["error"]} for s in steps if s["status"] == "skipped"],
        "probes": data["probes"], "preflight": data.get("preflight"),
        "reconcile": data.get("reconcile") or {"settings": [], "commands": []},
        "fences": fences.report(data["steps"], f"fence-{data.get('source', 'primary')}-writers",
                                f"fence-{data.get('source', 'primary')}-database")
        if _moves_the_writer(data) else [],
        "broker": _broker(data),
    }


def seconds(value: Any, reason: Any) -> str:
    """A measurement for people: `12.3 s`, or `unknown (why)`, never `None s`."""
    return f"{value} s" if value is not None else f"unknown ({reason})"


def rpo(summary: dict[str, Any]) -> str:
    """The RPO with how it was found: a measurement and an estimate are not the same number."""
    text = seconds(summary["rpo_seconds"], summary["rpo_reason"])
    return text if summary["rpo_seconds"] is None else f"{text} ({summary['rpo_reason']})"


def headline(summary: dict[str, Any]) -> str:
    """`done`, or `done, 3 steps skipped`: a skipped step is not a done one."""
    skipped = len(summary["skipped"])
    return summary["status"] + (f", {skipped} step{'s' if skipped > 1 else ''} skipped" if skipped else "")


def changed(step: dict[str, Any]) -> str:
    """What a step changed or found, from its journaled detail, on one line."""
    detail = {k: v for k, v in (step.get("detail") or {}).items() if v not in (None, [], {}, "")}
    return "; ".join(f"{k}: {json.dumps(v, default=str) if isinstance(v, dict | list) else v}"
                     for k, v in detail.items())


def _markdown(summary: dict[str, Any]) -> str:
    lines = [f"# Drill {summary['id']}: {summary['scenario']} ({headline(summary)})", "",
             f"- operator: {summary['operator']['user']} on {summary['operator']['host']}",
             f"- regions: {summary['moved']['from']} -> {summary['moved']['to']}",
             f"- started: {summary['started_at']}",
             f"- **RTO**: {seconds(summary['rto_seconds'], summary['rto_reason'])}",
             f"- **RPO**: {rpo(summary)}"]
    if summary.get("journal"):
        lines.append(f"- journal: `{summary['journal']}`")
        if summary["status"] not in ("done", "aborted"):
            lines.append(f"- to go on: `python -m drills resume --journal {summary['journal']}`")
    if summary["rows_lost"] is not None:
        lines.append(f"- **rows lost**: {summary['rows_lost']} acknowledged heartbeats are not on the promoted writer")
    if summary["replica_lag_read"]:
        lines.append("- ReplicaLag before the promotion (CloudWatch, for comparison): "
                     + seconds(summary["replica_lag_seconds"], "no datapoints"))
    if summary["data_loss_accepted"]:
        lines.append("- **data loss accepted**: promoted without ReplicaLag datapoints (--accept-data-loss)")
    if summary["stop_reason"]:
        lines.append(f"- stopped: {summary['stop_reason']}")
    if summary["warning"]:
        lines.append(f"- **warning**: {summary['warning']}")
    lines += ["", "| step | outcome | started | ended | duration | changed |", "|---|---|---|---|---|---|"]
    for step in summary["steps"]:
        duration = f"{step['duration_seconds']} s" if step["duration_seconds"] is not None else ""
        lines.append(f"| {step['name']}{' (fault)' if step['fault'] else ''} | {step['status']} | "
                     f"{step['started_at'] or ''} | {step['ended_at'] or ''} | {duration} | "
                     f"{changed(step).replace('|', '/')} |")
    if summary["fences"]:
        lines += ["", "Fences on the old writer:", ""]
        lines += [f"- {f['fence']}: {held(f['held'])}: {f['what']} ({f['how']})" for f in summary["fences"]]
    if summary["broker"]:
        lines += ["", f"Broker: {summary['broker']}."]
    if summary["skipped"]:
        lines += ["", "Skipped (best effort: the primary's region could not be reached):", ""]
        lines += [f"- {s['name']}: {s['error']}" for s in summary["skipped"]]
    answered = [p for p in summary["probes"] if p["region"]]
    lines += ["", f"Probes: {len(summary['probes'])} sent to {summary['probe_url']}, {len(answered)} answered."]
    reconcile = summary["reconcile"]
    if reconcile["settings"]:
        lines += ["", "Reconcile the stack files with what the drill changed "
                  "(`python -m drills reconcile --journal <journal> --write`):", ""]
        lines += [f"- `{s['file']}`: `{s['key']}`: "
                  + ("remove it" if s["value"] is None else f"`{json.dumps(s['value'])}`")
                  for s in reconcile["settings"]]
        lines += ["", "```sh", *reconcile["commands"], "```"]
    return "\n".join(lines) + "\n"


def held(held: bool | None) -> str:
    return {True: "HELD", False: "NOT HELD", None: "NOT KNOWN"}[held]


# The timeline's geometry: names on the left, then the time axis.
_LABEL, _WIDTH, _ROW = 220, 740, 26


def _ticks(length: float) -> float:
    """A round step between the time axis's ticks: about eight of them."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if length / step <= 8:
            return step
    return 7200


def _timeline(summary: dict[str, Any], data: dict[str, Any]) -> str:
    timed = [s for s in data["steps"] if s.get("started_at_epoch")]
    start = min((s["started_at_epoch"] for s in timed), default=0)
    end = max([s.get("ended_at_epoch") or s["started_at_epoch"] for s in timed] + [p["at"] for p in data["probes"]]
              + [start + 1])
    scale = _WIDTH / max(end - start, 1)
    rows = []
    for i, step in enumerate(timed):
        x = _LABEL + (step["started_at_epoch"] - start) * scale
        width = max(2, ((step.get("ended_at_epoch") or end) - step["started_at_epoch"]) * scale)
        colour = COLOURS.get(step["status"], "#f9a825")
        rows.append(f'<text x="0" y="{_ROW * i + 17}">{html.escape(step["name"])}</text>'
                    f'<rect x="{x:.1f}" y="{_ROW * i + 4}" width="{width:.1f}" height="16" fill="{colour}">'
                    f'<title>{html.escape(step["status"])}</title></rect>')
    probe_y = _ROW * len(timed) + 10
    regions = summary["regions"]
    for probe in data["probes"]:
        colour = {regions["primary"]: "#1565c0", regions["backup"]: "#6a1b9a"}.get(probe["region"], "#c62828")
        rows.append(f'<circle cx="{_LABEL + (probe["at"] - start) * scale:.1f}" cy="{probe_y}" r="3" '
                    f'fill="{colour}"/>')
    rows.append(f'<text x="0" y="{probe_y + 4}">probes</text>')
    axis_y = probe_y + 16
    rows.append(f'<line x1="{_LABEL}" y1="{axis_y}" x2="{_LABEL + _WIDTH}" y2="{axis_y}" stroke="#555"/>')
    step = _ticks(end - start)
    tick = 0.0
    while tick <= end - start:
        x = _LABEL + tick * scale
        rows.append(f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 5}" stroke="#555"/>'
                    f'<text x="{x:.1f}" y="{axis_y + 18}" text-anchor="middle">{tick:g} s</text>')
        tick += step
    return (f"<svg width='{_LABEL + _WIDTH + 30}' height='{axis_y + 26}' font-family='sans-serif' "
            f"font-size='12'>{''.join(rows)}</svg>")


def _html(summary: dict[str, Any], data: dict[str, Any]) -> str:
    """One self-contained page: the headline, the timeline on a time axis, each step with what it changed, the
    fences, and what to do next."""
    regions = summary["regions"]
    e = html.escape
    facts = [f"RTO {seconds(summary['rto_seconds'], summary.get('rto_reason'))}", f"RPO {rpo(summary)}"]
    if summary["rows_lost"] is not None:
        facts.append(f"{summary['rows_lost']} rows lost")
    if summary["data_loss_accepted"]:
        facts.append("data loss accepted (--accept-data-loss)")
    facts += [f"stopped: {summary['stop_reason']}"] if summary["stop_reason"] else []
    facts += [f"warning: {summary['warning']}"] if summary["warning"] else []
    skipped = "".join(f"<li>{e(s['name'])}: {e(s['error'])}</li>" for s in summary["skipped"])
    steps = "".join(
        f"<tr class='{e(s['status'])}'><td>{e(s['name'])}{' (fault)' if s['fault'] else ''}</td><td>{e(s['status'])}"
        f"</td><td>{s['duration_seconds'] if s['duration_seconds'] is not None else ''}</td>"
        f"<td>{e(s['error'] or changed(s))}</td></tr>" for s in summary["steps"])
    fences = "".join(f"<li><b>{e(f['fence'])}: {held(f['held'])}</b>: {e(f['what'])} ({e(f['how'])})</li>"
                     for f in summary["fences"])
    commands = summary["reconcile"]["commands"]
    nexts = ([f"python -m drills resume --journal {summary['journal']}"]
             if summary.get("journal") and summary["status"] not in ("done", "aborted") else commands)
    return ("<!doctype html><meta charset='utf-8'>"
            f"<title>Drill {e(summary['id'])}</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:1em auto}td,th{border-bottom:1px solid #ddd;"
            "padding:2px 8px;text-align:left;vertical-align:top}td:last-child{word-break:break-word}"
            "pre{white-space:pre-wrap;word-break:break-all;background:#f5f5f5;padding:8px}"
            ".skipped{color:#546e7a}.failed{color:#c62828}</style>"
            f"<h1>{e(summary['scenario'])}: {e(headline(summary))}</h1>"
            f"<p>{e(summary['moved']['from'])} &rarr; {e(summary['moved']['to'])}, started {e(summary['started_at'])}"
            f" by {e(summary['operator']['user'])} &middot; {' &middot; '.join(e(f) for f in facts)}</p>"
            + (f"<p>Journal: <code>{e(summary['journal'])}</code></p>" if summary.get("journal") else "")
            + _timeline(summary, data)
            + f"<p>Probes: blue {e(regions['primary'])} answered, purple {e(regions['backup'])}, red no answer. "
            "Steps: green done, grey-blue skipped, red failed, grey undone.</p>"
            "<h2>Steps</h2><table><tr><th>step</th><th>outcome</th><th>seconds</th><th>changed, or the error</th>"
            f"</tr>{steps}</table>"
            + (f"<h2>Fences on the old writer</h2><ul>{fences}</ul>" if fences else "")
            + (f"<h2>Skipped (best effort: the primary's region could not be reached)</h2><ul>{skipped}</ul>"
               if skipped else "")
            + (f"<p>Broker: {e(summary['broker'])}.</p>" if summary["broker"] else "")
            + (f"<h2>Next</h2><pre>{e(chr(10).join(nexts))}</pre>" if nexts else ""))


def write(data: dict[str, Any], directory: Path, journal: Path | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    found = summary(data)
    found["journal"] = str(journal) if journal else None
    base = directory / f"drill-{data['id']}"
    paths = [base.with_suffix(".json"), base.with_suffix(".md"), base.with_suffix(".html")]
    paths[0].write_text(json.dumps(found, indent=2, default=str), encoding="utf-8")
    paths[1].write_text(_markdown(found), encoding="utf-8")
    paths[2].write_text(_html(found, data), encoding="utf-8")
    return paths
