"""ECR repositories for the stack's images, and the images: built and pushed, or named in settings."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from regions.model import ImageSettings


@dataclass
class ImagesArgs:
    repository_prefix: str
    settings: ImageSettings
    kms_key_arn: pulumi.Input[str]


class Images(pulumi.ComponentResource):
    """`refs[name]` is what a task definition runs: a digest for built images, the setting's URI otherwise."""

    refs: dict[str, pulumi.Output[str]]
    repository_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ImagesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:services:Images", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.refs, self.repository_arns = {}, {}
        for image, source in args.settings.sources.items():
            label = f"{name}-{image}"
            repository = aws.ecr.Repository(
                label, name=f"{args.repository_prefix}/{image}", image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=args.kms_key_arn)],
                opts=child)
            aws.ecr.LifecyclePolicy(label, repository=repository.name, policy=json.dumps({"rules": [{
                "rulePriority": 1,
                "description": f"keep the last {args.settings.keep} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                              "countNumber": args.settings.keep},
                "action": {"type": "expire"},
            }]}), opts=child)
            self.repository_arns[image] = repository.arn
            if source.uri is not None:
                self.refs[image] = pulumi.Output.from_input(source.uri)
                continue
            token = aws.ecr.get_authorization_token_output(registry_id=repository.registry_id,
                                                          opts=pulumi.InvokeOutputOptions(parent=self))
            built = docker.Image(
                label,
                # Relative to the project directory, where the engine runs the program.
                build=docker.DockerBuildArgs(context=source.context,
                                             dockerfile=f"{source.context}/{source.dockerfile}",
                                             platform="linux/amd64"),
                image_name=pulumi.Output.concat(repository.repository_url, ":", args.settings.tag),
                registry=docker.RegistryArgs(server=repository.repository_url, username=token.user_name,
                                             password=pulumi.Output.secret(token.password)),
                opts=child)
            # Deploy by digest: what runs is exactly what was scanned, whatever happens to tags.
            self.refs[image] = built.repo_digest
        self.register_outputs({"refs": self.refs})
