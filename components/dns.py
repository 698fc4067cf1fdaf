"""Route53: the stack's health check on its own ALB and its failover record in the shared zone."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Route53 publishes health-check metrics only in us-east-1.
ROUTE53_METRICS_REGION = "us-east-1"
HEALTH_PATH = "/api/health"
INTERVAL_SECONDS = 10
FAILURE_THRESHOLD = 3


@dataclass
class FailoverArgs:
    zone_id: pulumi.Input[str]
    app_domain: str
    # PRIMARY in the primary stack, SECONDARY in the backup stack.
    failover_role: str
    set_identifier: str
    alb_dns_name: pulumi.Input[str]
    alb_zone_id: pulumi.Input[str]
    # A topic in us-east-1, where the health-check alarm must live.
    alarm_topic_arn: pulumi.Input[str]


class Failover(pulumi.ComponentResource):
    health_check: aws.route53.HealthCheck

    def __init__(self, name: str, args: FailoverArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:dns:Failover", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.health_check = aws.route53.HealthCheck(
            name, type="HTTPS", fqdn=args.alb_dns_name, port=443, resource_path=HEALTH_PATH,
            request_interval=INTERVAL_SECONDS, failure_threshold=FAILURE_THRESHOLD, measure_latency=True,
            enable_sni=True, tags={"Name": f"{args.app_domain} {args.set_identifier}"}, opts=child)
        aws.cloudwatch.MetricAlarm(
            f"{name}-health", region=ROUTE53_METRICS_REGION,
            alarm_description=f"{args.app_domain} is unhealthy in {args.set_identifier}: Route53 fails over",
            namespace="AWS/Route53", metric_name="HealthCheckStatus",
            dimensions={"HealthCheckId": self.health_check.id}, statistic="Minimum", period=60,
            evaluation_periods=1, threshold=1, comparison_operator="LessThanThreshold",
            treat_missing_data="breaching", alarm_actions=[args.alarm_topic_arn], ok_actions=[args.alarm_topic_arn],
            opts=child)
        # Failover rides on health checks (Route53's data plane, served from every region) rather than on
        # changing records, whose control plane lives in us-east-1 and may be out with it.
        aws.route53.Record(
            name, zone_id=args.zone_id, name=args.app_domain, type="A", set_identifier=args.set_identifier,
            failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=args.failover_role)],
            health_check_id=self.health_check.id,
            aliases=[aws.route53.RecordAliasArgs(name=args.alb_dns_name, zone_id=args.alb_zone_id,
                                                 evaluate_target_health=True)],
            opts=child)
        self.register_outputs({"health_check_id": self.health_check.id})


@dataclass
class HostedZoneArgs:
    zone_name: str
    # Create the zone here (then delegate to it from the parent zone) rather than look it up.
    create: bool


class HostedZone(pulumi.ComponentResource):
    zone_id: pulumi.Output[str]

    def __init__(self, name: str, args: HostedZoneArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:dns:HostedZone", name, None, opts)
        if args.create:
            self.zone_id = aws.route53.Zone(name, name=args.zone_name, comment="trading platform, both regions",
                                            opts=pulumi.ResourceOptions(parent=self, protect=True)).zone_id
        else:
            self.zone_id = aws.route53.get_zone_output(name=args.zone_name, private_zone=False,
                                                       opts=pulumi.InvokeOutputOptions(parent=self)).zone_id
        self.register_outputs({"zone_id": self.zone_id})
