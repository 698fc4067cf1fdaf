"""A workload's container definitions: the process itself, and the short-lived container that hands it
its writable volumes.

Fargate mounts task volumes owned by root with mode 0755, so an unprivileged process cannot write them.
Before the workload starts, a non-essential container from the same image runs `chown` on them as root,
with every capability but CHOWN dropped; the workload waits for it to succeed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from regions.workloads import Workload

VOLUME_OWNER = "volume-owner"
# ECS Exec's managed agent writes here; with a read-only root filesystem they must be volumes (root's own).
EXEC_AGENT_PATHS = ("/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm")
# Docker's default capabilities less CHOWN: all the volume owner may do is change owners.
_DROPPED_CAPABILITIES = ("AUDIT_WRITE", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                         "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT")


def volume_name(path: str) -> str:
    return "writable" + path.replace("/", "-")


def task_volume_paths(workload: Workload, exec_enabled: bool) -> tuple[str, ...]:
    return workload.writable_paths + (EXEC_AGENT_PATHS if exec_enabled else ())


def container_definitions(name: str, workload: Workload, image: pulumi.Input[str],
                          environment: Mapping[str, pulumi.Input[str]], secrets: pulumi.Input[list[dict]] | None,
                          log_group: pulumi.Input[str], region: str, log_level: str,
                          exec_enabled: bool) -> list[dict[str, Any]]:
    """`secrets` None: the container gets none injected (the replication probe reads its own at runtime)."""
    logs = {"logDriver": "awslogs", "options": {"awslogs-group": log_group, "awslogs-region": region,
                                                "awslogs-stream-prefix": name}}

    def mounts(paths: tuple[str, ...]) -> list[dict]:
        return [{"sourceVolume": volume_name(p), "containerPath": p, "readOnly": False} for p in paths]

    app: dict[str, Any] = {
        "name": name,
        "image": image,
        "essential": True,
        "user": workload.user,
        "readonlyRootFilesystem": True,
        "mountPoints": mounts(task_volume_paths(workload, exec_enabled)),
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        **({"secrets": secrets} if secrets is not None else {}),
        "logConfiguration": logs,
        "linuxParameters": {"initProcessEnabled": True},
        "stopTimeout": workload.stop_timeout,
    }
    if workload.command:
        app["command"] = [part.format(log_level=log_level) for part in workload.command]
    if workload.port is not None:
        app["portMappings"] = [{"containerPort": workload.port, "protocol": "tcp"}]
        if workload.port < 1024:
            # The unprivileged user may bind the port (awsvpc: the sysctl applies to this task only).
            app["systemControls"] = [{"namespace": "net.ipv4.ip_unprivileged_port_start",
                                      "value": str(workload.port)}]
    if not workload.writable_paths:
        return [app]
    app["dependsOn"] = [{"containerName": VOLUME_OWNER, "condition": "SUCCESS"}]
    owner = {
        "name": VOLUME_OWNER,
        "image": image,
        # ECS refuses a SUCCESS dependency on an essential container.
        "essential": False,
        "user": "0",
        "readonlyRootFilesystem": True,
        "entryPoint": ["chown", workload.user, *workload.writable_paths],
        "mountPoints": mounts(workload.writable_paths),
        "logConfiguration": logs,
        "linuxParameters": {"capabilities": {"drop": list(_DROPPED_CAPABILITIES)}},
    }
    return [owner, app]
