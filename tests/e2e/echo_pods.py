"""Run an echo-basic stand-in (echo_basic.py) on the IP of every Ready echo-basic Pod.

The conformance suite's backends are Deployments of `registry.k8s.io/gateway-api/echo-basic`; kwok
makes their Pods Ready with an IP from the node's podCIDR but runs nothing. `EchoBasicPods` keeps,
for each such Pod that is Ready, one `EchoBasicServer` listening on `podIP:HTTP_PORT` (3000), with
the Pod's name and namespace taken from the container's env the way the kubelet would fill it
(`valueFrom.fieldRef` metadata.name / metadata.namespace, or a literal `value`). It follows Pods
of every namespace, so the namespaces the suite creates per test are covered too; Pods of other
images (coredns), and echo-basic containers started in their gRPC/TCP/UDP modes, are not served.

With a `log_dir`, each stand-in also writes echo-basic's log lines (CRI log format) to a file of
its Pod there, and a kwok `Logs` object of the Pod's name and namespace points kwok's kubelet
server at it (cluster.py `POD_LOGS_CRD`): `GET pods/log` through the apiserver then returns what
echo-basic would have printed, as the suite's mirror tests read it (`DumpEchoLogs`).

Pods are followed with a list, then a watch from that resourceVersion, relisting on 410 Gone and
after any other error. The watch and every server live on one asyncio event loop in one thread;
`stop()` cancels the watch and stops every server before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Pod

from .echo_basic import DEFAULT_HTTP_PORT, EchoBasicServer, EchoContext
from .echo_h2c import DEFAULT_H2C_PORT, H2cEchoServer

__all__ = ["ECHO_BASIC_IMAGE", "EchoBasicPods", "PodAddress", "echo_basic_address"]

#: The image of the suite's backends (any tag: base/manifests.yaml pins v1.5.1 and v1.6.0-dev.3).
ECHO_BASIC_IMAGE = "registry.k8s.io/gateway-api/echo-basic"
#: Env variables that switch echo-basic into a server this stand-in does not provide.
OTHER_MODES = ("GRPC_ECHO_SERVER", "TCP_ECHO_SERVER", "UDP_ECHO_SERVER")
# After a failed list or watch (apiserver restarting, a closed stream), wait this long before
# relisting; short, as a missed Pod leaves a test without its backend.
RELIST_BACKOFF_S = 0.5
# Starting the loop thread, or one call into it (start or stop every server), on a loaded machine.
LOOP_CALL_TIMEOUT_S = 30.0

#: kwok's per-Pod log source (cluster.py `POD_LOGS_CRD`).
KwokLogs = create_namespaced_resource("kwok.x-k8s.io", "v1alpha1", "Logs", "logs")

PodAddress = tuple[str, int]
"""(pod IP, port)"""


def _env(container: Mapping[str, Any], pod: Mapping[str, Any]) -> dict[str, str]:
    """The container's env as the kubelet resolves it (literals and the Downward API fields)."""
    fields = {
        "metadata.name": pod.get("metadata", {}).get("name", ""),
        "metadata.namespace": pod.get("metadata", {}).get("namespace", ""),
        "status.podIP": pod.get("status", {}).get("podIP", ""),
        "spec.nodeName": pod.get("spec", {}).get("nodeName", ""),
    }
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        ref = (var.get("valueFrom") or {}).get("fieldRef")
        env[var["name"]] = fields.get(ref["fieldPath"], "") if ref else var.get("value", "")
    return env


def echo_basic_address(pod: Mapping[str, Any]) -> tuple[PodAddress, EchoContext] | None:
    """Where echo-basic would answer HTTP for this Pod (raw JSON), or None if it would not."""
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
        if any(env.get(mode) for mode in OTHER_MODES):
            return None
        port = env.get("HTTP_PORT") or str(DEFAULT_HTTP_PORT)
        context = EchoContext(
            namespace=env.get("NAMESPACE", ""),
            ingress=env.get("INGRESS_NAME", ""),
            service=env.get("SERVICE_NAME", ""),
            pod=env.get("POD_NAME", ""),
        )
        return (ip, int(port)), context
    return None


@dataclass
class EchoBasicPods:
    """echo-basic stand-ins for the Ready echo-basic Pods of a cluster, until stopped."""

    kubeconfig: Path
    log_dir: Path | None = None
    """Where the pods' log files go; None: the lines are kept in memory only (`logs`)."""
    errors: list[str] = field(default_factory=list)
    """Failed lists/watches and addresses that could not be bound, for a test to report."""
    _servers: dict[PodAddress, EchoBasicServer] = field(default_factory=dict)
    _h2c: dict[PodAddress, H2cEchoServer] = field(default_factory=dict)
    """Each pod's h2c server (port 3001), beside its HTTP one."""
    _pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _watch: asyncio.Task[None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: AsyncClient | None = None

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="echo-basic", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._spawn(), loop).result(timeout=LOOP_CALL_TIMEOUT_S)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        stopping = asyncio.run_coroutine_threadsafe(self._stop_all(), loop)
        stopping.result(timeout=LOOP_CALL_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=LOOP_CALL_TIMEOUT_S)
        loop.close()
        self._loop = self._thread = self._watch = None

    @contextlib.contextmanager
    def running(self) -> Iterator[EchoBasicPods]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def serving(self) -> dict[PodAddress, EchoContext]:
        """The addresses answered right now, with the pod each one stands for."""
        with self._lock:
            return {address: server.context for address, server in self._servers.items()}

    def logs(self, namespace: str, pod: str) -> list[str]:
        """What echo-basic would have printed in that pod (while it was served)."""
        with self._lock:
            servers = list(self._servers.values())
        for server in servers:
            if (server.context.namespace, server.context.pod) == (namespace, pod):
                return server.log_lines()
        return []

    # -- on the loop -------------------------------------------------------------------------------

    async def _spawn(self) -> None:
        self._watch = asyncio.create_task(self._follow(), name="echo-basic pod watch")

    async def _follow(self) -> None:
        config = KubeConfig.from_file(self.kubeconfig)
        client = AsyncClient(config=config, field_manager="kexpose-e2e")
        self._client = client
        try:
            while True:
                try:
                    await self._list_then_watch(client)
                except ApiError as exc:  # 410 Gone included: relist
                    self.errors.append(f"pod watch: {exc}")
                except OSError as exc:
                    self.errors.append(f"pod watch: {exc!r}")
                await asyncio.sleep(RELIST_BACKOFF_S)
        finally:
            await client.close()

    async def _list_then_watch(self, client: AsyncClient) -> None:
        listing = client.list(Pod, namespace="*")
        pods = {}
        async for pod in listing:
            raw = pod.to_dict()
            pods[raw["metadata"]["uid"]] = raw
        self._pods = pods
        await self._reconcile()
        version = listing.resourceVersion
        async for kind, pod in client.watch(Pod, namespace="*", resource_version=version):
            raw = pod.to_dict()
            if kind == "DELETED":
                self._pods.pop(raw["metadata"]["uid"], None)
            else:
                self._pods[raw["metadata"]["uid"]] = raw
            await self._reconcile()

    async def _reconcile(self) -> None:
        wanted: dict[PodAddress, EchoContext] = {}
        names: dict[PodAddress, tuple[str, str]] = {}
        for pod in self._pods.values():
            found = echo_basic_address(pod)
            if found is not None:
                wanted[found[0]] = found[1]
                names[found[0]] = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        for address, server in list(self._servers.items()):
            if wanted.get(address) != server.context:
                with self._lock:
                    del self._servers[address]
                await server.stop()
                h2c = self._h2c.pop(address, None)
                if h2c is not None:
                    await h2c.stop()
        for address, context in wanted.items():
            if address in self._servers:
                continue
            log_file = await self._log_file(*names[address])
            server = EchoBasicServer(address[0], address[1], context, log_file=log_file)
            try:
                await server.start()
            except OSError as exc:  # an IP outside the CIDRs on `lo`: tried on the next event
                self.errors.append(f"cannot serve {context.namespace}/{context.pod}: {exc}")
                continue
            with self._lock:
                self._servers[address] = server
            h2c = H2cEchoServer(address[0], DEFAULT_H2C_PORT, context, http_port=address[1])
            try:
                await h2c.start()
            except OSError as exc:
                self.errors.append(f"cannot serve h2c for {context.namespace}/{context.pod}: {exc}")
            else:
                self._h2c[address] = h2c

    async def _log_file(self, namespace: str, pod: str) -> Path | None:
        """The Pod's log file, with the kwok `Logs` object that serves it; None without a
        log_dir, or when the object cannot be made (the stand-in then serves without it)."""
        if self.log_dir is None or self._client is None:
            return None
        path = self.log_dir / f"{namespace}_{pod}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        logs = KwokLogs.from_dict(
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "Logs",
                "metadata": {"name": pod, "namespace": namespace},
                # No `containers`: the file is every container's log in the Pod.
                "spec": {"logs": [{"logsFile": str(path)}]},
            }
        )
        try:
            await self._client.apply(logs, force=True)
        except ApiError as exc:
            self.errors.append(f"kwok Logs for {namespace}/{pod}: {exc}")
            return None
        return path

    async def _stop_all(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            await server.stop()
        h2c, self._h2c = list(self._h2c.values()), {}
        for one in h2c:
            await one.stop()
