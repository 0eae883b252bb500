"""What the data plane's objects need of each other, as Protocols.

An exchange (``_exchange``) serves one request for a *downstream*: an HTTP/1.1 client
connection (``_downstream``) or one stream of an HTTP/2 connection (``_http2``). Both satisfy
``Downstream``, so the exchange imports neither, and neither protocol's connection imports the
data plane (``server``), which they know only as a ``Plane``. The import graph is then a stack:
``server`` over the two protocols' connections, over ``_exchange``, over this module, over
``_upstream`` (which states what it needs of an exchange in its own ``Requester``);
import-linter keeps it that way (``pyproject.toml``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from kexpose.proxy.dataplane._balancer import Balancer
from kexpose.proxy.dataplane._messages import HeadRewrite, RequestHead
from kexpose.proxy.dataplane._mirror import Mirrors
from kexpose.proxy.dataplane._upstream import Pool, ResponseSink, Upstream
from kexpose.proxy.dataplane._upstream_h2c import H2cPool
from kexpose.proxy.filters import EdgeAuth
from kexpose.proxy.ops.metrics import Metrics
from kexpose.proxy.routes import Endpoint, Route, RouteTable, WeightedBackend
from kexpose.proxy.settings import DataPlaneSettings

__all__ = ["Connection", "Downstream", "Finished", "Plane", "UpstreamPool"]

T = TypeVar("T")


class Connection(Protocol):
    """What the plane's sweeper and staged shutdown need of an accepted connection."""

    transport: asyncio.Transport | None
    deadline: float
    """Reading the client: head, body or keep-alive idleness (0: none)."""
    upstream_deadline: float
    """Waiting for an endpoint's next bytes (0: not waiting)."""
    upstream_reads: int
    upstream_mark: int

    def expire(self) -> None: ...
    def expire_upstream(self) -> None: ...
    def shutdown(self) -> None: ...
    def abort(self) -> None: ...


class Downstream(ResponseSink, Protocol):
    """What an exchange needs of the client it answers: an HTTP/1.1 connection, whose requests
    take turns, or an HTTP/2 stream, one of many on its connection."""

    plane: Plane
    scheme: bytes
    gateway: tuple[str, int] | None
    """``(gateway namespace/name, port)`` on a Gateway port; None: the Ingress listeners."""
    sni: str | None
    peer: str
    """The client's address as text (``--trusted-proxies`` decides what counts as the client)."""
    forwarded: bytes
    """The X-Forwarded-For/-Real-IP/-Proto/-Scheme header lines of this client."""
    peer_bytes: bytes
    upstream_deadline: float

    def abort(self) -> None:
        """Cut the response short (part of it is out and the rest cannot follow)."""

    def exchange_done(self, ex: Finished) -> None: ...
    def waiting_for_upstream(self) -> None: ...


class Guarded(Protocol):
    """What edge authentication (``_guard``) needs of the exchange it checks: its request, and
    a way to answer it (a challenge, a refusal) or to let it on with header changes."""

    client: Downstream
    req: RequestHead
    status: int
    error: str
    keep_alive: bool
    finished: bool
    auth_headers: HeadRewrite | None

    def respond(
        self, status: int, *, close: bool = False, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None: ...

    def response_complete(self) -> None: ...


class Gate(Protocol):
    """The edge-authentication step (``_guard.EdgeGuard``) as an exchange sees it: ``proceed``
    runs when the request may go on; otherwise the gate answers it. ``admits``: the checks
    without credentials alone (configuration, allow-list); False when it answered."""

    def admits(self, ex: Guarded, auth: EdgeAuth) -> bool: ...
    def check(self, ex: Guarded, auth: EdgeAuth, proceed: Callable[[], None]) -> None: ...


class Finished(Protocol):
    """What the plane records (metrics, access log) of a finished exchange, and what its
    downstream needs to know when it is done."""

    client: Downstream
    started: float
    req: RequestHead
    route: Route | WeightedBackend | None
    status: int
    response_bytes: int
    endpoint: Endpoint | None
    error: str
    request_id: bytes | None
    keep_alive: bool

    def new_request_id(self) -> bytes: ...


class UpstreamPool(Protocol):
    """Where an exchange gets its way to an endpoint: ``Pool`` (HTTP/1.1 connections) or
    ``H2cPool`` (streams of h2c connections)."""

    def take(self, endpoint: Endpoint) -> Upstream | None: ...
    async def connect(self, endpoint: Endpoint) -> Upstream: ...


class Plane(Protocol):
    """What connections and exchanges need of the data plane (``server.DataPlane``)."""

    loop: asyncio.AbstractEventLoop
    settings: DataPlaneSettings
    table: RouteTable
    balancers: dict[str, Balancer]
    pool: Pool
    h2c_pool: H2cPool
    mirrors: Mirrors

    @property
    def guard(self) -> Gate: ...

    metrics: Metrics
    closing: bool
    heads: dict[bytes, dict[bytes, RequestHead]]
    hosts: dict[bytes, dict[bytes, tuple[str, bytes]]]

    def spawn(
        self, coro: Coroutine[Any, Any, T], done: Callable[[asyncio.Task[T]], None]
    ) -> asyncio.Task[T]: ...

    def record(self, ex: Finished) -> None: ...
    def opened(self, conn: Connection) -> None: ...
    def closed(self, conn: Connection) -> None: ...
