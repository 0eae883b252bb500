"""Running ``policies/`` the way the Pulumi CLI does, and speaking the Analyzer protocol to it.

How the CLI starts a Python policy pack (pulumi ``sdk/go/common/resource/plugin/
analyzer_plugin.go``, ``NewPolicyAnalyzer``): Python packs still take the legacy route through
the ``pulumi-analyzer-policy-python`` shim, run in the pack directory with the arguments
``<engine-address> .`` (plus ``-virtualenv=...`` from PulumiPolicy.yaml, which only picks the
interpreter). The shim execs ``python -u -m pulumi.policy <engine-address> .``. The environment
carries ``PULUMI_CONFIG`` (the stack config as JSON), ``PULUMI_PROJECT``, ``PULUMI_STACK``,
``PULUMI_DRY_RUN`` and ``PULUMI_ORGANIZATION`` (``constructEnv``). ``pulumi.policy`` loads that
config, configures the runtime and runs ``./__main__.py``; ``PolicyPack`` then prints its port on
stdout and serves. The CLI dials the port, tries ``Handshake`` (UNIMPLEMENTED is fine), sends
``ConfigureStack``, reads ``GetAnalyzerInfo``, sends ``Configure`` with every policy's level and
its config (schema defaults merged with ``--policy-pack-config``, ``ReconcilePolicyPackConfig``),
then ``Analyze`` per resource and ``AnalyzeStack`` once.

The engine address is served by :class:`FakeEngine`, a real gRPC Engine peer that records calls:
``pulumi.policy`` configures no engine (its Settings get none), so the pack logs to stderr and the
recorder stays empty, which the tests assert rather than assume.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2, engine_pb2_grpc

POLICIES = Path(__file__).resolve().parents[2] / "policies"
PROJECT = "kexpose-test"

# Pulumi's wire signatures for secrets and unknowns (sdk/go/common/resource/properties.go and
# pulumi_policy/proxy.py), which the engine uses when it marshals resource properties.
SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


class FakeEngine(engine_pb2_grpc.EngineServicer):
    """The minimal Engine service a plugin may call back into; it records what it receives."""

    def __init__(self) -> None:
        self.logs: list[engine_pb2.LogRequest] = []

    def Log(self, request: engine_pb2.LogRequest, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self.logs.append(request)
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return engine_pb2.GetRootResourceResponse(urn="")

    def SetRootResource(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return engine_pb2.SetRootResourceResponse()


@contextmanager
def engine_server() -> Iterator[tuple[str, FakeEngine]]:
    engine = FakeEngine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", engine
    finally:
        server.stop(grace=None)


@dataclass
class Pack:
    process: subprocess.Popen[bytes]
    stub: analyzer_pb2_grpc.AnalyzerStub
    channel: grpc.Channel
    stderr: list[bytes] = field(default_factory=list)


class PackStartError(RuntimeError):
    pass


def _pack_env(stack: str | None, config: Mapping[str, str], *, dry_run: bool) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("PULUMI_STACK", "PULUMI_PROJECT", "PULUMI_DRY_RUN", "PULUMI_ORGANIZATION"):
        env.pop(key, None)
    if stack is not None:
        env.update(
            PULUMI_STACK=stack,
            PULUMI_PROJECT=PROJECT,
            PULUMI_DRY_RUN="true" if dry_run else "false",
            PULUMI_ORGANIZATION="organization",
        )
    if config:
        env["PULUMI_CONFIG"] = json.dumps(dict(config))
    else:
        env.pop("PULUMI_CONFIG", None)
    return env


@contextmanager
def running_pack(
    engine_address: str,
    *,
    stack: str | None,
    config: Mapping[str, str] | None = None,
    dry_run: bool = True,
    timeout: float = 60.0,
) -> Iterator[Pack]:
    """Start ``policies/`` as the shim does and yield a connected Analyzer stub.

    ``stack=None`` starts it as CLIs that only send ``ConfigureStack`` do (v3.274: no
    ``PULUMI_STACK``, ``PULUMI_PROJECT``, ``PULUMI_DRY_RUN`` in the environment).
    """
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", engine_address, "."],
        cwd=POLICIES,
        env=_pack_env(stack, config or {}, dry_run=dry_run),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    errors: list[bytes] = []
    drain = threading.Thread(target=lambda: errors.extend(process.stderr or ()), daemon=True)
    drain.start()
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    try:
        if not line or not line[0].strip().isdigit():
            process.kill()
            process.wait(10)
            drain.join(5)
            raise PackStartError(
                f"exit {process.returncode}, stdout {line!r}, stderr:\n"
                + b"".join(errors).decode(errors="replace")
            )
        channel = grpc.insecure_channel(f"127.0.0.1:{int(line[0])}")
        grpc.channel_ready_future(channel).result(timeout=timeout)
        try:
            yield Pack(process, analyzer_pb2_grpc.AnalyzerStub(channel), channel, errors)
        finally:
            channel.close()
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        process.stdout.close()
        drain.join(5)
        process.stderr.close()


def start_failure(engine_address: str, *, stack: str, config: Mapping[str, str]) -> str:
    """Run the pack expecting it not to start; return its stderr."""
    done = subprocess.run(
        [sys.executable, "-u", "-m", "pulumi.policy", engine_address, "."],
        cwd=POLICIES,
        env=_pack_env(stack, config, dry_run=True),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0, done.stdout
    return done.stderr.decode(errors="replace")


def type_token(obj: Mapping[str, Any]) -> str:
    """``kubernetes:<group>/<version>:<Kind>``; the core group is spelled ``core``."""
    api = str(obj["apiVersion"])
    module = api if "/" in api else f"core/{api}"
    return f"kubernetes:{module}:{obj['kind']}"


def urn(stack: str, obj: Mapping[str, Any]) -> str:
    name = f"{obj['metadata'].get('namespace', 'default')}-{obj['metadata']['name']}"
    return f"urn:pulumi:{stack}::{PROJECT}::{type_token(obj)}::{name}"


def props_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest minus apiVersion/kind, with a Secret's data marshalled as a Pulumi secret."""
    props = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    for key in ("data", "stringData"):
        if obj.get("kind") == "Secret" and key in props:
            props[key] = {SIG: SECRET_SIG, "value": props[key]}
    return props


def struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(dict(props), message)
    return message


def analyze_request(stack: str, obj: Mapping[str, Any]) -> analyzer_pb2.AnalyzeRequest:
    return analyzer_pb2.AnalyzeRequest(
        type=type_token(obj),
        properties=struct(props_of(obj)),
        urn=urn(stack, obj),
        name=str(obj["metadata"]["name"]),
        options=analyzer_pb2.AnalyzerResourceOptions(),
    )


def stack_request(
    stack: str, objects: Sequence[Mapping[str, Any]]
) -> analyzer_pb2.AnalyzeStackRequest:
    return analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=type_token(o),
                properties=struct(props_of(o)),
                urn=urn(stack, o),
                name=str(o["metadata"]["name"]),
                options=analyzer_pb2.AnalyzerResourceOptions(),
            )
            for o in objects
        ]
    )


def configure_like_the_cli(
    stub: analyzer_pb2_grpc.AnalyzerStub,
    info: analyzer_pb2.AnalyzerInfo,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """``Configure`` as the CLI sends it: each policy's default level and schema defaults, with
    ``overrides`` (a --policy-pack-config) merged on top."""
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for policy in info.policies:
        schema = json_format.MessageToDict(policy.configSchema.properties)
        props = {k: v["default"] for k, v in schema.items() if "default" in v}
        given = dict((overrides or {}).get(policy.name, {}))
        level = given.pop("enforcementLevel", None)
        props.update(given)
        config = request.policyConfig[policy.name]
        config.enforcementLevel = (
            analyzer_pb2.EnforcementLevel.Value(level.upper()) if level else policy.enforcementLevel
        )
        config.properties.update(props)
    stub.Configure(request)
