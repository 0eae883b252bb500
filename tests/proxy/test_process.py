"""The real ``kexpose-proxy`` process: the image's command, SIGTERM and reloads under load,
``--workers``, and exit code 2 for bad flags."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.proxy import process
from tests.proxy.backends import Client, EchoBackend
from tests.proxy.conftest import backend_objects
from tests.proxy.fake_apiserver import FakeApiServer
from tests.proxy.objects import ingress, ingress_class, path, rule, service, sport

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


def manifests(tmp: Path, backend: EchoBackend, *, name: str = "app.yaml") -> Path:
    docs = [
        ingress_class(),
        ingress("web", rule(None, path("/", "web"))),
        *backend_objects("web", [backend]),
    ]
    file = tmp / "manifests" / name
    file.parent.mkdir(exist_ok=True)
    file.write_text(yaml.safe_dump_all(docs))
    return file.parent


async def test_the_image_command_serves_on_a_read_only_root(
    tmp_path: Path, echo: Callable[..., Any]
) -> None:
    """ENTRYPOINT + CMD + ENV from images/proxy/Dockerfile, in-cluster style: no flags, the
    API from the environment, status published for the default publish Service."""
    web = await echo("web")
    ctl = service(
        "kexpose-controller", sport(80), namespace="kexpose-system", clusterIP="10.96.0.9"
    )
    svc, *slices = backend_objects("web", [web])
    api = await FakeApiServer(
        objects={
            "IngressClass": [ingress_class()],
            "Ingress": [ingress("web", rule("app.example.com", path("/", "web")))],
            "Service": [svc, ctl],
            "EndpointSlice": slices,
        }
    ).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(api.kubeconfig()))
    argv, env = process.image_command()
    assert argv == ["kexpose-proxy"]
    read_only = process.can_remount_read_only()
    proxy = process.start(
        argv,
        tmp_path,
        env={**env, "KUBECONFIG": str(kubeconfig), "PATH": os.environ["PATH"]},
        read_only_root=read_only,
    )
    try:
        await proxy.wait_ready()
        c = await Client.connect(("127.0.0.1", proxy.http))
        r = await c.request("GET", "/hello")
        assert r.status == 200
        assert r.json()["backend"] == "web"
        await c.close()
        async with asyncio.timeout(10):
            while not api.patches:
                await asyncio.sleep(0.05)
        assert api.patches[0][1] == {"status": {"loadBalancer": {"ingress": [{"ip": "10.96.0.9"}]}}}
        assert await proxy.get_health("/healthz") == 200
        assert "kexpose_proxy_requests_total" in await proxy.metrics()
        proxy.terminate()
        assert await proxy.wait_exit() == 0
        access = [json.loads(line) for line in proxy.stdout.read_text().splitlines()]
        assert access[0]["ingress"] == "default/web"
        assert access[0]["status"] == 200
    finally:
        proxy.kill()
        await api.stop()
    if not read_only:
        pytest.skip("ran, but could not make the root filesystem read-only here (no unshare)")


class Load:
    """Clients sending requests back to back on keep-alive connections, counting answers."""

    def __init__(self, port: int, clients: int = 6) -> None:
        self.port = port
        self.clients = clients
        self.answered = 0
        self.statuses: dict[int, int] = {}
        self.unanswered = 0  # connection closed before any byte of the answer (retryable)
        self.broken = 0  # a response that started but did not finish
        self.stop = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(*(self._client(i) for i in range(self.clients)))

    async def until_answered(self, n: int, proxy: process.ProxyProcess, within: float = 60) -> None:
        """Wait for ``n`` answers; a proxy that stops answering fails the test with its log
        instead of hanging the suite (one such hang was seen under heavy machine load)."""
        try:
            async with asyncio.timeout(within):
                while self.answered < n:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            self.stop.set()
            raise AssertionError(
                f"{self.answered} of {n} requests answered in {within} s "
                f"({self.unanswered} unanswered, {self.broken} broken); proxy log:\n{proxy.logs()}"
            ) from None

    async def _client(self, i: int) -> None:
        headers = {"x-echo": "sleep:0.2"} if i == 0 else {}
        c: Client | None = None
        while not self.stop.is_set():
            if c is None:
                try:
                    c = await Client.connect(("127.0.0.1", self.port))
                except OSError:
                    return  # no longer accepting: this client is done
            try:
                r = await c.request("GET", "/", host="a", headers=headers)
            except (ConnectionError, TimeoutError):
                self.unanswered += 1
                c = None
                continue
            if r.status == 0:
                self.unanswered += 1
            elif r.closed and r.status == 200 and not r.body:
                self.broken += 1
            else:
                self.answered += 1
                self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
            if r.closed or r.header("connection") == "close":
                await c.close()
                c = None
        if c is not None:
            await c.close()


async def test_sigterm_under_load_loses_no_request(
    tmp_path: Path, echo: Callable[..., Any]
) -> None:
    web = await echo("web")
    proxy = process.start(
        ["kexpose-proxy", "--manifests", str(manifests(tmp_path, web)), "--no-access-log"],
        tmp_path,
    )
    try:
        await proxy.wait_ready()
        load = Load(proxy.http)
        runner = asyncio.create_task(load.run())
        await load.until_answered(200, proxy)
        proxy.terminate()  # one slow request (0.2 s) is in flight on client 0
        assert await proxy.wait_exit() == 0
        load.stop.set()
        async with asyncio.timeout(30):
            await runner
    finally:
        proxy.kill()
    assert load.broken == 0
    assert load.statuses == {200: load.answered}
    # Every request that reached the backend was answered to its client.
    assert web.requests == load.answered
    assert "drained; 0 connection(s) cut" in proxy.logs()


async def test_reload_under_load_serves_every_request(
    tmp_path: Path, echo: Callable[..., Any]
) -> None:
    old = await echo("old", "127.0.0.2")
    new = await echo("new", "127.0.0.3")
    folder = manifests(tmp_path, old)
    proxy = process.start(
        ["kexpose-proxy", "--manifests", str(folder), "--no-access-log"], tmp_path
    )
    try:
        await proxy.wait_ready()
        load = Load(proxy.http)
        runner = asyncio.create_task(load.run())
        await load.until_answered(100, proxy)
        manifests(tmp_path, new)  # rewrite: the Service now points at "new"
        async with asyncio.timeout(10):
            while new.requests < 50:
                await asyncio.sleep(0.01)
        load.stop.set()
        async with asyncio.timeout(30):
            await runner
        proxy.terminate()
        assert await proxy.wait_exit() == 0
    finally:
        proxy.kill()
    assert load.unanswered == 0
    assert load.broken == 0
    assert load.statuses == {200: load.answered}
    assert old.requests + new.requests == load.answered


async def test_workers_share_the_ports(tmp_path: Path, echo: Callable[..., Any]) -> None:
    web = await echo("web")
    proxy = process.start(
        [
            "kexpose-proxy",
            "--manifests",
            str(manifests(tmp_path, web)),
            "--workers",
            "2",
            "--no-access-log",
        ],
        tmp_path,
    )
    try:
        await proxy.wait_ready()
        children = subprocess.run(
            # -ww: without a terminal ps cuts args at 80 columns, and a deep
            # checkout path pushes the module name past the cut.
            ["ps", "-ww", "--ppid", str(proxy.process.pid), "-o", "args="],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        workers = [a for a in children.splitlines() if "multiprocessing.spawn" in a]
        assert len(workers) == 2
        for _ in range(40):
            c = await Client.connect(("127.0.0.1", proxy.http))
            assert (await c.request("GET", "/")).status == 200
            await c.close()
        async with asyncio.timeout(10):
            while 'status="200"} 40.0' not in await proxy.metrics():
                await asyncio.sleep(0.1)
        proxy.terminate()
        assert await proxy.wait_exit() == 0
    finally:
        proxy.kill()
    pids = {
        line.split("[")[-1].split("]")[0]
        for line in proxy.logs().splitlines()
        if "received SIGTERM" in line
    }
    assert len(pids) == 3  # the supervisor and both workers drained
