"""``--workers N``: N processes serving traffic on shared ports, one process feeding them.

nginx's model, with Linux's ``SO_REUSEPORT``: each worker binds the data ports itself and the
kernel spreads new connections across them, so no process hands sockets around and no accept
lock is needed. The supervisor (this process) runs the object source (static files or the
control plane, so the API server sees one watcher per pod, and one status writer) and the
health port; it sends each new route table to every worker over a pipe, and the workers send
their metrics back every ``METRICS_INTERVAL`` for ``/metrics`` to add up.

A worker that dies is restarted in place, as nginx's master does, while the others keep
serving. Taking the whole pod down instead would turn one lost worker (an OOM kill, a rare
crash, the requests in flight on it lost) into every worker's requests lost and a pod not
ready for as long as Kubernetes takes to restart it. What the kernel does makes this safe: a
dead worker's listening socket is closed as it dies, and only open ones receive connections,
so new connections go to the living workers until the replacement binds. The replacement is
sent the current route table before it listens, so it never serves a stale or empty one.
Restarts are visible (an ERROR line per death, ``kexpose_proxy_worker_restarts_total``) and
bounded (:class:`~kexpose.proxy.settings.WorkerSettings`): workers that keep dying end the pod
with exit 1, so that a crash loop is still Kubernetes' to see and back off from.

``/readyz`` is 200 while at least one worker serves with a route table, 503 when none does.
A dead worker's last metrics report is folded into a retired total, so counters never go
backwards (Prometheus would read a drop as a counter reset and count everything again) and
never count twice; what it answered after its last report, at most ``METRICS_INTERVAL`` of
its traffic, is lost with it. After SIGTERM nothing is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kexpose.proxy.errors import ProxyError
from kexpose.proxy.ops.health import HealthServer
from kexpose.proxy.ops.metrics import Metrics, MetricsCollector, MetricsSnapshot
from kexpose.proxy.routes import RouteTable
from kexpose.proxy.settings import WorkerSettings

if TYPE_CHECKING:  # the runner imports this module lazily; no cycle at run time
    from kexpose.proxy.runner import ProxyConfig, Started

__all__ = ["METRICS_INTERVAL", "supervise", "worker_main"]

log = logging.getLogger(__name__)

METRICS_INTERVAL: Final = 1.0
"""Seconds between a worker's metric reports: ``/metrics`` lags by at most this."""

STARTUP_TIMEOUT: Final = 30.0
"""A worker must be listening this soon after it was started (spawning re-imports Python)."""

WATCH_INTERVAL: Final = 0.1
"""How often the supervisor checks that its workers live. A dead worker costs no connection
while it goes unnoticed (its socket is already closed), only capacity, so a tenth of a second
is plenty."""

_UNSENT: Final = object()
"""``_Worker.sent`` before the first message: not even ``None`` (no table yet) was sent."""


class _Worker:
    def __init__(self, index: int, process: multiprocessing.process.BaseProcess, conn: Connection):
        self.index = index
        self.process = process
        self.pid = process.pid
        self.conn = conn
        self.ready = False  # listening, with the first table it was sent
        self.metrics = MetricsSnapshot()
        self.sent: object = _UNSENT
        self.lock = asyncio.Lock()
        self.retired = False

    @property
    def serving(self) -> bool:
        return (
            self.ready
            and not self.retired
            and isinstance(self.sent, RouteTable)
            and self.process.is_alive()
        )


def ready_to_serve(*, up: bool, stopping: bool, source_ready: bool, serving: int) -> bool:
    """``/readyz`` with workers: every first worker has come ``up`` (until then a death is a
    setup error that ends the pod), the table is loaded, and at least one worker serves it."""
    return up and not stopping and source_ready and serving > 0


class CrashLoop:
    """Worker deaths within the last ``restart_window``: the backoff, and when to give up."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.deaths: deque[float] = deque()

    def died(self, now: float) -> float:
        """Seconds to wait before the restart; ProxyError past the limit."""
        s = self.settings
        while self.deaths and self.deaths[0] <= now - s.restart_window:
            self.deaths.popleft()
        self.deaths.append(now)
        if len(self.deaths) > s.restart_limit:
            raise ProxyError(
                f"crash loop: workers died {len(self.deaths)} times within "
                f"{s.restart_window:g} s (at most {s.restart_limit} restarts allowed); "
                "exiting so that Kubernetes restarts the pod; see the workers' errors above"
            )
        backoff: float = s.restart_backoff_initial * 2.0 ** (len(self.deaths) - 1)
        return min(backoff, s.restart_backoff_max)


class _Supervisor:
    """The workers of one pod: started, fed tables, watched, restarted, stopped."""

    def __init__(self, config: ProxyConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.ctx: SpawnContext = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []
        self.latest: RouteTable | None = None
        self.changed = asyncio.Event()
        self.retired = MetricsSnapshot()
        self.restarts = 0
        self.crash_loop = CrashLoop(config.supervision)

    def on_table(self, table: RouteTable) -> None:
        self.latest = table
        self.changed.set()

    def spawn(self, index: int) -> _Worker:
        parent_end, child_end = self.ctx.Pipe()
        process = self.ctx.Process(
            target=worker_main,
            args=(child_end, self.config, index),
            name=f"kexpose-proxy-worker-{index}",
        )
        process.start()
        child_end.close()
        worker = _Worker(index, process, parent_end)
        self.loop.add_reader(parent_end.fileno(), self._on_message, worker)
        self.changed.set()  # its first message: the current table (the worker waits for it)
        return worker

    def _on_message(self, worker: _Worker) -> None:
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            self.loop.remove_reader(worker.conn.fileno())
            return
        self._take(worker, kind, payload)

    def _take(self, worker: _Worker, kind: str, payload: object) -> None:
        if kind == "ready":
            worker.ready = True
        elif kind == "metrics" and isinstance(payload, MetricsSnapshot):
            worker.metrics = payload

    async def _send(self, worker: _Worker, table: RouteTable | None) -> None:
        async with worker.lock:
            if worker.sent is table or worker.retired:
                return
            try:
                # A big table takes a while to pickle and pipe; not on the loop.
                await asyncio.to_thread(worker.conn.send, ("table", table))
            except OSError:
                return  # it died; the watch restarts it, and the replacement gets the table
            worker.sent = table

    async def distribute(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            for w in list(self.workers):
                await self._send(w, self.latest)

    async def watch(self, stop: asyncio.Event) -> None:
        """Restarts dead workers until the crash-loop limit (then ProxyError) or ``stop``.

        ``stop`` is checked as well as this task being cancelled at shutdown: a terminal's
        Ctrl-C sends SIGINT to the workers too, and one may have drained and exited before
        the supervisor's own handler has run.
        """
        due: dict[int, float] = {}  # slot -> when to restart it
        while not stop.is_set():
            now = self.loop.time()
            for w in self.workers:
                if not w.retired and not w.process.is_alive():
                    await self._retire(w)
                    log.error(
                        "worker %d (pid %s) died (%s)",
                        w.index,
                        w.pid,
                        _describe_exit(w.process.exitcode),
                    )
                    delay = self.crash_loop.died(now)  # ProxyError past the limit
                    log.info("restarting worker %d in %.1f s", w.index, delay)
                    due[w.index] = now + delay
            if stop.is_set():
                return
            for index, at in list(due.items()):
                if at <= now:
                    del due[index]
                    self.workers[index] = self.spawn(index)
                    self.restarts += 1
                    log.warning(
                        "worker %d restarted as pid %s", index, self.workers[index].process.pid
                    )
            await asyncio.sleep(WATCH_INTERVAL)

    async def _retire(self, worker: _Worker) -> None:
        """Fold a dead worker's last metrics into the retired total and let its pipe go."""
        worker.retired = True
        self.loop.remove_reader(worker.conn.fileno())
        with contextlib.suppress(EOFError, OSError):
            while worker.conn.poll():  # a last report still in the pipe
                self._take(worker, *worker.conn.recv())
        last = worker.metrics
        worker.metrics = MetricsSnapshot()
        last.active_connections = 0  # its connections died with it
        self.retired.add(last)
        async with worker.lock:  # not while a send to it is still in its thread
            worker.conn.close()

    def snapshot(self) -> MetricsSnapshot:
        total = MetricsSnapshot()
        total.add(self.retired)
        for w in self.workers:
            total.add(w.metrics)
        return total

    def serving(self) -> int:
        return sum(w.serving for w in self.workers)

    async def stop(self) -> None:
        """SIGTERM every worker, give them the drain time, then kill what is left."""
        live = [w for w in self.workers if not w.retired]
        for w in live:
            if w.process.is_alive() and w.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGTERM)
        deadline = self.loop.time() + self.config.data.timeouts.drain + 5
        while any(w.process.is_alive() for w in live) and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        for w in live:
            if w.process.is_alive():
                w.process.kill()
            self.loop.remove_reader(w.conn.fileno())
            w.conn.close()
            w.process.join(1)


class _SupervisionCollector(Collector):
    def __init__(self, supervisor: _Supervisor) -> None:
        self._supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "kexpose_proxy_worker_restarts",
            "Workers restarted after they died.",
            value=self._supervisor.restarts,
        )
        yield GaugeMetricFamily(
            "kexpose_proxy_workers_serving",
            "Workers listening with a route table.",
            value=self._supervisor.serving(),
        )


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


async def supervise(
    config: ProxyConfig, *, started: Callable[[Started], None] | None = None
) -> None:
    from kexpose.proxy.runner import Source, Stopper

    loop = asyncio.get_running_loop()
    sup = _Supervisor(config, loop)
    up = stopping = False
    source = Source(config, sup.on_table)
    source.load_now()
    sup.workers = [sup.spawn(i) for i in range(config.workers)]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(sup.snapshot))
    registry.register(_SupervisionCollector(sup))

    def ready() -> bool:
        return ready_to_serve(
            up=up, stopping=stopping, source_ready=source.ready.is_set(), serving=sup.serving()
        )

    health = HealthServer(ready=ready, registry=registry)
    with Stopper(loop) as stopper:
        health_addr = await health.listen(bind=config.bind, port=config.health_port)
        tasks = {
            loop.create_task(source.run(), name="object source"),
            loop.create_task(sup.distribute(), name="send tables to workers"),
            loop.create_task(stopper.event.wait(), name="wait for a signal"),
        }
        try:
            await _started(sup.workers)
        except BaseException:
            await _cancel(tasks)
            await sup.stop()
            await health.close()
            await source.close()
            raise
        up = True
        log.info("%d workers serving; health on %s:%d", len(sup.workers), *health_addr)
        if started is not None:
            started({"workers": [w.pid for w in sup.workers], "health": health_addr})
        watch = loop.create_task(sup.watch(stopper.event), name="watch and restart workers")
        tasks.add(watch)
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stopping = True
        watch.cancel()  # no restarts from here on, whatever dies
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        await asyncio.sleep(config.data.timeouts.shutdown_delay)
        await sup.stop()
        await _cancel(tasks)
        await health.close()
        await source.close()
        if failed:
            raise failed[0].exception()  # type: ignore[misc]


async def _started(workers: list[_Worker]) -> None:
    """Waits for every first worker to listen. One that dies first is a setup problem (a port
    it cannot bind, a broken install), not a crash to retry: ProxyError."""
    async with asyncio.timeout(STARTUP_TIMEOUT):
        while not all(w.ready for w in workers):
            dead = [w for w in workers if not w.process.is_alive()]
            if dead:
                w = dead[0]
                raise ProxyError(
                    f"worker {w.index} exited before it was serving "
                    f"({_describe_exit(w.process.exitcode)}); see its error above"
                )
            await asyncio.sleep(0.05)


async def _cancel(tasks: Iterable[asyncio.Task[object]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def worker_main(conn: Connection, config: ProxyConfig, index: int) -> None:
    """A worker process: the data plane only, fed route tables by the supervisor."""
    import uvloop

    from kexpose.proxy.ops.logs import configure

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
            got_table.set()
            return
        if kind == "table":
            if payload is not None:
                for problem in plane.swap(payload):
                    log.warning("tls: %s", problem)
            got_table.set()

    def report() -> None:
        with contextlib.suppress(OSError):
            conn.send(("metrics", metrics.snapshot()))
        timer[0] = loop.call_later(METRICS_INTERVAL, report)

    with Stopper(loop) as stopper:
        loop.add_reader(conn.fileno(), on_message)
        # The first message is the table as it is now (None before the control plane has
        # one): a restarted worker must not accept connections with an empty table.
        stop = loop.create_task(stopper.event.wait())
        first = loop.create_task(got_table.wait())
        await asyncio.wait({stop, first}, return_when=asyncio.FIRST_COMPLETED)
        await _cancel({stop, first})
        if stopper.event.is_set():
            loop.remove_reader(conn.fileno())
            return
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
