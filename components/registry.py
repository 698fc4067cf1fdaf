"""The platform's images: built once by the primary into its ECR and replicated to the peer region, so both
regions run the same digest and the standby pulls from its own region.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components.iam import policy_document, service_role
from regions.model import ImageSettings


def lifecycle_policy(keep: int) -> str:
    return json.dumps({"rules": [{
        "rulePriority": 1,
        "description": f"keep the last {keep} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
        "action": {"type": "expire"},
    }]})


def context_fingerprint(context: Path, dockerfile: Path) -> str:
    """A digest of what a build reads: the context's files (less .dockerignore's plain patterns) and the
    Dockerfile. The pushed tag carries it, so changed sources never re-push an existing immutable tag."""
    ignore_file = context / ".dockerignore"
    patterns = [line.strip() for line in ignore_file.read_text().splitlines()
                if line.strip() and not line.startswith("#")] if ignore_file.is_file() else []
    # A negated pattern re-includes files: hash everything rather than guess.
    if any(p.startswith("!") for p in patterns):
        patterns = []
    digest = hashlib.sha256()
    # Docker reads the Dockerfile even when .dockerignore names it.
    if dockerfile.is_file():
        digest.update(b"Dockerfile\0" + dockerfile.read_bytes() + b"\0")
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        relative = path.relative_to(context).as_posix()
        if ".git" in path.relative_to(context).parts or any(
                fnmatch.fnmatch(relative, p.strip("/")) or relative.startswith(p.strip("/") + "/") for p in patterns):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass
class ImagesArgs:
    repository_prefix: str
    settings: ImageSettings
    kms_key_arn: pulumi.Input[str]
    # Where `context` paths are relative to (the project directory).
    project_dir: Path
    account_id: pulumi.Input[str]
    replica_region: str
    # A key in the replica region for the repositories ECR creates there, and their cost tags.
    replica_kms_key_arn: pulumi.Input[str]
    replica_tags: Mapping[str, str]


class Images(pulumi.ComponentResource):
    """`refs[name]` is what a task definition runs: a digest for built images, the setting's URI otherwise."""

    refs: dict[str, pulumi.Output[str]]
    repository_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ImagesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:services:Images", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"{args.repository_prefix}/"
        replication = self._replication(name, args, prefix)
        self.refs, self.repository_arns = {}, {}
        for image, source in args.settings.sources.items():
            label = f"{name}-{image}"
            repository = aws.ecr.Repository(
                label, name=f"{prefix}{image}", image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=args.kms_key_arn)],
                opts=child)
            aws.ecr.LifecyclePolicy(label, repository=repository.name, policy=lifecycle_policy(args.settings.keep),
                                    opts=child)
            self.repository_arns[image] = repository.arn
            if source.uri is not None:
                self.refs[image] = pulumi.Output.from_input(source.uri)
                continue
            context = args.project_dir / source.context
            fingerprint = context_fingerprint(context, context / source.dockerfile)
            token = aws.ecr.get_authorization_token_output(registry_id=repository.registry_id,
                                                          opts=pulumi.InvokeOutputOptions(parent=self))
            built = docker.Image(
                label,
                # Relative to the project directory, where the engine runs the program.
                build=docker.DockerBuildArgs(context=source.context,
                                             dockerfile=f"{source.context}/{source.dockerfile}",
                                             platform="linux/amd64"),
                image_name=pulumi.Output.concat(repository.repository_url, ":", args.settings.tag, "-",
                                                fingerprint[:12]),
                registry=docker.RegistryArgs(server=repository.repository_url, username=token.user_name,
                                             password=pulumi.Output.secret(token.password)),
                # Only a push after replication is set up reaches the replica region.
                opts=pulumi.ResourceOptions(parent=self, depends_on=replication))
            # Deploy by digest: what runs is exactly what was scanned, whatever happens to tags.
            self.refs[image] = built.repo_digest
        self.register_outputs({"refs": self.refs})

    def _replication(self, name: str, args: ImagesArgs, prefix: str) -> list[pulumi.Resource]:
        """Replicate the platform's repositories to the replica region, where ECR creates them from a template
        with our settings (by default it would create mutable, AES-256 repositories without lifecycle)."""
        child = pulumi.ResourceOptions(parent=self)
        role = service_role(f"{name}-replica-repositories", "ecr.amazonaws.com", self)
        aws.iam.RolePolicy(f"{name}-replica-repositories", role=role.id, policy=policy_document([
            {"Sid": "CreateReplicaRepositories", "Effect": "Allow",
             "Action": ["ecr:CreateRepository", "ecr:ReplicateImage", "ecr:TagResource"],
             "Resource": pulumi.Output.concat("arn:aws:ecr:", args.replica_region, ":", args.account_id,
                                              ":repository/", prefix, "*")},
            {"Sid": "EncryptReplicaRepositories", "Effect": "Allow",
             "Action": ["kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"],
             "Resource": args.replica_kms_key_arn},
        ]), opts=child)
        # ECR takes a template's KMS key only through a custom role; the key must be in the template's region.
        template = aws.ecr.RepositoryCreationTemplate(
            name, region=args.replica_region, prefix=prefix.rstrip("/"), applied_fors=["REPLICATION"],
            description=f"{prefix}* as replicated from the primary region",
            image_tag_mutability="IMMUTABLE", custom_role_arn=role.arn,
            encryption_configurations=[aws.ecr.RepositoryCreationTemplateEncryptionConfigurationArgs(
                encryption_type="KMS", kms_key=args.replica_kms_key_arn)],
            lifecycle_policy=lifecycle_policy(args.settings.keep), resource_tags=dict(args.replica_tags), opts=child)
        # One replication configuration per registry and region: this stack owns the account's in its region.
        configuration = aws.ecr.ReplicationConfiguration(
            name, replication_configuration=aws.ecr.ReplicationConfigurationReplicationConfigurationArgs(
                rules=[aws.ecr.ReplicationConfigurationReplicationConfigurationRuleArgs(
                    destinations=[aws.ecr.ReplicationConfigurationReplicationConfigurationRuleDestinationArgs(
                        region=args.replica_region, registry_id=args.account_id)],
                    repository_filters=[
                        aws.ecr.ReplicationConfigurationReplicationConfigurationRuleRepositoryFilterArgs(
                            filter=prefix, filter_type="PREFIX_MATCH")])]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[template]))
        return [template, configuration]


def replica_reference(ref: str, source_region: str, region: str) -> tuple[str, str] | None:
    """`ACCOUNT.dkr.ecr.us-east-1.amazonaws.com/REPO@sha256:D` -> (us-west-2 registry, REPO); None for an image
    outside the source region's ECR (pulled as it is)."""
    registry, _, rest = ref.partition("/")
    account, _, host = registry.partition(".")
    if host != f"dkr.ecr.{source_region}.amazonaws.com" or "@" not in rest:
        return None
    return f"{account}.dkr.ecr.{region}.amazonaws.com", rest.split("@")[0]


@dataclass
class ReplicatedImagesArgs:
    # The primary's `image_refs` output: image -> repository@digest in the primary's region.
    source_refs: pulumi.Input[Mapping[str, str]]
    source_region: str
    region: str
    account_id: pulumi.Input[str]
    repository_prefix: str
    images: tuple[str, ...]


class ReplicatedImages(pulumi.ComponentResource):
    """The primary's images as replicated into this region: the same digests, pulled from this region's ECR.
    Each is looked up here, so a deployment fails clearly until replication has delivered it."""

    refs: dict[str, pulumi.Output[str]]
    repository_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ReplicatedImagesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:services:ReplicatedImages", name, None, opts)
        sources = pulumi.Output.from_input(args.source_refs)
        self.refs, self.repository_arns = {}, {}
        for image in args.images:
            self.refs[image] = sources.apply(lambda refs, image=image: self._local(refs[image], args))
            self.repository_arns[image] = pulumi.Output.concat(
                "arn:aws:ecr:", args.region, ":", args.account_id, ":repository/", args.repository_prefix, "/", image)
        self.register_outputs({"refs": self.refs})

    def _local(self, ref: str, args: ReplicatedImagesArgs) -> pulumi.Output[str] | str:
        replica = replica_reference(ref, args.source_region, args.region)
        if replica is None:
            return ref
        registry, repository = replica
        found = aws.ecr.get_image_output(repository_name=repository, image_digest=ref.split("@")[1],
                                         opts=pulumi.InvokeOutputOptions(parent=self))
        return pulumi.Output.concat(registry, "/", repository, "@", found.image_digest)
