"""``--workers N``: N processes serving traffic on shared ports, one process feeding them.

nginx's model, with Linux's ``SO_REUSEPORT``: each worker binds the data ports itself and the
kernel spreads new connections across them, so no process hands sockets around and no accept
lock is needed. The supervisor (this process) runs the object source (static files or the
control plane, so the API server sees one watcher per pod, and one status writer) and the
health port; it sends each new route table to every worker over a pipe, and the workers send
their metrics back every ``METRICS_INTERVAL`` for ``/metrics`` to add up.

A worker that dies takes the whole pod down (exit 1) rather than being restarted in place:
Kubernetes restarts pods, and a crash loop should be visible, not hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry

from kexpose.proxy.errors import ProxyError
from kexpose.proxy.health import HealthServer
from kexpose.proxy.metrics import Metrics, MetricsCollector, MetricsSnapshot
from kexpose.proxy.routes import RouteTable

if TYPE_CHECKING:  # the runner imports this module lazily; no cycle at run time
    from kexpose.proxy.runner import ProxyConfig, Started

__all__ = ["METRICS_INTERVAL", "supervise", "worker_main"]

log = logging.getLogger(__name__)

METRICS_INTERVAL: Final = 1.0
"""Seconds between a worker's metric reports: ``/metrics`` lags by at most this."""

STARTUP_TIMEOUT: Final = 30.0
"""A worker must be listening this soon after it was started (spawning re-imports Python)."""


class _Worker:
    def __init__(self, index: int, process: multiprocessing.process.BaseProcess, conn: Connection):
        self.index = index
        self.process = process
        self.conn = conn
        self.ready = False
        self.metrics = MetricsSnapshot()
        self.sent: RouteTable | None = None
        self.lock = asyncio.Lock()


async def supervise(
    config: ProxyConfig, *, started: Callable[[Started], None] | None = None
) -> None:
    from kexpose.proxy.runner import Source, Stopper

    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")
    workers: list[_Worker] = []
    latest: list[RouteTable] = []
    changed = asyncio.Event()
    stopping = False

    def on_table(table: RouteTable) -> None:
        latest[:] = [table]
        changed.set()

    source = Source(config, on_table)
    source.load_now()
    for i in range(config.workers):
        parent_end, child_end = ctx.Pipe()
        process = ctx.Process(
            target=worker_main, args=(child_end, config, i), name=f"kexpose-proxy-worker-{i}"
        )
        process.start()
        child_end.close()
        workers.append(_Worker(i, process, parent_end))

    def on_message(worker: _Worker) -> None:
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            loop.remove_reader(worker.conn.fileno())
            return
        if kind == "ready":
            worker.ready = True
        elif kind == "metrics":
            worker.metrics = payload

    for w in workers:
        loop.add_reader(w.conn.fileno(), on_message, w)

    def snapshot() -> MetricsSnapshot:
        total = MetricsSnapshot()
        for w in workers:
            total.add(w.metrics)
        return total

    async def distribute() -> None:
        while True:
            await changed.wait()
            changed.clear()
            table = latest[0]
            for w in workers:
                if w.sent is not table:
                    async with w.lock:
                        # A big table takes a while to pickle and pipe; not on the loop.
                        await asyncio.to_thread(w.conn.send, ("table", table))
                        w.sent = table

    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(snapshot))

    def ready() -> bool:
        return (
            not stopping
            and source.ready.is_set()
            and all(w.ready and w.sent is not None for w in workers)
        )

    health = HealthServer(ready=ready, registry=registry)
    with Stopper(loop) as stopper:
        health_addr = await health.listen(bind=config.bind, port=config.health_port)
        tasks = {
            loop.create_task(source.run(), name="object source"),
            loop.create_task(distribute(), name="send tables to workers"),
            loop.create_task(stopper.event.wait(), name="wait for a signal"),
            loop.create_task(_watch_workers(workers), name="watch workers"),
        }
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not all(w.ready for w in workers):
                if any(not w.process.is_alive() for w in workers):
                    break
                await asyncio.sleep(0.05)
        log.info("%d workers serving; health on %s:%d", len(workers), *health_addr)
        if started is not None:
            started({"workers": [w.process.pid for w in workers], "health": health_addr})
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stopping = True
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        await asyncio.sleep(config.data.timeouts.shutdown_delay)
        for w in workers:
            if w.process.is_alive() and w.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.process.pid, signal.SIGTERM)
        deadline = loop.time() + config.data.timeouts.drain + 5
        while any(w.process.is_alive() for w in workers) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for w in workers:
            if w.process.is_alive():
                w.process.kill()
            loop.remove_reader(w.conn.fileno())
            w.conn.close()
            w.process.join(1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await health.close()
        await source.close()
        if failed:
            raise failed[0].exception()  # type: ignore[misc]
        crashed = [w.index for w in workers if w.process.exitcode not in (0, -signal.SIGTERM)]
        if crashed and stopper.signal is None:
            raise ProxyError(f"worker(s) {crashed} exited unexpectedly")


async def _watch_workers(workers: list[_Worker]) -> None:
    """Returns when any worker has exited: the supervisor then stops the rest."""
    while all(w.process.is_alive() for w in workers):
        await asyncio.sleep(0.2)
    dead = [w for w in workers if not w.process.is_alive()]
    for w in dead:
        log.error("worker %d exited with code %s", w.index, w.process.exitcode)


def worker_main(conn: Connection, config: ProxyConfig, index: int) -> None:
    """A worker process: the data plane only, fed route tables by the supervisor."""
    import uvloop

    from kexpose.proxy.logs import configure

    configure(config.log_format)
    uvloop.run(_worker(conn, config, index))


async def _worker(conn: Connection, config: ProxyConfig, index: int) -> None:
    from kexpose.proxy.runner import Stopper, data_plane, tune_gc

    loop = asyncio.get_running_loop()
    metrics = Metrics()
    plane = data_plane(config, metrics)
    got_table = asyncio.Event()

    def on_message() -> None:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            stopper.event.set()  # the supervisor is gone
            return
        if kind == "table":
            for problem in plane.swap(payload):
                log.warning("tls: %s", problem)
            got_table.set()

    def report() -> None:
        with contextlib.suppress(OSError):
            conn.send(("metrics", metrics.snapshot()))
        timer[0] = loop.call_later(METRICS_INTERVAL, report)

    with Stopper(loop) as stopper:
        loop.add_reader(conn.fileno(), on_message)
        await plane.listen(
            bind=config.bind,
            http_port=config.http_port,
            https_port=config.https_port,
            reuse_port=True,
        )
        conn.send(("ready", index))
        tune_gc()
        timer = [loop.call_later(METRICS_INTERVAL, report)]
        await stopper.event.wait()
        await plane.drain()
        timer[0].cancel()
        with contextlib.suppress(OSError):
            conn.send(("metrics", metrics.snapshot()))
        loop.remove_reader(conn.fileno())
