"""Evaluate the Pulumi program for one stack file under the SDK's mocks, as the engine would run it.

One mechanism for synth and the tests: `evaluate` returns every resource as registered (type, name,
URN, parent, provider, inputs) and the stack's exports.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import runpy
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import resource as resource_runtime
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.settings import ROOT as ROOT_RESOURCE
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_in_stack

from components.registry import context_fingerprint
from regions import console
from regions.settings import OFFLINE, PROJECT, SettingsError, StackSettings, load_settings
from regions.stackfile import StackFileError, read_stack_file, stack_file_name
from synth.mocks import GLOBAL_DATASTORE, AwsMocks, Registration
from synth.stored import stored

REPO = Path(__file__).resolve().parent.parent
PROGRAM = REPO / "__main__.py"
PEER_KEY = f"{PROJECT}:peerStack"


@dataclass(frozen=True)
class Evaluation:
    stack: str
    region: str
    resources: list[Registration]
    outputs: dict[str, Any]

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.resources if r.type == typ]

    def named(self, typ: str, name: str) -> Registration:
        found = [r for r in self.resources if r.type == typ and r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources of type {typ} named {name}")
        return found[0]


class _LoopClosingExecutor(ThreadPoolExecutor):
    """The mock monitor runs in executor threads and gives each an event loop that nobody closes;
    left to the garbage collector they fail noisily. Here each worker gets its loop up front, and
    the loops are closed with the pool."""

    def __init__(self) -> None:
        self._loops: list[asyncio.AbstractEventLoop] = []
        super().__init__(thread_name_prefix="synth-monitor", initializer=self._give_loop)

    def _give_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loops.append(loop)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=True, cancel_futures=cancel_futures)
        for loop in self._loops:
            loop.close()


def _normalize(value: Any, path: str = "", secret_paths: list[str] | None = None) -> Any:
    """Inputs cross the wire as protobuf Structs, where every number is a double (8000 -> 8000.0) and
    secrets are wrapped in a signature map. Give integral numbers back their integer form and unwrap
    secrets, noting their paths (`.secretString`, `.replicas[0].kmsKeyId`) in `secret_paths`."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        if secret_paths is not None:
            secret_paths.append(path)
        return _normalize(value.get("value"), path, secret_paths)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalize(v, f"{path}.{k}", secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    return value


class _RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping what the mocks are not told: parent, provider, URN."""

    def __init__(self, mocks: AwsMocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def _record(self, request: Any, urn: str, custom: bool, inputs: Any) -> None:
        registered = self.resources.get(urn)
        secret_paths: list[str] = []
        inputs = _normalize(inputs, "", secret_paths)
        self.registrations.append(Registration(
            type=request.type, name=request.name, urn=urn, id=registered.id if registered else None,
            parent=request.parent or None,
            provider=request.provider or None, custom=custom,
            inputs=inputs, secret_paths=tuple(secret_paths),
            ignore_changes=tuple(getattr(request, "ignoreChanges", ())),
            replace_on_changes=tuple(getattr(request, "replaceOnChanges", ())),
            delete_before_replace=bool(getattr(request, "deleteBeforeReplace", False)),
            retain_on_delete=bool(getattr(request, "retainOnDelete", False)),
            dependencies=tuple(getattr(request, "dependencies", ())),
            state=_normalize(registered.state) if registered else {}))

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, response.urn, bool(request.custom),
                         rpc.deserialize_properties(request.object))
        return response

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)
        self._record(request, response.urn, True, rpc.deserialize_properties(request.properties))
        return response


@contextmanager
def _engine_environment(project_dir: Path) -> Iterator[None]:
    """What the engine gives a program: the project directory as cwd, the repo importable, and no
    PULUMI_CONFIG* leftovers in the environment (the SDK falls back to them for unset keys)."""
    saved_env = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PULUMI_CONFIG")}
    saved_cwd = os.getcwd()
    saved_offline = os.environ.get(OFFLINE)
    os.environ[OFFLINE] = "1"
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    os.chdir(project_dir)
    try:
        with warnings.catch_warnings():
            # pulumi_aws warns about v6 resource names whenever aws.s3 is imported.
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        os.chdir(saved_cwd)
        os.environ.update(saved_env)
        if saved_offline is None:
            os.environ.pop(OFFLINE, None)


@contextmanager
def _source_positions_off() -> Iterator[None]:
    """The SDK walks the Python stack at every registration to tell the engine where in the program a resource
    was made; the mocks never read it, and the walk is about a tenth of an evaluation (bench/synth.py)."""
    saved = resource_runtime._get_stack_trace
    resource_runtime._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        resource_runtime._get_stack_trace = saved


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The SDK allocates many short-lived cyclic objects per resource, and every collection they trigger
    rescans the hundreds of thousands of objects pulumi_aws's classes leave on the heap: pausing the
    collector for one evaluation halves its time (bench/synth.py). What it left is collected after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            # Collect what it left now, then exempt the survivors (the SDK's and pulumi_aws's modules, loaded
            # once) from later collections: each later one scans only what was made since.
            gc.collect()
            gc.freeze()


async def _resolve(value: Any) -> Any:
    return await pulumi.Output.from_input(value).future(with_unknowns=False)


def _run(stack: str, raw: dict[str, str], secret_keys: list[str], mocks: AwsMocks, program: Path) -> Evaluation:
    outputs: dict[str, Any] = {}
    # The loop must be current before set_mocks: the SDK schedules its first tasks on it.
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_LoopClosingExecutor())
    asyncio.set_event_loop(loop)
    # A failed evaluation leaves its outputs in the SDK's global registry of outputs to await, on its closed
    # loop: forgotten here, or this evaluation would await them.
    with SETTINGS.lock:
        SETTINGS.outputs.clear()
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(raw, secret_keys)
    ROOT_RESOURCE.set(None)

    async def run_program() -> None:
        await run_in_stack(lambda: runpy.run_path(str(program), run_name="__main__"))
        root = ROOT_RESOURCE.get()
        exports = getattr(root, "outputs", {}) or {}
        for key, value in exports.items():
            outputs[key] = _normalize(await _resolve(value))

    try:
        loop.run_until_complete(run_program())
    finally:
        # After a failure the SDK leaves tasks behind; end them quietly rather than at interpreter exit.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)
        loop.close()
    resources = sorted(monitor.registrations, key=lambda r: r.urn)
    return Evaluation(stack=stack, region=mocks.region, resources=resources, outputs=outputs)


def _replicated_secrets(peer: Evaluation, region: str) -> dict[str, dict[str, Any]]:
    """The peer's secrets with a replica in `region`, by name: the state of the version written to each."""
    names = {r.state["arn"]: r.inputs["name"] for r in peer.of_type("aws:secretsmanager/secret:Secret")
             if any(replica.get("region") == region for replica in r.inputs.get("replicas") or ())}
    return {names[v.inputs["secretId"]]: {**v.state, "secretString": v.inputs["secretString"]}
            for v in peer.of_type("aws:secretsmanager/secretVersion:SecretVersion") if v.inputs["secretId"] in names}


def _read_beside(project_dir: Path, settings: StackSettings) -> dict[str, Any]:
    """What the program reads from the project directory beside its config: every stack file (a stack's evaluation
    also takes what its peer's config makes, replicated secrets' values, which the peer's outputs do not show), the
    image contexts it fingerprints and an adopted network's local Terraform state."""
    state = settings.network.terraform
    contexts = {name: project_dir / source.context for name, source in settings.images.sources.items()
                if source.context}
    return {
        "files": {p.name: p.read_text(encoding="utf-8") for p in sorted(project_dir.glob("Pulumi*.yaml"))},
        "images": {name: context_fingerprint(context, context / settings.images.sources[name].dockerfile)
                   for name, context in contexts.items()},
        "state": (project_dir / state.path).read_text(encoding="utf-8") if state and state.path else None,
    }


def evaluate(stack: str, project_dir: Path = REPO, cache: dict[str, Evaluation] | None = None,
             program: Path = PROGRAM) -> Evaluation:
    """Evaluate `Pulumi.<stack>.yaml` in `project_dir`. A stack that references another stack
    (the backup's `peerStack`) gets that stack's evaluated outputs as the reference's outputs.

    Raises SettingsError (or StackFileError) for bad configuration.
    """
    cache = {} if cache is None else cache
    if stack in cache:
        return cache[stack]
    raw, secret_keys = read_stack_file(project_dir / stack_file_name(stack))
    if program == PROGRAM:
        # Validate this stack before evaluating its peer, so a problem is reported from this stack's file.
        settings = load_settings(raw, stack, project_dir, secret_keys=secret_keys)
        state = settings.network.terraform
        if state is not None and state.backend != "local":
            raise SettingsError(settings.stack_file, f"{PROJECT}:network.terraformState.backend", state.backend,
                                "local (the offline synth reads no S3; `pulumi preview` reads it with credentials)",
                                "cannot be read offline")
    stack_outputs: dict[str, dict[str, Any]] = {}
    # The peer's Global Datastores by id: what a cache joining one as a secondary inherits (node type, engine).
    global_datastores: dict[str, dict[str, Any]] = {}
    replicated_secrets: dict[str, dict[str, Any]] = {}
    peer = raw.get(PEER_KEY)
    if peer:
        peer_stack = peer.rsplit("/", 1)[-1]
        if peer_stack == stack or not (project_dir / stack_file_name(peer_stack)).is_file():
            raise SettingsError(stack_file_name(stack), PEER_KEY, peer,
                                "a name whose last part is another stack of this project with a stack file here",
                                "names no other stack file")
        peer_evaluation = evaluate(peer_stack, project_dir, cache, program)
        stack_outputs[peer] = peer_evaluation.outputs
        global_datastores = {r.state["globalReplicationGroupId"]: r.state
                             for r in peer_evaluation.of_type(GLOBAL_DATASTORE)}
        replicated_secrets = _replicated_secrets(peer_evaluation, raw.get("aws:region", ""))
    mocks = AwsMocks(stack, raw.get("aws:region", ""), stack_outputs, global_datastores, replicated_secrets)

    def run() -> Evaluation:
        with (_engine_environment(project_dir), _collector_paused(), _source_positions_off(),
              console.interrupts_deferred()):
            # A fresh context per stack: the SDK keeps its settings, config and root in context variables.
            return contextvars.copy_context().run(_run, stack, raw, secret_keys, mocks, program)

    if program == PROGRAM:
        inputs = [stack, raw, sorted(secret_keys), stack_outputs, _read_beside(project_dir, settings)]
        result = stored(REPO, inputs, run)
    else:
        result = run()
    cache[stack] = result
    return result


__all__ = ["Evaluation", "Registration", "evaluate", "SettingsError", "StackFileError", "REPO"]
