"""Automatic rotation of the database master password, and the restarts that follow it.

RDS cannot manage the master password of an instance that has a cross-region read replica, so Secrets
Manager rotates it with AWS's single-user PostgreSQL rotation function (from the Serverless Application
Repository), in the active region. While that is the primary's, the new value replicates to the peer region's
secret, and the replica receives the password change with the WAL: the standby stays usable. After an
evacuation the backup's copy is standalone and rotates there, against the promoted writer. Both regions deploy
the function, so an evacuation needs nothing created in a hurry. ECS reads secrets only when a task starts, so
every new AWSCURRENT version restarts the services that read it, in both regions while they replicate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import policy_document, service_role

# AWS's rotation function for a PostgreSQL user that changes its own password; the version is pinned, so
# an update of the application is a reviewed change.
ROTATION_APPLICATION = ("arn:aws:serverlessrepo:us-east-1:297356227824:applications/"
                        "SecretsManagerRDSPostgreSQLRotationSingleUser")
ROTATION_APPLICATION_VERSION = "1.1.671"
# Characters RDS refuses in a master password.
EXCLUDED_PASSWORD_CHARACTERS = "/@\"' \\"
# Secrets Manager's own event when a staging label moves: AWSCURRENT on a new version means a new password.
LABEL_UPDATED = "Secret Label Updated"
# What a state machine's role needs for Step Functions to deliver its execution logs, on "*" as the Step
# Functions Developer Guide gives it ("IAM policies for logging to CloudWatch Logs"): CloudWatch Logs' vended
# log delivery, which Step Functions sets up when the state machine is created or updated, and which it
# refuses to create the state machine without.
LOG_DELIVERY_ACTIONS = ("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                        "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                        "logs:DescribeResourcePolicies", "logs:DescribeLogGroups")
# Step Functions adds each destination to a CloudWatch Logs resource policy (at most 5,120 characters) unless
# the group's name starts with /aws/vendedlogs/ (Developer Guide, "Avoiding CloudWatch Logs resource policy
# size restrictions"); the console names them so.
VENDED_LOG_GROUP_PREFIX = "/aws/vendedlogs/states/"
# As the services' and the database's logs keep by default (services.logRetentionDays, database.logRetentionDays).
EXECUTION_LOG_RETENTION_DAYS = 90


@dataclass
class FirstValue:
    """The secret's first value; the rotation function needs the engine, host, port and database in it."""

    username: str
    password: pulumi.Input[str]
    host: pulumi.Input[str]
    port: int
    db_name: str


@dataclass
class PasswordRotationArgs:
    secret_id: pulumi.Input[str]
    # Written by the stack that creates the secret; None where the value came with the secret (the backup's copy).
    first_value: FirstValue | None
    every_days: int
    function_name: str
    region: str
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    # Only while this region's database is the writer: after a failover the old writer's rotation would
    # change a password the promoted database never got.
    rotate: bool = True


class PasswordRotation(pulumi.ComponentResource):
    # The secret's ARN, known once its first value is written: tasks that read it wait for it.
    secret_arn: pulumi.Output[str]

    def __init__(self, name: str, args: PasswordRotationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:security:PasswordRotation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        first_value = self._first_value(name, args.secret_id, args.first_value) if args.first_value else None
        function = aws.serverlessrepository.CloudFormationStack(
            name, name=args.function_name, application_id=ROTATION_APPLICATION,
            semantic_version=ROTATION_APPLICATION_VERSION,
            # The application creates the function's role and its invoke permission for Secrets Manager.
            capabilities=["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"],
            parameters={
                "functionName": args.function_name,
                "endpoint": f"https://secretsmanager.{args.region}.amazonaws.com",
                "vpcSubnetIds": pulumi.Output.from_input(args.subnet_ids).apply(",".join),
                "vpcSecurityGroupIds": args.security_group_id,
                "kmsKeyArn": args.kms_key_arn,
                "excludeCharacters": EXCLUDED_PASSWORD_CHARACTERS,
            },
            opts=child)
        if args.rotate:
            self._rotation(name, args, function, first_value)
        self.secret_arn = first_value.secret_arn if first_value else pulumi.Output.from_input(args.secret_id)
        self.register_outputs({"secret_arn": self.secret_arn})

    def _first_value(self, name: str, secret_id: pulumi.Input[str],
                     first: FirstValue) -> aws.secretsmanager.SecretVersion:
        # Written once: from then on the rotation function owns the value, and a later `pulumi up` must not
        # put the first password back.
        value = pulumi.Output.json_dumps({"engine": "postgres", "host": first.host, "port": first.port,
                                          "dbname": first.db_name, "username": first.username,
                                          "password": first.password})
        return aws.secretsmanager.SecretVersion(
            name, secret_id=secret_id, secret_string=pulumi.Output.secret(value),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]))

    def _rotation(self, name: str, args: PasswordRotationArgs, function: aws.serverlessrepository.CloudFormationStack,
                  first_value: aws.secretsmanager.SecretVersion | None) -> None:
        aws.secretsmanager.SecretRotation(
            name, secret_id=args.secret_id,
            rotation_lambda_arn=function.outputs.apply(lambda outputs: outputs["RotationLambdaARN"]),
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                automatically_after_days=args.every_days),
            # The first rotation waits for the schedule: the services that start now read the first password.
            # Secrets Manager still tests the function at once, which needs the first value and the database.
            rotate_immediately=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[first_value] if first_value else None))


@dataclass
class RestartOnNewSecretArgs:
    # The rotated secret, as the region that rotates it names it: its events carry that ARN.
    secret_arn: pulumi.Input[str]
    region: str
    account_id: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    # Services that read the secret, restarted on a new version.
    service_names: Sequence[pulumi.Input[str]]
    # Let the replica catch up before tasks read it (the peer region).
    wait_seconds: int = 0
    # Also send the events to this region's default bus, where the peer stack restarts its services.
    forward_to_region: str | None = None
    # The stack key, for the execution log group; without it CloudWatch Logs encrypts with its own key.
    kms_key_arn: pulumi.Input[str] | None = None
    log_retention_days: int = EXECUTION_LOG_RETENTION_DAYS


class RestartOnNewSecret(pulumi.ComponentResource):
    """An EventBridge rule on the secret's new AWSCURRENT version, starting a state machine that forces a new
    deployment of each service (Step Functions' ECS SDK integration: no code of ours runs). Every execution
    event goes to a log group of its own, without the states' input and output (see _logging)."""

    def __init__(self, name: str, args: RestartOnNewSecretArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:security:RestartOnNewSecret", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        service_arns = [pulumi.Output.concat("arn:aws:ecs:", args.region, ":", args.account_id, ":service/",
                                             args.cluster_name, "/", service) for service in args.service_names]
        machine_role = service_role(f"{name}-machine", "states.amazonaws.com", self, source_account=args.account_id)
        restart_policy = aws.iam.RolePolicy(f"{name}-machine", role=machine_role.id, policy=policy_document([
            {"Sid": "RestartServices", "Effect": "Allow", "Action": "ecs:UpdateService", "Resource": service_arns}]),
            opts=child)
        logging_configuration, logging_policy = self._logging(name, args, machine_role)
        machine = aws.sfn.StateMachine(
            name, role_arn=machine_role.arn,
            definition=pulumi.Output.all(args.cluster_name, *args.service_names).apply(
                lambda values: json.dumps(restart_definition(values[0], values[1:], args.wait_seconds))),
            logging_configuration=logging_configuration,
            # Step Functions checks the role may deliver the logs when it creates the state machine: the
            # policies first (Pulumi would otherwise create them at the same time, the role being all it reads).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[restart_policy, logging_policy]))

        rule = aws.cloudwatch.EventRule(name, description="A new password in the database credentials",
                                        event_pattern=pulumi.Output.json_dumps(new_version_pattern(args.secret_arn)),
                                        opts=child)
        events_role = service_role(f"{name}-events", "events.amazonaws.com", self, source_account=args.account_id)
        statements: list[dict] = [{"Sid": "StartRestart", "Effect": "Allow", "Action": "states:StartExecution",
                                   "Resource": machine.arn}]
        aws.cloudwatch.EventTarget(f"{name}-restart", rule=rule.name, arn=machine.arn, role_arn=events_role.arn,
                                   opts=child)
        if args.forward_to_region:
            peer_bus = pulumi.Output.concat("arn:aws:events:", args.forward_to_region, ":", args.account_id,
                                            ":event-bus/default")
            statements.append({"Sid": "ForwardToPeerRegion", "Effect": "Allow", "Action": "events:PutEvents",
                               "Resource": peer_bus})
            aws.cloudwatch.EventTarget(f"{name}-forward", rule=rule.name, arn=peer_bus, role_arn=events_role.arn,
                                       opts=child)
        aws.iam.RolePolicy(f"{name}-events", role=events_role.id, policy=policy_document(statements), opts=child)
        # What an evacuation disables in the new active region when it watches the old region's secret
        # (drills/scenarios.py), and what it reports.
        self.description = pulumi.Output.all(rule.name, args.secret_arn).apply(
            lambda values: {"rule_name": values[0], "secret_arn": values[1]})
        self.register_outputs({"state_machine_arn": machine.arn, "description": self.description})

    def _logging(self, name: str, args: RestartOnNewSecretArgs, machine_role: aws.iam.Role) -> tuple[
            aws.sfn.StateMachineLoggingConfigurationArgs, aws.iam.RolePolicy]:
        """Level ALL: an execution is a handful of events once per rotation, and which restart failed or was
        retried is what the events tell. Without execution data: the input is Secrets Manager's event (the
        secret's ARN and version ids, never its value) and each state's output the whole ECS service that
        UpdateService returns (task definition, subnets, security groups): nothing that diagnoses a restart,
        and no reason to copy it into logs. X-Ray tracing stays off: it would add xray:* on "*" to the role
        for a machine whose only call is UpdateService, which its logged events already show."""
        group = aws.cloudwatch.LogGroup(
            f"{name}-executions", name=pulumi.Output.concat(VENDED_LOG_GROUP_PREFIX, args.cluster_name, "-", name),
            retention_in_days=args.log_retention_days, kms_key_id=args.kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self))
        policy = aws.iam.RolePolicy(f"{name}-machine-logs", role=machine_role.id, policy=policy_document([
            {"Sid": "DeliverExecutionLogs", "Effect": "Allow", "Action": list(LOG_DELIVERY_ACTIONS),
             "Resource": "*"}]), opts=pulumi.ResourceOptions(parent=self))
        # Step Functions takes the log group's ARN with its streams' wildcard; the provider's arn has none.
        return aws.sfn.StateMachineLoggingConfigurationArgs(
            level="ALL", include_execution_data=False,
            log_destination=pulumi.Output.concat(group.arn, ":*")), policy


def new_version_pattern(secret_arn: pulumi.Input[str]) -> dict:
    return {"source": ["aws.secretsmanager"], "detail-type": [LABEL_UPDATED], "resources": [secret_arn],
            "detail": {"labelUpdated": ["AWSCURRENT"]}}


def restart_definition(cluster: str, services: Sequence[str], wait_seconds: int) -> dict:
    """Amazon States Language: optionally wait, then force a new deployment of every service in parallel."""
    restart = {"Type": "Parallel", "End": True, "Branches": [{
        "StartAt": service,
        "States": {service: {
            "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ecs:updateService",
            "Parameters": {"Cluster": cluster, "Service": service, "ForceNewDeployment": True},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 5, "BackoffRate": 2}],
            "End": True}},
    } for service in services]}
    if not wait_seconds:
        return {"StartAt": "Restart", "States": {"Restart": restart}}
    return {"StartAt": "WaitForReplica", "States": {
        "WaitForReplica": {"Type": "Wait", "Seconds": wait_seconds, "Next": "Restart"}, "Restart": restart}}
