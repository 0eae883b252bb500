"""Running the proxy: the programmatic API the CLI calls (``ProxyConfig`` -> ``run``).

One process (``workers == 1``) runs everything on one event loop: the data plane, the object
source (static files or the Kubernetes control plane) and the health port. With more workers,
``workers`` takes over: this process keeps the source and the health port, restarts a worker
that dies, and the workers serve traffic on shared ports.

Shutdown is staged: on SIGTERM or SIGINT ``/readyz`` turns 503, the listeners stay open for
``Timeouts.shutdown_delay``, then stop accepting; in-flight requests get ``Timeouts.drain``;
then the rest is cut and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Final, TypedDict

from prometheus_client import CollectorRegistry

from kexpose.certs import KeyPair
from kexpose.defaults import CONTROLLER_NAME, GATEWAY_CONTROLLER_NAME, INGRESS_CLASS
from kexpose.proxy.control.kubeapi import KubeApi, LightkubeApi
from kexpose.proxy.control.lease import LeaderElector
from kexpose.proxy.control.plane import ControlPlane, Publish
from kexpose.proxy.control.static import StaticSource
from kexpose.proxy.dataplane.server import DataPlane, Listener
from kexpose.proxy.ops.access_log import AccessLog
from kexpose.proxy.ops.health import HealthServer
from kexpose.proxy.ops.logs import LogFormat
from kexpose.proxy.ops.metrics import Metrics, MetricsCollector, MetricsSnapshot
from kexpose.proxy.routes import Claim, RouteTable
from kexpose.proxy.settings import ControlSettings, DataPlaneSettings, WorkerSettings

__all__ = ["GC_THRESHOLDS", "ProxyConfig", "Source", "Started", "run", "serve", "tune_gc"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyConfig:
    """Everything ``kexpose-proxy`` was asked to do, validated by the CLI."""

    default_certificate: KeyPair
    controller_name: str = CONTROLLER_NAME
    ingress_class: str = INGRESS_CLASS
    watch_without_class: bool = False
    manifests: Path | None = None
    kubeconfig: Path | None = None
    namespace: str | None = None
    bind: str = "0.0.0.0"  # noqa: S104 - a proxy in a pod listens on all its interfaces
    http_port: int = 8080
    https_port: int = 8443
    health_port: int = 10254
    publish_service: str | None = None
    publish_address: str | None = None
    election_id: str = "kexpose-proxy-leader"
    workers: int = 1
    log_format: LogFormat = "json"
    data: DataPlaneSettings = field(default_factory=DataPlaneSettings)
    control: ControlSettings = field(default_factory=ControlSettings)
    supervision: WorkerSettings = field(default_factory=WorkerSettings)
    gateway_controller_name: str = GATEWAY_CONTROLLER_NAME
    gateway_addresses: IPv4Network | IPv6Network | None = None
    """The Gateway API is served when set: each Gateway of ours gets addresses from here."""

    @property
    def claim(self) -> Claim:
        gateway_api = self.gateway_addresses is not None
        return Claim(
            self.controller_name,
            ingress_class=self.ingress_class,
            watch_without_class=self.watch_without_class,
            gateway_controller=self.gateway_controller_name if gateway_api else None,
            gateway_pool=self.gateway_addresses,
        )


class Source:
    """The object source (static files or the control plane), behind one small interface."""

    def __init__(self, config: ProxyConfig, on_table: Callable[[RouteTable], None]) -> None:
        self.api: KubeApi | None = None
        self.static: StaticSource | None = None
        self.control: ControlPlane | None = None
        if config.manifests is not None:
            self.static = StaticSource(config.manifests, claim=config.claim, on_table=on_table)
            self.ready = self.static.ready
        else:
            self.api = LightkubeApi(kubeconfig=config.kubeconfig)
            publish = Publish(address=config.publish_address, service=config.publish_service)
            elector = LeaderElector(
                self.api,
                namespace=_lease_namespace(config),
                name=config.election_id,
                identity=_identity(),
                settings=config.control,
            )
            self.control = ControlPlane(
                self.api,
                claim=config.claim,
                on_table=on_table,
                namespace=config.namespace,
                settings=config.control,
                publish=publish,
                elector=elector,
            )
            self.ready = self.control.ready

    def load_now(self) -> None:
        """Static mode: publish the first table before listening (ProxyConfigError if bad)."""
        if self.static is not None:
            self.static._on_table(self.static.load())
            self.static.ready.set()

    async def run(self) -> None:
        if self.static is not None:
            await self.static.run()
        elif self.control is not None:
            await self.control.run()

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()


GC_THRESHOLDS: Final = (50_000, 20, 50)
"""Cyclic-GC thresholds for serving. Requests make short-lived objects that reference counting
frees; CPython's default (700 allocations per young collection) runs the collector every few
requests for nothing, and each older collection walks every live object, a stall of
milliseconds on the event loop that shows up as tail latency. Connections do form cycles (a
protocol and its parser), so the collector still runs, just far less often."""


def tune_gc() -> None:
    """Freeze what startup loaded (never scanned again) and raise the thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def data_plane(config: ProxyConfig, metrics: Metrics) -> DataPlane:
    """The data plane one process serves with (the single process or one worker)."""
    access_log = AccessLog(1, fmt=config.log_format) if config.data.access_log else None
    return DataPlane(
        settings=config.data,
        default_certificate=config.default_certificate,
        metrics=metrics,
        access_log=access_log,
    )


def _lease_namespace(config: ProxyConfig) -> str:
    if config.publish_service:
        return config.publish_service.partition("/")[0]
    return os.environ.get("POD_NAMESPACE") or config.namespace or "default"


def _identity() -> str:
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


class Stopper:
    """SIGTERM/SIGINT -> an event; handlers are removed again on exit."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()
        self.signal: int | None = None

    def __enter__(self) -> Stopper:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._stop, sig)
        return self

    def _stop(self, sig: int) -> None:
        if self.signal is None:
            log.info("received %s: draining", signal.Signals(sig).name)
        self.signal = sig
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.remove_signal_handler(sig)


class Started(TypedDict, total=False):
    """What :func:`serve` reports once it listens (for tests and embedding)."""

    listeners: list[Listener]
    health: tuple[str, int]
    workers: list[int | None]


async def serve(config: ProxyConfig, *, started: Callable[[Started], None] | None = None) -> None:
    """Run one process with everything in it until SIGTERM/SIGINT, then drain and return."""
    if config.workers > 1:
        from kexpose.proxy.workers import supervise

        await supervise(config, started=started)
        return
    loop = asyncio.get_running_loop()
    metrics = Metrics()
    plane = data_plane(config, metrics)
    stopping = False

    def on_table(table: RouteTable) -> None:
        for problem in plane.swap(table):
            log.warning("tls: %s", problem)

    source = Source(config, on_table)
    source.load_now()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(metrics.snapshot))
    health = HealthServer(ready=lambda: source.ready.is_set() and not stopping, registry=registry)
    with Stopper(loop) as stopper:
        health_addr = await health.listen(bind=config.bind, port=config.health_port)
        bound = await plane.listen(
            bind=config.bind, http_port=config.http_port, https_port=config.https_port
        )
        log.info("listening on %s, health on %s:%d", _describe(bound), *health_addr)
        tune_gc()
        if started is not None:
            started({"listeners": bound, "health": health_addr})
        task = loop.create_task(source.run(), name="object source")
        stop = loop.create_task(stopper.event.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stopping = True
        if task.done() and not stop.done():
            stop.cancel()
            task.result()  # the source failed: raise it
        await asyncio.sleep(config.data.timeouts.shutdown_delay)
        cut = await plane.drain()
        log.info("drained; %d connection(s) cut", cut)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await health.close()
        await source.close()


def snapshot_sum(snapshots: list[MetricsSnapshot]) -> MetricsSnapshot:
    total = MetricsSnapshot()
    for snap in snapshots:
        total.add(snap)
    return total


def _describe(bound: list[tuple[str, tuple[str, int]]]) -> str:
    return ", ".join(f"{scheme}://{host}:{port}" for scheme, (host, port) in bound)


def run(config: ProxyConfig) -> None:
    """Blocking entry point: uvloop, then :func:`serve`."""
    import uvloop

    uvloop.run(serve(config))
