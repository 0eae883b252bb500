"""A stand-in for echo-basic's gRPC echo server (`GRPC_ECHO_SERVER` set), on every such Pod's IP.

The suite's GATEWAY-GRPC tests call `gateway_api_conformance.echo_basic.grpcecho.GrpcEcho`
(conformance@v1.6.3 `echo-basic/grpcecho.proto`) through the Gateway and check the answer
(`conformance/utils/grpc/grpc.go` `compareResponse`): the status code, the
`assertions.fully_qualified_method`, `assertions.context.namespace` and that
`assertions.context.pod` starts with the backend's name. This server answers as
`echo-basic/grpc/grpc.go` does:

- `Echo` and `EchoTwo` answer an `EchoResponse` whose assertions carry the fully qualified
  method (`/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo`), the request's metadata
  as `headers` (one entry per value), and the Pod's `Context` (NAMESPACE, INGRESS_NAME,
  SERVICE_NAME, POD_NAME of its env); `EchoThree` is unimplemented (`UNIMPLEMENTED`).
- It listens in plaintext (h2c with prior knowledge) on `HTTP_PORT` (3000); the TLS listener
  (TLS_SERVER_CERT) is not served: no Core GRPCRoute test uses it.

What grpcio does not let a servicer see is left out rather than made up: the `:authority` (Go
puts it in the metadata; grpcio servicers never get it, so `assertions.authority` is empty and
no `:authority` header is echoed) and the reserved headers grpc-go adds (`content-type`). No
test of the suite reads either (v1.6.3: only the three fields above).

The message and service classes come from the proto itself, compiled when first needed
(`grpc.protos_and_services`, grpcio-tools), from the Go module cache scripts/toolchain.sh fills:
nothing generated is committed. `EchoGrpcPods` is `echo_pods.EchoBasicPods` (one Pod watch)
serving the gRPC-mode Pods too.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from .echo_basic import EchoContext
from .echo_pods import ECHO_BASIC_IMAGE, EchoBasicPods, PodAddress, _env

__all__ = [
    "FULL_SERVICE",
    "GRPC_ECHO_PROTO",
    "EchoGrpcPods",
    "EchoGrpcServer",
    "grpc_echo_address",
    "grpcecho",
]

#: The gateway-api version whose echo-basic proto is read (scripts/toolchain.sh pins it).
GATEWAY_API_VERSION = "v1.6.3"
#: The proto's file name: its package is derived from it (`grpcecho_pb2`, `grpcecho_pb2_grpc`).
GRPC_ECHO_PROTO = "grpcecho.proto"
#: `pb.File_grpcecho_proto.Services().ByName("GrpcEcho").FullName()` in grpc.go.
FULL_SERVICE = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"
#: echo-basic's plaintext gRPC port when HTTP_PORT is unset (grpc.go `Main`).
DEFAULT_GRPC_PORT = 3000
# Grace for calls under way when a stand-in stops (a Pod went away, or the run ends).
STOP_GRACE_S = 1.0


def proto_dir() -> Path:
    """`echo-basic/` of the suite's module in the Go module cache (KEXPOSE_GO_CACHE)."""
    cache = Path(os.environ.get("KEXPOSE_GO_CACHE") or Path.home() / ".cache" / "kexpose" / "go")
    return (
        cache
        / "mod"
        / "sigs.k8s.io"
        / "gateway-api"
        / f"conformance@{GATEWAY_API_VERSION}"
        / "echo-basic"
    )


@functools.cache
def grpcecho() -> tuple[Any, Any]:
    """The proto's (messages, services) modules, compiled from the module cache's proto."""
    where = proto_dir()
    if not (where / GRPC_ECHO_PROTO).is_file():
        raise FileNotFoundError(
            f"{where / GRPC_ECHO_PROTO} is missing: the Go module cache of scripts/toolchain.sh "
            "holds the suite's sources (set KEXPOSE_GO_CACHE if it was built with another cache)"
        )
    # protos_and_services resolves the proto (and its imports) on sys.path.
    sys.path.insert(0, str(where))
    try:
        return grpc.protos_and_services(GRPC_ECHO_PROTO)  # type: ignore[no-any-return]
    finally:
        sys.path.remove(str(where))


def grpc_echo_address(pod: Mapping[str, Any]) -> tuple[PodAddress, EchoContext] | None:
    """Where echo-basic would answer gRPC for this Pod (raw JSON), or None if it would not."""
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    ip = status.get("podIP")
    if not ready or not ip or pod.get("metadata", {}).get("deletionTimestamp"):
        return None
    for container in (pod.get("spec") or {}).get("containers") or []:
        image: str = container.get("image", "")
        if image.split("@")[0].rsplit(":", 1)[0] != ECHO_BASIC_IMAGE:
            continue
        env = _env(container, pod)
        if not env.get("GRPC_ECHO_SERVER"):
            return None
        context = EchoContext(
            namespace=env.get("NAMESPACE", ""),
            ingress=env.get("INGRESS_NAME", ""),
            service=env.get("SERVICE_NAME", ""),
            pod=env.get("POD_NAME", ""),
        )
        return (ip, int(env.get("HTTP_PORT") or DEFAULT_GRPC_PORT)), context
    return None


def echo_response(method: str, metadata: Any, context: EchoContext) -> Any:
    """grpc.go `doEcho`: the response for a call of `method` ("Echo", "EchoTwo")."""
    messages, _ = grpcecho()
    headers = [messages.Header(key=m.key, value=m.value) for m in metadata or ()]
    return messages.EchoResponse(
        assertions=messages.Assertions(
            fully_qualified_method=f"/{FULL_SERVICE}/{method}",
            headers=headers,
            authority="",
            context=messages.Context(
                namespace=context.namespace,
                ingress=context.ingress,
                service_name=context.service,
                pod=context.pod,
            ),
        )
    )


def _servicer(context: EchoContext) -> Any:
    _, services = grpcecho()

    class Servicer(services.GrpcEchoServicer):  # type: ignore[misc,name-defined]
        # EchoThree stays the generated base's: UNIMPLEMENTED, as in grpc.go.
        async def Echo(self, request: Any, call: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802 - the proto's name
            return echo_response("Echo", call.invocation_metadata(), context)

        async def EchoTwo(self, request: Any, call: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802 - the proto's name
            return echo_response("EchoTwo", call.invocation_metadata(), context)

    return Servicer()


@dataclass
class EchoGrpcServer:
    """echo-basic's plaintext gRPC server for one pod, on `ip:port`; on the caller's loop."""

    ip: str
    port: int
    context: EchoContext
    _server: grpc.aio.Server | None = None

    async def start(self) -> int:
        """Listen; the port bound (`port` 0 picks one). OSError when the address is unusable."""
        _, services = grpcecho()
        server = grpc.aio.server()
        services.add_GrpcEchoServicer_to_server(_servicer(self.context), server)
        try:
            bound: int = server.add_insecure_port(f"{self.ip}:{self.port}")
        except RuntimeError as exc:  # grpcio's way of saying the address cannot be bound
            raise OSError(f"cannot listen on {self.ip}:{self.port}: {exc}") from exc
        await server.start()
        self._server = server
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(STOP_GRACE_S)
            self._server = None


@dataclass
class EchoGrpcPods(EchoBasicPods):
    """The echo-basic stand-ins of `EchoBasicPods` (HTTP mode), and a gRPC echo stand-in for each
    Ready echo-basic Pod in gRPC mode, until stopped.

    One Pod watch (and one API client, on one loop thread) serves both kinds: a second watcher
    would only double the API traffic.
    """

    _grpc: dict[PodAddress, EchoGrpcServer] = field(default_factory=dict)

    def serving_grpc(self) -> dict[PodAddress, EchoContext]:
        """The addresses answered by a gRPC stand-in right now, with the pod each stands for."""
        with self._lock:
            return {address: server.context for address, server in self._grpc.items()}

    async def _reconcile(self) -> None:
        await super()._reconcile()
        wanted: dict[PodAddress, EchoContext] = {}
        for pod in self._pods.values():
            found = grpc_echo_address(pod)
            if found is not None:
                wanted[found[0]] = found[1]
        for address, server in list(self._grpc.items()):
            if wanted.get(address) != server.context:
                with self._lock:
                    del self._grpc[address]
                await server.stop()
        for address, context in wanted.items():
            if address in self._grpc:
                continue
            server = EchoGrpcServer(address[0], address[1], context)
            try:
                await server.start()
            except OSError as exc:  # an IP outside the CIDRs on `lo`: tried on the next event
                self.errors.append(f"cannot serve gRPC {context.namespace}/{context.pod}: {exc}")
                continue
            with self._lock:
                self._grpc[address] = server

    async def _stop_all(self) -> None:
        await super()._stop_all()
        with self._lock:
            servers = list(self._grpc.values())
            self._grpc.clear()
        for server in servers:
            await server.stop()
