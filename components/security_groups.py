"""Security groups chained least privilege: world -> alb -> app -> db / cache / endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

POSTGRES_PORT = 5432
REDIS_PORT = 6379
HTTPS_PORT = 443
Ingress = aws.vpc.SecurityGroupIngressRule
Egress = aws.vpc.SecurityGroupEgressRule


@dataclass
class SecurityGroupsArgs:
    vpc_id: pulumi.Input[str]
    # Container ports the load balancer forwards to, by service name.
    app_ports: Mapping[str, int]


class SecurityGroups(pulumi.ComponentResource):
    alb: aws.ec2.SecurityGroup
    app: aws.ec2.SecurityGroup
    db: aws.ec2.SecurityGroup
    cache: aws.ec2.SecurityGroup
    endpoints: aws.ec2.SecurityGroup
    rotation: aws.ec2.SecurityGroup
    # What a drill revokes to fence the old writer at the database (drills/scenarios.py).
    db_fence: pulumi.Output[dict]

    def __init__(self, name: str, args: SecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:network:SecurityGroups", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)

        def group(role: str, purpose: str) -> aws.ec2.SecurityGroup:
            # No inline rules: the provider then removes AWS's default allow-all egress.
            return aws.ec2.SecurityGroup(f"{name}-{role}", vpc_id=args.vpc_id, description=purpose,
                                         revoke_rules_on_delete=True, tags={"Name": f"{name}-{role}"},
                                         opts=self._child)

        self.alb = group("alb", "Load balancer: HTTP/HTTPS from the internet")
        self.app = group("app", "ECS tasks: their ports from the load balancer only")
        self.db = group("db", "PostgreSQL: 5432 from the app tasks only")
        self.cache = group("cache", "Redis: 6379 from the app tasks only")
        self.endpoints = group("endpoints", "VPC interface endpoints: HTTPS from the app tasks only")

        for port in (80, HTTPS_PORT):
            self._rule(Ingress, f"alb-{port}-world", self.alb, port, cidr="0.0.0.0/0")
        for service, port in sorted(args.app_ports.items()):
            self._rule(Ingress, f"app-{service}-from-alb", self.app, port, peer=self.alb)
            self._rule(Egress, f"alb-{service}-to-app", self.alb, port, peer=self.app)
        self._rule(Ingress, "db-from-app", self.db, POSTGRES_PORT, peer=self.app)
        self._rule(Ingress, "cache-from-app", self.cache, REDIS_PORT, peer=self.app)
        self._rule(Ingress, "endpoints-from-app", self.endpoints, HTTPS_PORT, peer=self.app)
        self._rule(Egress, "app-to-db", self.app, POSTGRES_PORT, peer=self.db)
        self._rule(Egress, "app-to-cache", self.app, REDIS_PORT, peer=self.cache)
        # Tasks call AWS APIs (through the endpoints or NAT) and external HTTPS APIs such as Google OAuth.
        self._rule(Egress, "app-https-out", self.app, HTTPS_PORT, cidr="0.0.0.0/0")
        # The rotation function (deployed in both regions: the active one rotates) logs in to the database and calls
        # Secrets Manager through its endpoint.
        self.rotation = group("rotation", "Password rotation: PostgreSQL and the Secrets Manager endpoint")
        self._rule(Ingress, "db-from-rotation", self.db, POSTGRES_PORT, peer=self.rotation)
        self._rule(Ingress, "endpoints-from-rotation", self.endpoints, HTTPS_PORT, peer=self.rotation)
        self._rule(Egress, "rotation-to-db", self.rotation, POSTGRES_PORT, peer=self.db)
        self._rule(Egress, "rotation-to-endpoints", self.rotation, HTTPS_PORT, peer=self.endpoints)
        self.db_fence = pulumi.Output.all(self.db.id, self.app.id).apply(
            lambda ids: {"security_group_id": ids[0], "app_security_group_id": ids[1], "port": POSTGRES_PORT})

        self.register_outputs({
            "alb_security_group_id": self.alb.id,
            "app_security_group_id": self.app.id,
            "db_security_group_id": self.db.id,
            "cache_security_group_id": self.cache.id,
            "endpoints_security_group_id": self.endpoints.id,
        })

    def _rule(self, direction: type[pulumi.CustomResource], label: str, group: aws.ec2.SecurityGroup, port: int,
              *, cidr: str | None = None, peer: aws.ec2.SecurityGroup | None = None) -> None:
        direction(f"{self._name}-{label}", security_group_id=group.id, ip_protocol="tcp", from_port=port,
                  to_port=port, cidr_ipv4=cidr, referenced_security_group_id=peer.id if peer else None,
                  description=label, opts=self._child)
