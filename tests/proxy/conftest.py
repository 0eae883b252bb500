"""Fixtures for the proxy tests: uvloop, per-run TLS material, echo backends, a running proxy."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvloop
from tests.proxy.backends import Client, EchoBackend
from tests.proxy.objects import endpoint, endpoint_slice, ingress_class, service, sport

from kexpose.certs import KeyPair, self_signed
from kexpose.defaults import CONTROLLER_NAME
from kexpose.proxy.dataplane.server import DataPlane
from kexpose.proxy.routes import Claim, ObjectSet, build_table
from kexpose.proxy.settings import DataPlaneSettings, Timeouts

CLAIM = Claim(CONTROLLER_NAME, ingress_class="kexpose")

#: Short timeouts so that timeout tests take a fraction of a second, with a sweep to match.
FAST = DataPlaneSettings(
    timeouts=Timeouts(
        header=0.5,
        client_body=0.5,
        keepalive=2.0,
        upstream_connect=0.5,
        upstream_read=0.5,
        upstream_idle=2.0,
        tunnel_idle=2.0,
        drain=2.0,
    ),
    sweep_interval=0.02,
    access_log=False,
)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    # The proxy runs on uvloop in production; its tests do too.
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(autouse=True)
def _no_leaked_tasks(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if request.node.get_closest_marker("asyncio") is None:
        return
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        return
    if loop.is_closed():
        return
    leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if leftover:
        pytest.fail(f"tasks left running: {leftover}")


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    pairs: dict[str, KeyPair]

    def client_context(self, *, verify: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Self-signed certificates made for this run (trusted by the test clients directly)."""
    pairs = {
        "default": self_signed(["kexpose-default.invalid"]),
        "app": self_signed(["app.example.com"]),
        "wild": self_signed(["*.wild.example.com"]),
    }
    ca = tmp_path_factory.mktemp("pki") / "trusted.pem"
    ca.write_text("".join(p.cert_pem for p in pairs.values()))
    return Pki(ca, pairs)


def backend_objects(name: str, backends: Sequence[EchoBackend], *, port: int = 80) -> list[Any]:
    """A Service and an EndpointSlice pointing at running echo backends.

    EndpointSlices carry one port per slice, so backends on different ports get a slice each.
    """
    objs: list[Any] = [service(name, sport(port, "http", name="http"))]
    for i, b in enumerate(backends):
        objs.append(
            endpoint_slice(name, [endpoint(b.host)], [("http", b.port)], name=f"{name}-{i}")
        )
    return objs


@dataclass
class Proxy:
    plane: DataPlane
    http: tuple[str, int]
    https: tuple[str, int]
    objects: list[Any] = field(default_factory=list)

    def load(self, *objs: Any) -> None:
        """Replace the object set (an IngressClass of ours is always there)."""
        docs = [ingress_class(), *objs]
        objects, problems = ObjectSet.from_documents(docs)
        assert not problems
        self.plane.swap(build_table(objects, claim=CLAIM))

    async def client(self, *, tls: ssl.SSLContext | None = None, sni: str | None = None) -> Client:
        return await Client.connect(self.https if tls else self.http, tls=tls, sni=sni)


ProxyFactory = Callable[..., Any]


@pytest_asyncio.fixture
async def start_proxy(pki: Pki) -> AsyncIterator[ProxyFactory]:
    planes: list[DataPlane] = []

    async def start(settings: DataPlaneSettings = FAST) -> Proxy:
        plane = DataPlane(settings=settings, default_certificate=pki.pairs["default"])
        bound = await plane.listen(bind="127.0.0.1", http_port=0, https_port=0)
        planes.append(plane)
        addrs = dict(bound)
        return Proxy(plane, addrs["http"], addrs["https"])

    yield start
    for plane in planes:
        await plane.close()


@pytest_asyncio.fixture
async def echo() -> AsyncIterator[Callable[..., Any]]:
    started: list[EchoBackend] = []

    async def make(name: str, host: str = "127.0.0.2") -> EchoBackend:
        b = await EchoBackend(name, host).start()
        started.append(b)
        return b

    yield make
    for b in started:
        await b.stop()


@pytest_asyncio.fixture
async def running() -> AsyncIterator[Callable[..., Any]]:
    """Start control planes (``running(plane)``); cancelled and awaited at the end."""
    from kexpose.proxy.control.plane import ControlPlane

    tasks: list[asyncio.Task[None]] = []

    def start(plane: ControlPlane) -> asyncio.Task[None]:
        task = asyncio.create_task(plane.run())
        tasks.append(task)
        return task

    yield start
    for task in tasks:
        task.cancel()
    for task in tasks:
        with pytest.raises((asyncio.CancelledError, BaseExceptionGroup)):
            await task
