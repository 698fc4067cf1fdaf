"""The HTTPS entry point: ALB with an ACM certificate, HTTP->HTTPS redirect, target groups and WAF."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import policy_document

SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# The guide limits a user to 100 requests a minute. WAF counts per client IP over a 5-minute window, so the
# same rate is 500 per IP. Users behind one NAT share an address, which is why this is not stricter.
RATE_LIMIT_PER_5_MINUTES = 100 * 5
# Request headers that carry credentials or sessions.
WAF_REDACTED_HEADERS = ("authorization", "cookie")
WAF = aws.wafv2
LB = aws.lb


@dataclass
class Target:
    port: int
    health_path: str


@dataclass
class LoadBalancerArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_id: pulumi.Input[str]
    domain: str
    zone_id: pulumi.Input[str]
    # ACM's validation record is the same in both regions: the primary writes it, the backup reuses it.
    writes_validation_record: bool
    deletion_protection: bool
    log_bucket: pulumi.Input[str]
    log_prefix: str
    # The ALB checks at creation that it may write to the log bucket: its policy must be in place.
    log_bucket_policy: pulumi.Resource
    # `api` takes /api/*, `web` everything else.
    targets: Mapping[str, Target]
    # WAF's request log: the group name must start with aws-waf-logs-.
    waf_log_group_name: str
    waf_log_retention_days: int
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    region: str


def _visibility(metric: str) -> WAF.WebAclVisibilityConfigArgs:
    return WAF.WebAclVisibilityConfigArgs(cloudwatch_metrics_enabled=True, metric_name=metric,
                                         sampled_requests_enabled=True)


def _managed_rule(name: str, priority: int) -> WAF.WebAclRuleArgs:
    return WAF.WebAclRuleArgs(
        name=name, priority=priority, override_action=WAF.WebAclRuleOverrideActionArgs(none={}),
        statement=WAF.WebAclRuleStatementArgs(managed_rule_group_statement=(
            WAF.WebAclRuleStatementManagedRuleGroupStatementArgs(vendor_name="AWS", name=name))),
        visibility_config=_visibility(name))


class LoadBalancer(pulumi.ComponentResource):
    alb: aws.lb.LoadBalancer
    target_groups: dict[str, aws.lb.TargetGroup]
    https: aws.lb.Listener
    api_rule: aws.lb.ListenerRule

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:services:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        certificate = aws.acm.Certificate(name, domain_name=args.domain, validation_method="DNS", opts=child)
        option = certificate.domain_validation_options[0]
        if args.writes_validation_record:
            aws.route53.Record(f"{name}-certificate-validation", zone_id=args.zone_id,
                               name=option.resource_record_name, type=option.resource_record_type,
                               records=[option.resource_record_value], ttl=300, allow_overwrite=True, opts=child)
        validation = aws.acm.CertificateValidation(
            name, certificate_arn=certificate.arn, validation_record_fqdns=[option.resource_record_name], opts=child)

        self.alb = LB.LoadBalancer(
            name, load_balancer_type="application", internal=False, subnets=args.subnet_ids,
            security_groups=[args.security_group_id], drop_invalid_header_fields=True,
            enable_deletion_protection=args.deletion_protection,
            access_logs=LB.LoadBalancerAccessLogsArgs(bucket=args.log_bucket, prefix=args.log_prefix, enabled=True),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.log_bucket_policy]))
        self.target_groups = {
            service: LB.TargetGroup(
                f"{name}-{service}", port=target.port, protocol="HTTP", target_type="ip", vpc_id=args.vpc_id,
                deregistration_delay=30,
                health_check=LB.TargetGroupHealthCheckArgs(path=target.health_path, matcher="200", interval=15,
                                                           healthy_threshold=2, unhealthy_threshold=3),
                opts=child)
            for service, target in args.targets.items()}

        def forward(service: str) -> list[LB.ListenerDefaultActionArgs]:
            return [LB.ListenerDefaultActionArgs(type="forward", target_group_arn=self.target_groups[service].arn)]

        self.https = LB.Listener(f"{name}-https", load_balancer_arn=self.alb.arn, port=443, protocol="HTTPS",
                                 ssl_policy=SSL_POLICY, certificate_arn=validation.certificate_arn,
                                 default_actions=forward("web"), opts=child)
        self.api_rule = LB.ListenerRule(
            f"{name}-api", listener_arn=self.https.arn, priority=10,
            conditions=[LB.ListenerRuleConditionArgs(
                path_pattern=LB.ListenerRuleConditionPathPatternArgs(values=["/api/*"]))],
            actions=[LB.ListenerRuleActionArgs(type="forward", target_group_arn=self.target_groups["api"].arn)],
            opts=child)
        LB.Listener(f"{name}-http", load_balancer_arn=self.alb.arn, port=80, protocol="HTTP",
                    default_actions=[LB.ListenerDefaultActionArgs(
                        type="redirect", redirect=LB.ListenerDefaultActionRedirectArgs(
                            protocol="HTTPS", port="443", status_code="HTTP_301"))],
                    opts=child)

        acl = WAF.WebAcl(name, scope="REGIONAL", default_action=WAF.WebAclDefaultActionArgs(allow={}),
                         visibility_config=_visibility(f"{name}-acl"), rules=[
                             _managed_rule("AWSManagedRulesCommonRuleSet", 1),
                             _managed_rule("AWSManagedRulesKnownBadInputsRuleSet", 2),
                             WAF.WebAclRuleArgs(
                                 name="rate-per-ip", priority=3, action=WAF.WebAclRuleActionArgs(block={}),
                                 statement=WAF.WebAclRuleStatementArgs(
                                     rate_based_statement=WAF.WebAclRuleStatementRateBasedStatementArgs(
                                         limit=RATE_LIMIT_PER_5_MINUTES, aggregate_key_type="IP",
                                         evaluation_window_sec=300)),
                                 visibility_config=_visibility("rate-per-ip")),
                         ], opts=child)
        WAF.WebAclAssociation(name, resource_arn=self.alb.arn, web_acl_arn=acl.arn, opts=child)
        self._waf_logging(name, args, acl, child)
        self.register_outputs({"dns_name": self.alb.dns_name, "arn": self.alb.arn})

    def _waf_logging(self, name: str, args: LoadBalancerArgs, acl: WAF.WebAcl, child: pulumi.ResourceOptions) -> None:
        group = aws.cloudwatch.LogGroup(f"{name}-waf", name=args.waf_log_group_name,
                                        retention_in_days=args.waf_log_retention_days, kms_key_id=args.kms_key_arn,
                                        opts=child)
        # Our own delivery policy for this group: otherwise WAF grows one shared account-wide policy, which
        # fails once it passes CloudWatch Logs' 5,120-character limit.
        delivery = aws.cloudwatch.LogResourcePolicy(
            f"{name}-waf", policy_name=args.waf_log_group_name, policy_document=policy_document([{
                "Sid": "WafDeliversThisAcl", "Effect": "Allow",
                "Principal": {"Service": "delivery.logs.amazonaws.com"},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": pulumi.Output.concat(group.arn, ":log-stream:*"),
                "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id},
                              "ArnLike": {"aws:SourceArn": pulumi.Output.concat(
                                  "arn:aws:logs:", args.region, ":", args.account_id, ":*")}},
            }]), opts=child)
        WAF.WebAclLoggingConfiguration(
            name, resource_arn=acl.arn, log_destination_configs=[group.arn],
            # Credentials never reach the log. WAF redacts headers by lowercase name.
            redacted_fields=[WAF.WebAclLoggingConfigurationRedactedFieldArgs(
                single_header=WAF.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(name=header))
                for header in WAF_REDACTED_HEADERS],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[delivery]))
