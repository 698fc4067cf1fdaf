"""Secrets Manager secrets: the shared ones (created by primary, replicated to the peer region), and each
region's own: its connection details and its cache's auth token."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

# Characters RDS accepts in a master password (it refuses / @ " and space).
_RDS_PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?"
SHARED_SECRETS = ("jwt-secret", "google-client-id", "database-credentials")
# Shared secrets that exist only when their setting is given; a task is then started without the variable.
OPTIONAL_SECRETS = frozenset({"google-client-id"})


def encrypted_secret(name: str, secret_name: str, kms_key_arn: pulumi.Input[str], parent: pulumi.Resource,
                     replicas: list[aws.secretsmanager.SecretReplicaArgs] | None = None) -> aws.secretsmanager.Secret:
    # Replicas come back after a failback over the standalone copies the evacuation left in the peer region
    # (drills/scenarios.py): the failback first copied the one value that changed there, the password, here.
    return aws.secretsmanager.Secret(name, name=secret_name, kms_key_id=kms_key_arn, recovery_window_in_days=30,
                                     replicas=replicas, force_overwrite_replica_secret=bool(replicas) or None,
                                     opts=pulumi.ResourceOptions(parent=parent))


def stored_secret(name: str, secret_name: str, kms_key_arn: pulumi.Input[str], value: pulumi.Input[str],
                  parent: pulumi.Resource, replicas: list[aws.secretsmanager.SecretReplicaArgs] | None = None,
                  ) -> aws.secretsmanager.SecretVersion:
    """A KMS-encrypted secret, with its value as the only place the value appears: never one without a value.
    What reads it takes the version's `secret_arn`, known once the value is written, so a task waits for the value;
    its `version_id`, new with every value, tells the tasks to restart without saying anything of the value."""
    secret = encrypted_secret(name, secret_name, kms_key_arn, parent, replicas)
    return aws.secretsmanager.SecretVersion(name, secret_id=secret.id, secret_string=pulumi.Output.secret(value),
                                            opts=pulumi.ResourceOptions(parent=parent))


def generated(name: str, length: int, parent: pulumi.Resource, version: int | None = None,
              specials: str | None = None) -> pulumi.Output[str]:
    """A random value; raising `version` (a setting) generates a new one, which is how it rotates."""
    return random.RandomPassword(
        name, length=length, special=specials is not None, override_special=specials,
        keepers={"version": str(version)} if version is not None else None,
        opts=pulumi.ResourceOptions(parent=parent)).result


@dataclass
class SharedSecretsArgs:
    prefix: str
    kms_key_arn: pulumi.Input[str]
    # None while the peer region is active: its copies are standalone then (an evacuation made them so), and
    # replicating again would overwrite the password its promoted writer rotates.
    replica_region: str | None
    replica_kms_key_arn: pulumi.Input[str]
    # secure: config values; a missing JWT secret is generated, a missing Google client id is not passed.
    jwt_secret: str | None
    google_client_id: str | None


class SharedSecrets(pulumi.ComponentResource):
    """Secrets both regions use, so the standby can run without reaching the primary's region."""

    arns: dict[str, pulumi.Output[str]]
    # Name -> the version id of the value Pulumi wrote (jwt-secret, google-client-id): a new value, a new id.
    versions: dict[str, pulumi.Output[str]]
    db_password: pulumi.Output[str]
    # The master password's secret, without a value: PasswordRotation writes it with the writer's address.
    database_credentials: aws.secretsmanager.Secret

    def __init__(self, name: str, args: SharedSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:security:SharedSecrets", name, None, opts)

        # Generated once: Secrets Manager rotates it from then on.
        self.db_password = generated(f"{name}-db-password", 40, self, specials=_RDS_PASSWORD_SPECIALS)
        jwt = args.jwt_secret if args.jwt_secret is not None else generated(f"{name}-jwt-secret", 64, self)
        values: dict[str, pulumi.Input[str]] = {"jwt-secret": jwt}
        # ECS cannot start a task whose secret has no value: an unset client id is no secret at all, and the
        # api runs without GOOGLE_CLIENT_ID (Google sign-in off) until it is set.
        if args.google_client_id is None:
            pulumi.log.warn("googleClientId is not set: the api starts without GOOGLE_CLIENT_ID (Google sign-in "
                            "off); set it with `pulumi config set --secret trading-platform:googleClientId ...`",
                            resource=self)
        else:
            values["google-client-id"] = args.google_client_id
        replicas = [aws.secretsmanager.SecretReplicaArgs(region=args.replica_region,
                                                         kms_key_id=args.replica_kms_key_arn)
                    ] if args.replica_region else []
        stored = {key: stored_secret(f"{name}-{key}", f"{args.prefix}/{key}", args.kms_key_arn, value, self,
                                     replicas)
                  for key, value in values.items()}
        self.arns = {key: version.secret_arn for key, version in stored.items()}
        self.versions = {key: version.version_id for key, version in stored.items()}
        self.database_credentials = encrypted_secret(f"{name}-database-credentials",
                                                     f"{args.prefix}/database-credentials", args.kms_key_arn, self,
                                                     replicas)

        self.register_outputs({"arns": self.arns})


def shared_only(arns: dict[str, str]) -> list[str]:
    """The shared secrets' ARNs among a stack's `secret_arns` (which also hold its region's own)."""
    return [arns[name] for name in SHARED_SECRETS if name in arns]


def replica_arn(arn: str, region: str) -> str:
    """A replicated secret keeps its ARN but for the region."""
    parts = arn.split(":")
    parts[3] = region
    return ":".join(parts)


@dataclass
class ConnectionSecretArgs:
    secret_name: str
    kms_key_arn: pulumi.Input[str]
    db_host: pulumi.Input[str]
    db_port: pulumi.Input[int]
    db_name: str
    redis_host: pulumi.Input[str]
    redis_port: pulumi.Input[int]


class ConnectionSecret(pulumi.ComponentResource):
    """This region's endpoints, which the services read with the shared credentials."""

    arn: pulumi.Output[str]

    def __init__(self, name: str, args: ConnectionSecretArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:security:ConnectionSecret", name, None, opts)
        value = pulumi.Output.json_dumps({
            "db_host": args.db_host, "db_port": args.db_port, "db_name": args.db_name,
            "redis_host": args.redis_host, "redis_port": args.redis_port, "redis_tls": True,
        })
        self.arn = stored_secret(name, args.secret_name, args.kms_key_arn, value, self).secret_arn
        self.register_outputs({"arn": self.arn})


@dataclass
class CacheAuthTokenArgs:
    secret_name: str
    kms_key_arn: pulumi.Input[str]
    # cache.authTokenVersion: a new version generates a new token.
    version: int
    # The primary's token where this region's cache shares it (a Global Datastore's secondary); None: generated.
    value: pulumi.Input[str] | None = None
    # Where the token is read in the peer region too (the primary's, for a Global Datastore's secondary).
    replicas: list[aws.secretsmanager.SecretReplicaArgs] | None = None


class CacheAuthToken(pulumi.ComponentResource):
    """This region's cache auth token, in a secret of this region, which its cache and its tasks use: a new token
    reaches both in this region's `pulumi up`, whatever the other region's deployment does."""

    value: pulumi.Output[str]
    arn: pulumi.Output[str]
    # New with every token: the tasks' restart marker (components/service.py).
    version_id: pulumi.Output[str]

    def __init__(self, name: str, args: CacheAuthTokenArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:security:CacheAuthToken", name, None, opts)
        # ElastiCache tokens allow few specials; length gives the strength instead.
        value = args.value if args.value is not None else generated(name, 64, self, args.version)
        self.value = pulumi.Output.secret(value)
        version = stored_secret(name, args.secret_name, args.kms_key_arn, value, self, args.replicas)
        self.arn, self.version_id = version.secret_arn, version.version_id
        self.register_outputs({"arn": self.arn})
