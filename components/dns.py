"""Route53: the stack's health check on its own ALB and its failover record in the shared zone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Route53 publishes health-check metrics only in us-east-1.
ROUTE53_METRICS_REGION = "us-east-1"
HEALTH_PATH = "/api/health"
INTERVAL_SECONDS = 10
FAILURE_THRESHOLD = 3


# The failover switch: a metric of our own, set in the standby's region.
SWITCH_NAMESPACE = "TradingPlatform/Failover"
SWITCH_METRIC = "SwitchToStandby"


@dataclass
class FailoverSwitchArgs:
    # The standby's region: the switch must work while the primary's region is down.
    region: str
    alarm_name: str
    dimensions: Mapping[str, str]


class FailoverSwitch(pulumi.ComponentResource):
    """AWS's "standby takes over primary" pattern: an alarm on a metric the operators set (1 = traffic to the
    standby, 0 = back), watched by a Route53 health check. Moving traffic then takes one PutMetricData call
    in the standby's region: no Route53 control-plane call (served from us-east-1) and no us-east-1 endpoint.
    """

    health_check: aws.route53.HealthCheck
    # What the drill needs to flip it (the `failover_switch` output).
    description: dict

    def __init__(self, name: str, args: FailoverSwitchArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:dns:FailoverSwitch", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        alarm = aws.cloudwatch.MetricAlarm(
            name, region=args.region, name=args.alarm_name,
            alarm_description="On: Route53 sends users to the standby region (set with PutMetricData, 1 on, 0 off)",
            namespace=SWITCH_NAMESPACE, metric_name=SWITCH_METRIC, dimensions=dict(args.dimensions),
            # Route53 takes standard-resolution metrics and the basic statistics only.
            statistic="Maximum", period=60, evaluation_periods=1, threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            # The switch is set once, not reported every minute: without new data the alarm keeps its state.
            treat_missing_data="ignore", opts=child)
        self.health_check = aws.route53.HealthCheck(
            name, type="CLOUDWATCH_METRIC", cloudwatch_alarm_name=alarm.name, cloudwatch_alarm_region=args.region,
            # Route53 reads the alarm's metric, not its state: once the switch's one datapoint ages out the data
            # is insufficient, and the switch must keep its last position. A new check starts healthy: off.
            insufficient_data_health_status="LastKnownStatus", tags={"Name": f"failover switch ({args.region})"},
            opts=child)
        self.description = {"region": args.region, "namespace": SWITCH_NAMESPACE, "metric_name": SWITCH_METRIC,
                            "dimensions": dict(args.dimensions), "alarm_name": args.alarm_name}
        self.register_outputs({"health_check_id": self.health_check.id})


@dataclass
class FailoverArgs:
    zone_id: pulumi.Input[str]
    app_domain: str
    # PRIMARY in the primary stack, SECONDARY in the backup stack.
    failover_role: str
    set_identifier: str
    alb_dns_name: pulumi.Input[str]
    alb_zone_id: pulumi.Input[str]
    # The primary's: its record is healthy only while its endpoint is and the switch is off.
    switch_health_check_id: pulumi.Input[str] | None = None
    # A topic in us-east-1, where Route53's metrics (and so an alarm on the endpoint check) live; the backup,
    # which must not depend on us-east-1, watches its standby from its own region (Monitoring).
    route53_alarm_topic_arn: pulumi.Input[str] | None = None


class Failover(pulumi.ComponentResource):
    # The check on this stack's own endpoint.
    health_check: aws.route53.HealthCheck

    def __init__(self, name: str, args: FailoverArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:dns:Failover", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.health_check = aws.route53.HealthCheck(
            name, type="HTTPS", fqdn=args.alb_dns_name, port=443, resource_path=HEALTH_PATH,
            request_interval=INTERVAL_SECONDS, failure_threshold=FAILURE_THRESHOLD, measure_latency=True,
            enable_sni=True, tags={"Name": f"{args.app_domain} {args.set_identifier}"}, opts=child)
        if args.route53_alarm_topic_arn is not None:
            aws.cloudwatch.MetricAlarm(
                f"{name}-health", region=ROUTE53_METRICS_REGION,
                alarm_description=f"{args.app_domain} is unhealthy in {args.set_identifier}: Route53 fails over",
                namespace="AWS/Route53", metric_name="HealthCheckStatus",
                dimensions={"HealthCheckId": self.health_check.id}, statistic="Minimum", period=60,
                evaluation_periods=1, threshold=1, comparison_operator="LessThanThreshold",
                treat_missing_data="breaching", alarm_actions=[args.route53_alarm_topic_arn],
                ok_actions=[args.route53_alarm_topic_arn], opts=child)
        record_check = self.health_check.id
        if args.switch_health_check_id is not None:
            record_check = aws.route53.HealthCheck(
                f"{name}-serving", type="CALCULATED",
                child_healthchecks=[self.health_check.id, args.switch_health_check_id], child_health_threshold=2,
                tags={"Name": f"{args.app_domain} {args.set_identifier}: endpoint healthy and switch off"},
                opts=child).id
        # Failover rides on health checks (Route53's data plane, served from every region) rather than on
        # changing records, whose control plane lives in us-east-1 and may be out with it.
        aws.route53.Record(
            name, zone_id=args.zone_id, name=args.app_domain, type="A", set_identifier=args.set_identifier,
            failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=args.failover_role)],
            health_check_id=record_check,
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
