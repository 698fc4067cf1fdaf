"""ECS capacity through Application Auto Scaling. Target tracking keeps a service's desired count within
its scalable target's min and max, so a drill that set desired counts alone would be scaled back by the
next evaluation: the bounds move first, then the desired counts. api, web and worker have scalable
targets; beat has none (a singleton whose desired count Pulumi sets).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from drills.outputs import StackOutputs

if TYPE_CHECKING:
    from drills.scenarios import Context

SCALED = ("api", "web", "worker")
NAMESPACE, DIMENSION = "ecs", "ecs:service:DesiredCount"
# {service: {"min", "max", "desired"}}: min and max count only for a service with a scalable target.
Capacities = dict[str, dict[str, int]]


def resource_id(outputs: StackOutputs, service: str) -> str:
    return f"service/{outputs.ecs_cluster_name}/{outputs.ecs_services[service]}"


def plan_calls(outputs: StackOutputs, wanted: Capacities) -> list[str]:
    region = outputs.region
    bounds = [f"application-autoscaling[{region}].register_scalable_target(ServiceNamespace={NAMESPACE}, "
              f"ResourceId={resource_id(outputs, s)}, ScalableDimension={DIMENSION}, MinCapacity={c['min']}, "
              f"MaxCapacity={c['max']})" for s, c in wanted.items() if s in SCALED]
    counts = [f"ecs[{region}].update_service(cluster={outputs.ecs_cluster_name}, service={outputs.ecs_services[s]}, "
              f"desiredCount={c['desired']})" for s, c in wanted.items()]
    return bounds + counts


def _current(ctx: Context, outputs: StackOutputs, services: list[str]) -> Capacities:
    names = {outputs.ecs_services[s]: s for s in services}
    described = ctx.client("ecs", outputs.region).describe_services(cluster=outputs.ecs_cluster_name,
                                                                   services=list(names))["services"]
    found = {names[s["serviceName"]]: {"desired": s["desiredCount"]} for s in described}
    ids = {resource_id(outputs, s): s for s in services if s in SCALED}
    if ids:
        targets = ctx.client("application-autoscaling", outputs.region).describe_scalable_targets(
            ServiceNamespace=NAMESPACE, ResourceIds=list(ids), ScalableDimension=DIMENSION)["ScalableTargets"]
        for target in targets:
            found.setdefault(ids[target["ResourceId"]], {}).update(min=target["MinCapacity"],
                                                                  max=target["MaxCapacity"])
    return found


def _apply(ctx: Context, outputs: StackOutputs, capacities: Capacities) -> None:
    scaling = ctx.client("application-autoscaling", outputs.region)
    for service, capacity in capacities.items():
        if "min" in capacity:
            scaling.register_scalable_target(ServiceNamespace=NAMESPACE, ResourceId=resource_id(outputs, service),
                                             ScalableDimension=DIMENSION, MinCapacity=capacity["min"],
                                             MaxCapacity=capacity["max"])
    ecs = ctx.client("ecs", outputs.region)
    for service, capacity in capacities.items():
        if "desired" in capacity:
            ecs.update_service(cluster=outputs.ecs_cluster_name, service=outputs.ecs_services[service],
                               desiredCount=capacity["desired"])


def _wait_steady(ctx: Context, outputs: StackOutputs, services: list[str]) -> None:
    ecs = ctx.client("ecs", outputs.region)
    names = [outputs.ecs_services[s] for s in services]

    def steady() -> bool:
        current = ecs.describe_services(cluster=outputs.ecs_cluster_name, services=names)["services"]
        return all(s["runningCount"] == s["desiredCount"] and len(s.get("deployments", [])) <= 1 for s in current)

    ctx.wait(f"services in {outputs.region} steady", steady)


def set_capacity(outputs: StackOutputs, wanted: Callable[[Context], Capacities]) -> Callable[[Context, dict], dict]:
    """A step that sets the capacities and waits until the services are steady. What they had before the
    first attempt is journaled before the first change, and kept through resumes, for the undo."""
    def run(ctx: Context, detail: dict) -> dict:
        capacities = wanted(ctx)
        if "previous" not in detail:
            detail["previous"] = _current(ctx, outputs, list(capacities))
            ctx.checkpoint()
        previous = detail["previous"]
        # Bounds only where a scalable target exists: registering one would create a target Pulumi does not know.
        _apply(ctx, outputs, {s: c if "min" in previous.get(s, {}) else {"desired": c["desired"]}
                              for s, c in capacities.items()})
        _wait_steady(ctx, outputs, list(capacities))
        return {"previous": previous, "set": capacities}
    return run


def restore_capacity(outputs: StackOutputs) -> Callable[[Context, dict], None]:
    def undo(ctx: Context, detail: dict) -> None:
        _apply(ctx, outputs, detail.get("previous") or {})
    return undo
