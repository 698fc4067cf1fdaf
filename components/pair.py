"""What exists once for the pair of stacks: the primary creates it, the backup reads it from the primary's outputs
through its stack reference. Each function is one such thing, both sides of it, so that `__main__.py` reads as
the platform's outline. (What changes with the active region is in regions/roles.py.)

The resources keep the logical names and parents they had in `__main__.py`: moving them here changes no URN.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.database import WriterCredentials
from components.dns import HostedZone, HostedZoneArgs
from components.kms import StackKey, StackKeyArgs
from components.registry import Images, ImagesArgs, ReplicatedImages, ReplicatedImagesArgs
from components.secrets import (
    SHARED_SECRETS,
    CacheAuthToken,
    CacheAuthTokenArgs,
    SharedSecrets,
    SharedSecretsArgs,
    replica_arn,
)
from regions.model import StackSettings
from regions.roles import roles
from regions.settings import check_peer_region


@dataclass
class Pair:
    """This stack's side of the pair."""

    settings: StackSettings
    key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    opts: pulumi.ResourceOptions
    invoke_opts: pulumi.InvokeOutputOptions
    # The backup's reference to the primary stack; None in the primary.
    primary: pulumi.StackReference | None

    @property
    def is_primary(self) -> bool:
        return self.primary is None

    def from_primary(self, output: str) -> pulumi.Output:
        assert self.primary is not None
        return self.primary.require_output(output)


def pair(settings: StackSettings, key_arn: pulumi.Input[str], account_id: pulumi.Input[str],
         opts: pulumi.ResourceOptions, invoke_opts: pulumi.InvokeOutputOptions) -> Pair:
    if settings.role == "primary":
        return Pair(settings, key_arn, account_id, opts, invoke_opts, None)
    primary = pulumi.StackReference("primary", stack_name=settings.peer_stack)
    pulumi.export("peer_region", primary.get_output("region").apply(partial(check_peer_region, settings)))
    return Pair(settings, key_arn, account_id, opts, invoke_opts, primary)


@dataclass
class Secrets:
    # Name -> ARN in this region (the backup's are the replicas).
    arns: pulumi.Input[dict[str, str]]
    # Name -> the version id of the value the primary wrote (jwt-secret, google-client-id when set), the same in both
    # stacks: the tasks that read one restart when it changes (components/service.py).
    versions: pulumi.Input[dict[str, str]]
    # The keys the services decrypt them with: the primary's in us-east-1, its replica key in us-west-2.
    key_arns: list[pulumi.Input[str]]
    # The one key encrypting the shared secrets in this region: the primary's stack key, or its replica key.
    shared_key_arn: pulumi.Input[str]
    # The master user a writer is created with (the primary only: it creates the first password).
    credentials: WriterCredentials | None
    # The primary's key in the peer region, for the secrets' and the images' replicas (the primary only).
    replica_key: StackKey | None
    owner: SharedSecrets | None
    # The database-credentials secret whose new versions restart this region's services: the active region's,
    # which rotates; the backup's standby hears of the primary's through the events the primary forwards.
    rotated_credentials_arn: pulumi.Output[str]


def shared_secrets(side: Pair) -> Secrets:
    """The primary creates the shared secrets with replicas in the peer region; the backup reads the replicas, which
    an evacuation makes standalone (regions/roles.py)."""
    s = side.settings
    region = s.region
    active = roles(s).active
    if side.is_primary:
        # Primary deploys first, so the replicas cannot use the backup stack's key: they get their own.
        replica_key = StackKey("replica-key", StackKeyArgs(
            alias=f"{s.name_prefix}/replicas", account_id=side.account_id, region=region.peer,
            partition=region.partition, for_logs_and_alarms=False, for_secret_replicas=True), opts=side.opts)
        owner = SharedSecrets("shared-secrets", SharedSecretsArgs(
            prefix=s.name_prefix, kms_key_arn=side.key_arn, replica_region=region.peer if active else None,
            replica_kms_key_arn=replica_key.arn, jwt_secret=s.secrets.jwt_secret,
            google_client_id=s.secrets.google_client_id,
        ), opts=side.opts)
        # The backup stack's services decrypt the replicas with it.
        pulumi.export("replica_key_arn", replica_key.arn)
        # The backup's tasks restart with the primary's when a value they read changes.
        pulumi.export("secret_versions", owner.versions)
        return Secrets(arns=owner.arns, versions=owner.versions, key_arns=[side.key_arn],
                       shared_key_arn=side.key_arn,
                       credentials=WriterCredentials(username=s.database.username, db_name=s.database.name,
                                                     password=owner.db_password),
                       replica_key=replica_key, owner=owner,
                       rotated_credentials_arn=owner.database_credentials.arn)
    arns = side.from_primary("secret_arns").apply(
        lambda found: {name: replica_arn(found[name], region.name) for name in SHARED_SECRETS if name in found})
    replica_key_arn = side.from_primary("replica_key_arn")
    return Secrets(arns=arns, versions=side.from_primary("secret_versions"), key_arns=[side.key_arn, replica_key_arn],
                   shared_key_arn=replica_key_arn,
                   credentials=None, replica_key=None, owner=None,
                   rotated_credentials_arn=side.from_primary("secret_arns").apply(
                       lambda found: replica_arn(found["database-credentials"], s.active_region)))


def cache_auth_token(side: Pair, secrets: Secrets) -> CacheAuthToken:
    """Each region's cache and tasks use a token of that region, so one `pulumi up` changes both there (the services
    wait for the cache: __main__.py); a token shared through a replica would reach the backup's tasks at the
    primary's `up`, before the backup's cache takes it.

    With cache.globalDatastore the caches share the primary's token. The ElastiCache API reference gives the datastore
    one AuthTokenEnabled and documents no token of a secondary's own; a shared one is right whichever holds: the
    primary replicates its secret to the peer region, and the backup copies it into its own, which its cache and
    tasks use. The backup's tasks still change with its cache, at the backup's `up` (the primary's first)."""
    s = side.settings
    region = s.region
    args = CacheAuthTokenArgs(secret_name=token_secret_name(s.name_prefix, region.name), kms_key_arn=side.key_arn,
                              version=s.cache.auth_token_version)
    if s.cache.global_datastore and side.is_primary:
        # Whichever region is active: nothing writes the replica, so an evacuation has nothing to detach.
        assert secrets.replica_key is not None
        args.replicas = [aws.secretsmanager.SecretReplicaArgs(region=region.peer, kms_key_id=secrets.replica_key.arn)]
    elif s.cache.global_datastore:
        # The replica keeps the primary's name.
        args.value = pulumi.Output.secret(aws.secretsmanager.get_secret_version_output(
            secret_id=token_secret_name(s.name_prefix, region.peer), opts=side.invoke_opts).secret_string)
    return CacheAuthToken("cache-auth-token", args, opts=side.opts)


def token_secret_name(prefix: str, region: str) -> str:
    return f"{prefix}/{region}/redis-auth-token"


def zone_id(side: Pair) -> pulumi.Output[str]:
    """The primary looks the zone up (or creates it); the backup takes the primary's, so both write to one."""
    if side.is_primary:
        return HostedZone("zone", HostedZoneArgs(zone_name=side.settings.domain.zone_name,
                                                 create=side.settings.create_zone), opts=side.opts).zone_id
    return side.from_primary("hosted_zone_id")


def joined_global_datastore(side: Pair) -> pulumi.Output[str] | None:
    """cache.globalDatastore: the primary's cache creates the Global Datastore (components/cache.py), the backup's joins
    it as a secondary by the id the primary exports. AWS makes that id at creation (a prefix of the creating region
    before the suffix), so it is read, not derived. It stays the primary's whichever region is active: AWS moves the
    primary role with FailoverGlobalReplicationGroup, never by creating it again (which would make a new id and wipe
    the region that joins it)."""
    if side.is_primary or not side.settings.cache.global_datastore:
        return None
    return side.from_primary("cache_global_datastore")


def images(side: Pair, secrets: Secrets) -> Images | ReplicatedImages:
    """The primary builds once and replicates to the peer region; the backup runs the same digests from its own
    ECR."""
    s = side.settings
    if side.is_primary:
        assert secrets.replica_key is not None
        built = Images("images", ImagesArgs(
            repository_prefix=s.name_prefix, settings=s.images, kms_key_arn=side.key_arn, project_dir=Path.cwd(),
            account_id=side.account_id, replica_region=s.region.peer, replica_kms_key_arn=secrets.replica_key.arn,
            replica_tags={**s.cost_tags, "Region": s.region.peer}), opts=side.opts)
        pulumi.export("image_refs", built.refs)
        return built
    return ReplicatedImages("images", ReplicatedImagesArgs(
        source_refs=side.from_primary("image_refs"), source_region=s.region.peer, region=s.region.name,
        account_id=side.account_id, repository_prefix=s.name_prefix, images=s.images.names), opts=side.opts)
