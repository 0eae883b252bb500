"""``--workers``: a worker killed with SIGKILL is replaced while the others serve; workers that
keep dying end the pod. Over the real process, on loopback."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.proxy import process
from tests.proxy.backends import Client, EchoBackend, Response
from tests.proxy.conftest import backend_objects
from tests.proxy.objects import ingress, ingress_class, path, rule

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


def manifests(tmp: Path, backend: EchoBackend) -> Path:
    """One Ingress for every host, to a Service whose endpoint is ``backend``."""
    docs = [
        ingress_class(),
        ingress("web", rule(None, path("/", "web"))),
        *backend_objects("web", [backend]),
    ]
    folder = tmp / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "app.yaml").write_text(yaml.safe_dump_all(docs))
    return folder


def start(tmp: Path, folder: Path, workers: int = 2) -> process.ProxyProcess:
    argv = ["kexpose-proxy", "--manifests", str(folder), "--workers", str(workers)]
    return process.start([*argv, "--no-access-log"], tmp)


async def until(
    check: Callable[[], bool | Awaitable[bool]],
    what: str,
    *,
    alive: process.ProxyProcess | None = None,
    timeout: float = 30.0,
) -> None:
    """Polls ``check`` (bounded by ``timeout``) until it holds; fails at once if ``alive``
    has exited meanwhile."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                if alive is not None and alive.process.poll() is not None:
                    code = alive.process.returncode
                    raise AssertionError(f"proxy exited {code} waiting for {what}:\n{alive.logs()}")
                result = check()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None


async def fresh_request(port: int) -> Response:
    """One request on a new connection."""
    c = await Client.connect(("127.0.0.1", port))
    try:
        return await c.request("GET", "/", host="a")
    finally:
        await c.close()


class Load:
    """Clients sending requests back to back on keep-alive connections.

    Answers are counted by the ``epoch`` their request was sent in, failures by the epoch
    their connection was opened in: failures on connections opened before a worker died (the
    ones it may have accepted) are told apart from failures on connections opened after.
    """

    def __init__(self, port: int, clients: int = 4) -> None:
        self.port = port
        self.clients = clients
        self.epoch = 0
        self.answered = [0, 0]  # per epoch
        self.failed = [0, 0]
        self.statuses: dict[int, int] = {}
        self.stop = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(*(self._client(i) for i in range(self.clients)))

    async def _client(self, i: int) -> None:
        headers = {"x-echo": "sleep:0.1"} if i == 0 else {}  # keeps a request in flight
        c: Client | None = None
        epoch = 0
        for _ in range(100_000):
            if self.stop.is_set():
                break
            if c is None:
                epoch = self.epoch
                try:
                    c = await Client.connect(("127.0.0.1", self.port))
                except OSError:
                    self.failed[epoch] += 1
                    await asyncio.sleep(0.01)
                    continue
            sent_in = self.epoch
            try:
                r = await c.request("GET", "/", host="a", headers=headers)
            except (ConnectionError, TimeoutError):
                r = None
            if r is None or r.status == 0 or (r.closed and not r.body):
                self.failed[epoch] += 1
                await c.close()
                c = None
                continue
            self.answered[sent_in] += 1
            self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
            if r.closed or r.header("connection") == "close":
                await c.close()
                c = None
        if c is not None:
            await c.close()


class Readiness:
    """Polls ``/readyz`` until stopped, keeping every answer."""

    def __init__(self, proxy: process.ProxyProcess) -> None:
        self.proxy = proxy
        self.answers: list[int] = []
        self.stop = asyncio.Event()

    async def run(self) -> None:
        for _ in range(100_000):
            if self.stop.is_set():
                return
            self.answers.append(await self.proxy.get_health("/readyz"))
            await asyncio.sleep(0.02)


def requests_total(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("kexpose_proxy_requests_total{")
    )


async def test_a_killed_worker_is_replaced_while_the_other_keeps_serving(
    tmp_path: Path, echo: Callable[..., Any]
) -> None:
    """SIGKILL one of two workers under load. The connections it had accepted are lost with
    it (their clients see a reset or an early close); the kernel closes its listening socket
    as the process dies, so every connection opened after that reaches the other worker, and
    then the replacement. The replacement gets the route table as it is now, not as it was at
    startup, before it listens."""
    old = await echo("old", "127.0.0.2")
    new = await echo("new", "127.0.0.3")
    folder = manifests(tmp_path, old)
    proxy = start(tmp_path, folder)
    load = Load(proxy.http)
    readiness = Readiness(proxy)
    tasks: list[asyncio.Task[None]] = []
    try:
        await proxy.wait_ready()
        first = proxy.worker_pids()
        assert len(first) == 2
        manifests(tmp_path, new)  # the table changes after startup, before the kill

        async def both_route_to_new() -> bool:
            for _ in range(20):  # 20 connections: each worker gets some (2^-19 otherwise)
                r = await fresh_request(proxy.http)
                if r.status != 200 or r.json()["backend"] != "new":
                    return False
            return True

        await until(both_route_to_new, "both workers route by the rewritten manifest")
        tasks = [asyncio.create_task(load.run()), asyncio.create_task(readiness.run())]

        async def answered(n: int, epoch: int) -> bool:
            return load.answered[epoch] >= n

        await until(lambda: answered(100, 0), "100 requests under load")
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        await until(lambda: process.gone(victim), "the worker to die")
        load.epoch = 1
        await until(lambda: answered(200, 1), "200 requests after the kill", alive=proxy)

        async def replaced() -> bool:
            pids = proxy.worker_pids()
            return len(pids) == 2 and len(pids - first) == 1

        await until(replaced, "a new worker", alive=proxy)
        (replacement,) = proxy.worker_pids() - first
        # Find a connection the replacement accepted. Its pid appears before it listens (it
        # takes the table first), and on a loaded machine that takes a while, so the search is
        # bounded by time, not by a count of tries: until then the other worker takes them all.
        found: list[Response] = []

        async def replacement_answers() -> bool:
            c = await Client.connect(("127.0.0.1", proxy.http))
            r = await c.request("GET", "/", host="a")
            owner = process.socket_owner(c.writer.get_extra_info("sockname"), {replacement})
            await c.close()
            if owner == replacement:
                found.append(r)
            return bool(found)

        await until(replacement_answers, "a connection the replacement accepted", alive=proxy)
        served = found[0]
        assert served.status == 200
        assert served.json()["backend"] == "new"
        before = load.answered[1]
        await until(lambda: answered(before + 100, 1), "100 more requests", alive=proxy)
        load.stop.set()
        readiness.stop.set()
        await asyncio.gather(*tasks)
        assert set(readiness.answers) == {200}
        assert proxy.process.poll() is None
        proxy.terminate()
        assert await proxy.wait_exit() == 0
    finally:
        load.stop.set()
        readiness.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        proxy.kill()
    # Connections opened once the worker was gone all reached a live worker.
    assert load.failed[1] == 0
    # Lost: at most the request in flight on each client's connection to the dead worker,
    # and a reconnect that landed in its listen queue before it was closed.
    assert load.failed[0] <= 2 * load.clients
    assert load.statuses == {200: sum(load.answered)}
    assert re.search(rf"worker 0 \(pid {victim}\) died.*SIGKILL", proxy.logs()) or re.search(
        rf"worker 1 \(pid {victim}\) died.*SIGKILL", proxy.logs()
    ), proxy.logs()


async def test_metrics_of_a_dead_worker_are_kept(tmp_path: Path, echo: Callable[..., Any]) -> None:
    """Counters stay monotonic across a worker's death: its last report is folded into a
    retired total instead of vanishing (Prometheus would read the drop as a counter reset and
    count everything again) or being counted twice."""
    web = await echo("web")
    proxy = start(tmp_path, manifests(tmp_path, web))
    try:
        await proxy.wait_ready()
        first = proxy.worker_pids()
        for _ in range(40):
            assert (await fresh_request(proxy.http)).status == 200

        async def counted(n: int) -> bool:
            return requests_total(await proxy.metrics()) == n

        await until(lambda: counted(40), "40 requests in /metrics")
        victim = min(first)
        os.kill(victim, signal.SIGKILL)

        async def replaced() -> bool:
            new = proxy.worker_pids() - first
            return len(new) == 1 and await proxy.get_health("/readyz") == 200

        await until(replaced, "a new worker", alive=proxy)
        assert requests_total(await proxy.metrics()) == 40
        for _ in range(10):
            assert (await fresh_request(proxy.http)).status == 200
        await until(lambda: counted(50), "50 requests in /metrics", alive=proxy)
        assert "kexpose_proxy_worker_restarts_total 1.0" in await proxy.metrics()
        proxy.terminate()
        assert await proxy.wait_exit() == 0
    finally:
        proxy.kill()


async def test_workers_that_keep_dying_end_the_pod(
    tmp_path: Path, echo: Callable[..., Any]
) -> None:
    """A worker that dies again and again (a bug hit at startup or by a request that keeps
    coming) is not restarted forever: past the limit the supervisor drains the rest and exits
    1, so that Kubernetes counts the restarts and backs off (CrashLoopBackOff)."""
    from kexpose.proxy.settings import WorkerSettings

    limit = WorkerSettings().restart_limit
    web = await echo("web")
    proxy = start(tmp_path, manifests(tmp_path, web))
    try:
        await proxy.wait_ready()
        killed: set[int] = set()
        readiness: list[int] = []
        async with asyncio.timeout(60):
            while proxy.process.poll() is None and len(killed) <= limit + 2:
                for pid in proxy.worker_pids() - killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                readiness.append(await proxy.get_health("/readyz"))
                await asyncio.sleep(0.05)
        assert await proxy.wait_exit() == 1
    finally:
        proxy.kill()
    # The deaths past the limit: the one that ended the pod, none restarted after it.
    assert limit < len(killed) <= limit + 2
    # While no worker served (each killed as it appeared), the pod was not ready.
    assert 503 in readiness
    logs = proxy.logs()
    assert f"workers died {limit + 1} times within" in logs, logs
    assert "crash loop" in logs


async def test_no_restart_during_shutdown(tmp_path: Path, echo: Callable[..., Any]) -> None:
    """After SIGTERM a worker that dies stays dead: shutdown is not undone by a restart, and
    the exit is still 0 (the pod was asked to stop)."""
    web = await echo("web")
    folder = manifests(tmp_path, web)
    argv = ["kexpose-proxy", "--manifests", str(folder), "--workers", "2", "--no-access-log"]
    proxy = process.start([*argv, "--shutdown-delay", "2"], tmp_path)
    try:
        await proxy.wait_ready()
        first = proxy.worker_pids()
        proxy.terminate()
        await until(lambda: "received SIGTERM" in proxy.logs(), "the supervisor's drain")
        os.kill(min(first), signal.SIGKILL)
        assert await proxy.wait_exit() == 0
    finally:
        proxy.kill()
    assert "restarting" not in proxy.logs()
