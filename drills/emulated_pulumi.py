"""`pulumi refresh` and `pulumi up` for the sandbox's world, driven by the program itself: each stack file is
evaluated with synth's engine (the SDK's mocks) and what the registered resources declare is applied to moto
and the PostgreSQL servers, the way the engine would apply it against the last state.

Emulated: the services' scalable targets and counts (target tracking keeping a count within its bounds),
the replication probe's task (its process started, stopped or restarted in the mode its task definition
says), the database's deletion protection, a refresh that finds the instance promoted or deleted, and the
creation of a read replica where the state holds none (which rebuilds that region's PostgreSQL server as a
standby of the writer). A declared replica over a standalone instance in the state is refused, as the provider cannot
turn one into the other. Not emulated: everything else the stacks declare.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drills.capacity import DIMENSION, NAMESPACE
from drills.probes import Mode
from synth.engine import evaluate

if TYPE_CHECKING:
    from drills.sandbox import World

INSTANCE = "aws:rds/instance:Instance"
TARGET = "aws:appautoscaling/target:Target"
SERVICE = "aws:ecs/service:Service"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
PROBE = "trading-platform:services:ReplicationProbe"


class Pulumi:
    def __init__(self, world: World, project_dir: Path):
        self.world, self.project_dir = world, project_dir
        # What the engine's state says of each stack's database: its inputs at the last `up`, None once gone.
        self.databases: dict[str, dict[str, Any] | None] = {}
        # Evaluations by the stack files' texts: a refresh and the `up` after it, or two stacks' commands between
        # two edits, evaluate the same files once (a backup's evaluation holds its primary's).
        self._evaluations: dict[tuple[str, ...], dict[str, Any]] = {}
        # The world was built as the stack files say: their state is what they declare.
        for stack in ("primary", "backup"):
            self.databases[stack] = self._instance(self._evaluate(stack)).inputs

    def _evaluate(self, stack: str) -> Any:
        # The program's warnings (google sign-in off) are the synth's to show, not the sandbox's.
        texts = tuple(sorted(p.read_text() for p in self.project_dir.glob("Pulumi*.yaml")))
        cache = self._evaluations.setdefault(texts, {})
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return evaluate(stack, self.project_dir, cache)

    @staticmethod
    def _instance(evaluation: Any) -> Any:
        (found,) = evaluation.of_type(INSTANCE)
        return found

    def refresh_database(self, stack: str) -> str:
        """`pulumi refresh --target <the instance>`: the state learns that a promoted instance has no source,
        or that a deleted one is gone."""
        evaluation = self._evaluate(stack)
        region, identifier = evaluation.region, self._instance(evaluation).inputs["identifier"]
        rds = self.world.client("rds", region)
        if not rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [identifier]}])["DBInstances"]:
            self.databases[stack] = None
            return f"refresh {stack}: the database in {region} is gone"
        promoted = not self.world.databases[region].in_recovery()
        if promoted:
            self.databases[stack] = {**(self.databases[stack] or {}), "replicateSourceDb": None}
        return f"refresh {stack}: the database in {region} is {'a writer' if promoted else 'a replica'}"

    def up(self, stack: str) -> list[str]:
        evaluation = self._evaluate(stack)
        region = evaluation.region
        # The database first: a rebuilt replica is there before its probe reads it.
        return (self._services(evaluation, region) + self._database(stack, evaluation, region)
                + self._probe(evaluation, region))

    def _services(self, evaluation: Any, region: str) -> list[str]:
        scaling = self.world.client("application-autoscaling", region)
        ecs = self.world.client("ecs", region)
        bounds = {}
        for target in evaluation.of_type(TARGET):
            low, high = target.inputs["minCapacity"], target.inputs["maxCapacity"]
            scaling.register_scalable_target(ServiceNamespace=NAMESPACE, ResourceId=target.inputs["resourceId"],
                                             ScalableDimension=DIMENSION, MinCapacity=low, MaxCapacity=high)
            bounds[target.inputs["resourceId"].rsplit("/", 1)[-1]] = (low, high)
        changed = []
        for service in evaluation.of_type(SERVICE):
            if PROBE in (service.parent or ""):
                continue  # a process here, not a service of moto's
            name = service.inputs["name"]
            cluster = service.inputs["cluster"].rsplit("/", 1)[-1]
            current = ecs.describe_services(cluster=cluster, services=[name])["services"][0]["desiredCount"]
            if "desiredCount" in service.ignore_changes:
                low, high = bounds[name]
                desired = min(max(current, low), high)  # target tracking keeps the count within the bounds
            else:
                desired = service.inputs["desiredCount"]
            if desired != current:
                ecs.update_service(cluster=cluster, service=name, desiredCount=desired)
                changed.append(f"{region} {name}: desired {current} -> {desired}")
        return changed

    def _probe(self, evaluation: Any, region: str) -> list[str]:
        """The probe's task as ECS would run it after this `up`: its mode from its task definition's environment,
        none while its service's desired count is 0 (a detached former writer)."""
        probes = self.world.probes
        if probes is None:
            return []
        running = [s for s in evaluation.of_type(SERVICE) if PROBE in (s.parent or "") and s.inputs["desiredCount"]]
        (definition,) = [d for d in evaluation.of_type(TASK_DEFINITION) if PROBE in (d.parent or "")] or [None]
        before = probes.mode(region)
        if not running or definition is None:
            probes.stop(region)
            return [f"{region} replication probe: stopped"] if before else []
        variables = {v["name"]: v["value"] for container in json.loads(definition.inputs["containerDefinitions"])
                     for v in container.get("environment", [])}
        wanted = Mode(variables["PROBE_MODE"], variables["PROBE_WRITER_REGION"])
        if wanted == before:
            return []
        probes.start(region, wanted)
        return [f"{region} replication probe: {wanted.mode} (writer in {wanted.writer_region})"]

    def _database(self, stack: str, evaluation: Any, region: str) -> list[str]:
        inputs, old = self._instance(evaluation).inputs, self.databases[stack]
        rds = self.world.client("rds", region)
        identifier, source = inputs["identifier"], inputs.get("replicateSourceDb")
        changed = []
        if old is None:
            if not source:
                raise RuntimeError(f"{stack}: the sandbox creates only replicas, not a writer")
            rds.create_db_instance_read_replica(DBInstanceIdentifier=identifier, SourceDBInstanceIdentifier=source,
                                                DBInstanceClass=inputs["instanceClass"])
            self.world.postgres.rebuild(self.world.databases[region], self.world.databases[source.split(":")[3]])
            changed.append(f"{region} {identifier}: created as a read replica of {source}")
        elif source and not old.get("replicateSourceDb"):
            raise RuntimeError(f"{stack}: the program declares a replica where the state holds a standalone instance: "
                               "the provider cannot turn one into the other (delete it and refresh first)")
        protection = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0].get(
            "DeletionProtection")
        if protection is not inputs["deletionProtection"]:
            rds.modify_db_instance(DBInstanceIdentifier=identifier, DeletionProtection=inputs["deletionProtection"],
                                   ApplyImmediately=True)
            changed.append(f"{region} {identifier}: deletion protection {inputs['deletionProtection']}")
        self.databases[stack] = inputs
        return changed
