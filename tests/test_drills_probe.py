"""The drill measured by the replication probes (probe/, as processes beside each PostgreSQL server), read from
CloudWatch in the region users go to: the default, with no connection of the drill's own to a database."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from drill_world import evacuate, eventually, heartbeats, report

import drills.__main__ as cli
from drills.sandbox import BACKUP, PRIMARY, free_port


def probe_rows(server, region=PRIMARY):
    """The probe's heartbeats written by `region`'s writer, as a server holds them: {seq: written_at epoch}."""
    if not server.query("SELECT to_regclass('replication_heartbeat') IS NOT NULL", dbname="trading")[0][0]:
        return {}
    return {seq: float(at) for seq, at in server.query(
        "SELECT seq, extract(epoch FROM written_at) FROM replication_heartbeat WHERE region = %s", region,
        dbname="trading")}


def test_the_probes_measure_an_evacuation_with_no_connection_from_the_drill(world, pair, tmp_path, capsys):
    assert eventually(lambda: len(probe_rows(pair.standby)) >= 5, timeout=30)
    assert evacuate(world, tmp_path) == 0
    out = capsys.readouterr().out
    assert "[PASS] replication-probe: TradingPlatform/ReplicationProbe in us-west-2" in out
    summary, markdown = report(tmp_path)
    assert summary["rpo_seconds"] == 0 and summary["rows_lost"] == 0
    assert summary["rpo_reason"].startswith("measured through the databases by the replication probe, read from "
                                            f"CloudWatch in {BACKUP}")
    loss = {s["name"]: s for s in summary["steps"]}["measure-data-loss"]["detail"]["measured"]
    # Every heartbeat acknowledged before the fence is on the promoted writer: the truth, read from it.
    assert loss["last_acknowledged"]["seq"] in probe_rows(pair.standby)
    assert loss["newest_present"]["seq"] >= loss["last_acknowledged"]["seq"]
    # The drill connected to no database: neither its own heartbeat table nor a session of its probe.
    assert heartbeats(pair.writer) == [] and heartbeats(pair.standby) == []
    assert "rows lost**: 0" in markdown


def test_a_cut_stream_then_a_lost_region_loses_exactly_what_the_metrics_say(world, pair, tmp_path):
    """The replica stops receiving; the writer's probe goes on acknowledging for two seconds; then us-east-1 is
    lost with its probe. The last acknowledged heartbeat is still known in us-west-2's CloudWatch, and the rows
    and seconds lost equal the truth counted on the two databases."""
    assert eventually(lambda: len(probe_rows(pair.standby)) >= 3, timeout=30)
    pair.cut_stream()
    time.sleep(2)
    world.probes.stop(PRIMARY)
    written, kept = probe_rows(pair.writer), probe_rows(pair.standby)
    lost = set(written) - set(kept)
    assert len(lost) >= 5 and max(kept) < min(lost)  # the standby holds a prefix of the writer's heartbeats
    assert evacuate(world, tmp_path, "--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}") == 0
    summary, _ = report(tmp_path)
    assert summary["rows_lost"] == len(lost)
    assert summary["rpo_seconds"] == pytest.approx(written[max(written)] - kept[max(kept)], abs=0.002)
    steps = {s["name"]: s for s in summary["steps"]}
    assert steps["fence-primary-writers"]["status"] == "skipped"
    assert steps["wait-for-replica-lag"]["detail"]["lag_source"] == "replication probe"


def test_status_answers_from_us_west_2_alone(world, pair, tmp_path, capsys):
    assert eventually(lambda: len(probe_rows(pair.standby)) >= 3, timeout=30)
    dead = ["--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}"]
    assert cli.main(["status", *world.outputs_args(), *dead]) == 0
    out = capsys.readouterr().out
    assert "active region      us-east-1" in out and "switch             off" in out
    assert "READY: the standby can take over" in out
    # The switch on while the writer is still in us-east-1: users would meet a read-only standby.
    boto3.client("cloudwatch", region_name=BACKUP, endpoint_url=world.moto.url).put_metric_data(
        Namespace="TradingPlatform/Failover", MetricData=[{"MetricName": "SwitchToStandby", "Value": 1.0,
                                                           "Dimensions": [{"Name": "Environment",
                                                                           "Value": "production"}]}])
    assert cli.main(["status", "--format", "json", *world.outputs_args(), *dead]) == 3
    document = json.loads(capsys.readouterr().out)
    assert document["ready"] is False and document["switch"]["on"] is True
    assert any("the switch sends users to us-west-2" in why for why in document["not_ready_because"])
    assert document["replication"]["newest_replicated"]["seq"] >= 3
