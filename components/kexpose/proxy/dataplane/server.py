"""The data plane: listeners, the current route table, and staged shutdown.

Requests are served by callback Protocols (``_downstream``, ``_upstream``) on whatever loop
runs (uvloop in production); nothing here runs per request except :meth:`DataPlane.record`.
The route table is swapped whole (:meth:`DataPlane.swap`); a request looks the table up once,
so in-flight requests finish with the routes they started with.

Shutdown is staged as in uvicorn: stop accepting, close idle connections, let busy ones finish
(each then closes with ``Connection: close``) up to ``Timeouts.drain``, then cut the rest.

Client connections are capped below the descriptor limit (:func:`connection_cap`): past the
cap a new connection is closed at once, so running out of descriptors costs new clients,
never the process, the manifest poll, the API watch or the health port.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import sys
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import Any, Final, TypeVar

from kexpose.certs import KeyPair
from kexpose.proxy.dataplane._balancer import Balancer, refresh_balancers
from kexpose.proxy.dataplane._downstream import ClientConnection
from kexpose.proxy.dataplane._guard import EdgeGuard
from kexpose.proxy.dataplane._messages import RequestHead
from kexpose.proxy.dataplane._mirror import Mirrors
from kexpose.proxy.dataplane._roles import Connection, Finished
from kexpose.proxy.dataplane._tls import TlsContexts
from kexpose.proxy.dataplane._upstream import Pool
from kexpose.proxy.dataplane._upstream_h2c import H2cPool
from kexpose.proxy.ops.access_log import AccessLog
from kexpose.proxy.ops.metrics import Metrics, Series
from kexpose.proxy.routes import Route, RouteTable, WeightedBackend
from kexpose.proxy.settings import DataPlaneSettings

__all__ = ["DataPlane", "Listener"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: (scheme, bound address) of one listening socket.
Listener = tuple[str, tuple[str, int]]


#: Descriptors never given to client connections: listeners, the health port, the manifest
#: poll or the API watch, TLS and log files, and libuv's own (its loop, its EMFILE reserve).
FD_RESERVE: Final = 64

_REFUSAL_LOG_INTERVAL: Final = 10.0

#: How long a TLS connection we close waits for the client's close_notify before its socket is
#: closed. The closer need not wait at all (RFC 8446 §6.1), and some clients never answer: h2load
#: ends a timed run with GOAWAY while streams are under way and waits for the TCP close, and
#: with uvloop's default (30 s) such connections stayed open 30 s. nginx does not wait either.
_TLS_SHUTDOWN: Final = 1.0


def connection_cap() -> tuple[int, int]:
    """``(RLIMIT_NOFILE soft limit, most client connections)``.

    Running out of descriptors must cost new connections, never the process (issue 14): a
    client connection is accepted only while half of what the reserve leaves is free, because
    each busy client needs an upstream connection too (and the keep-alive pool holds about as
    many as were busy at once). Without the cap, accept takes the last descriptor: libuv then
    accepts and closes whatever waits (its EMFILE "reserve descriptor" trick, ``uv__server_io``)
    while the manifest poll, the API watch and the health port fail with EMFILE; and if that
    trick itself fails, uvloop closes the listening socket for good
    (``UVStreamServer._fatal_error`` on an OSError, uvloop 0.23).
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return soft, sys.maxsize
    return soft, max(8, (soft - FD_RESERVE) // 2)


class DataPlane:
    def __init__(
        self,
        *,
        settings: DataPlaneSettings,
        default_certificate: KeyPair,
        metrics: Metrics | None = None,
        access_log: AccessLog | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.access_log = access_log if settings.access_log else None
        self.tls = TlsContexts(default_certificate.cert_pem, default_certificate.key_pem)
        self._default_certificate = default_certificate
        self._gateway_servers: dict[tuple[str, int], tuple[str, str, asyncio.Server]] = {}
        """(address, port) -> (gateway, protocol, server) of the Gateway ports' sockets."""
        self._gateway_tls: dict[tuple[str, int], TlsContexts] = {}
        """(gateway, port) -> the SNI selection of that HTTPS port."""
        self._gateway_sync: asyncio.Task[None] | None = None
        self.gateway_bind_problems: dict[tuple[str, int], str] = {}
        """(address, port) -> why it could not be bound (the last attempt)."""
        self.table = RouteTable()
        self.balancers: dict[str, Balancer] = {}
        self.pool = Pool(self.loop, settings)
        self.h2c_pool = H2cPool(self.loop, settings)
        self.mirrors = Mirrors()
        self.guard = EdgeGuard(settings)
        """Edge authentication (``_guard``): its caches outlive table swaps."""
        self.heads: dict[bytes, dict[bytes, RequestHead]] = {b"http": {}, b"https": {}}
        """Per scheme: request head bytes -> its plan (see ``_downstream``)."""
        self.hosts: dict[bytes, dict[bytes, tuple[str, bytes]]] = {b"http": {}, b"https": {}}
        """Per scheme: raw Host header -> (route key, X-Forwarded-Port). Host values repeat, so
        each is checked once. Per scheme because a Host without a port means 80 or 443."""
        self.connections: set[Connection] = set()
        self._endpoints: dict[tuple[str, int], bytes] = {}
        self._routes: dict[int, tuple[Series, bytes]] = {}
        """id(route) -> (its metrics series, its access-log label); emptied at every swap."""
        self.closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._fd_limit, self.max_connections = connection_cap()
        self._refused = 0
        self._refusal_logged_at = -_REFUSAL_LOG_INTERVAL

    # --- configuration ------------------------------------------------------------------------

    def swap(self, table: RouteTable) -> list[str]:
        """Make ``table`` current; returns TLS problems to log. In-flight requests keep theirs."""
        problems = self.tls.update(table.certificates)
        for port in table.gateway_ports.values():
            if port.protocol == "HTTPS":
                contexts = self._gateway_tls.get((port.gateway, port.port))
                if contexts is None:
                    pair = self._default_certificate
                    contexts = TlsContexts(pair.cert_pem, pair.key_pem)
                    self._gateway_tls[(port.gateway, port.port)] = contexts
                problems += contexts.update(port.certificates, port.client_validation)
        self.balancers = refresh_balancers(
            self.balancers, table.backends, policy=self.settings.balance
        )
        self.table = table
        self._routes = {}
        self.metrics.reloaded()
        if (table.gateway_ports or self._gateway_servers) and not self.closing:
            self._sync_gateway_ports()
        return problems

    # --- Gateway ports ------------------------------------------------------------------------

    def _sync_gateway_ports(self) -> None:
        """Open the sockets the current table's Gateway ports need, close those it no longer
        does (in the background: binding is I/O). Serialised: one sync at a time, and a sync
        always reads the newest table."""
        if self._gateway_sync is not None and not self._gateway_sync.done():
            self._gateway_sync.add_done_callback(lambda _: self._sync_gateway_ports())
            return
        self._gateway_sync = self.loop.create_task(self._gateway_ports())
        self._tasks.add(self._gateway_sync)
        self._gateway_sync.add_done_callback(self._tasks.discard)

    async def _gateway_ports(self) -> None:
        wanted = {
            (address, port.port): port
            for port in self.table.gateway_ports.values()
            for address in port.addresses
        }
        for key, (gateway, protocol, server) in list(self._gateway_servers.items()):
            port = wanted.get(key)
            if port is None or (port.gateway, port.protocol) != (gateway, protocol):
                server.close()
                del self._gateway_servers[key]
                log.info("gateway %s: stopped listening on %s:%d", gateway, *key)
        for key in [k for k in self._gateway_tls if k not in self.table.gateway_ports]:
            del self._gateway_tls[key]
        for (address, number), port in wanted.items():
            if (address, number) in self._gateway_servers or self.closing:
                continue
            scheme = b"https" if port.protocol == "HTTPS" else b"http"
            contexts = self._gateway_tls.get((port.gateway, number))
            tls = contexts.default if contexts is not None else None

            def factory(
                scheme: bytes = scheme, key: tuple[str, int] = (port.gateway, number)
            ) -> ClientConnection:
                return ClientConnection(self, scheme, key)

            try:
                server = await self.loop.create_server(
                    factory,
                    host=address,
                    port=number,
                    ssl=tls,
                    backlog=4096,
                    ssl_handshake_timeout=self.settings.timeouts.tls_handshake if tls else None,
                    ssl_shutdown_timeout=_TLS_SHUTDOWN if tls else None,
                )
            except OSError as exc:
                why = f"cannot listen on {address}:{number}: {exc.strerror or exc}"
                if self.gateway_bind_problems.get((address, number)) != why:
                    log.warning("gateway %s: %s", port.gateway, why)
                self.gateway_bind_problems[(address, number)] = why
                continue
            self.gateway_bind_problems.pop((address, number), None)
            self._gateway_servers[(address, number)] = (port.gateway, port.protocol, server)
            log.info(
                "gateway %s: listening on %s:%d (%s)", port.gateway, address, number, port.protocol
            )
        self._schedule_sweep()

    async def gateway_ports_ready(self) -> None:
        """Wait until the sockets of the current table's Gateway ports are open (tests, and the
        status writer: a Gateway is Programmed once it can be reached)."""
        while self._gateway_sync is not None and not self._gateway_sync.done():
            await asyncio.shield(self._gateway_sync)

    def gateway_addresses(self) -> list[tuple[str, int]]:
        """The Gateway sockets open now, ``(address, port)``."""
        return sorted(self._gateway_servers)

    # --- listening ----------------------------------------------------------------------------

    async def listen(
        self,
        *,
        bind: str,
        http_port: int | None,
        https_port: int | None,
        reuse_port: bool = False,
    ) -> list[Listener]:
        """Open the listeners; port 0 picks a free port. Returns what was bound."""
        bound: list[Listener] = []
        for scheme, port in (("http", http_port), ("https", https_port)):
            if port is None:
                continue
            tls = self.tls.default if scheme == "https" else None
            raw = scheme.encode()

            def factory(raw: bytes = raw) -> ClientConnection:
                return ClientConnection(self, raw)

            server = await self.loop.create_server(
                factory,
                host=bind,
                port=port,
                ssl=tls,
                reuse_port=reuse_port or None,
                backlog=4096,
                ssl_handshake_timeout=self.settings.timeouts.tls_handshake if tls else None,
                ssl_shutdown_timeout=_TLS_SHUTDOWN if tls else None,
            )
            self._servers.append(server)
            for sock in server.sockets:
                addr = sock.getsockname()
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    bound.append((scheme, (addr[0], addr[1])))
        self._schedule_sweep()
        return bound

    # --- bookkeeping called by connections ----------------------------------------------------

    def opened(self, conn: Connection) -> None:
        if len(self.connections) >= self.max_connections:
            self._refuse(conn)
            return
        self.connections.add(conn)
        self.metrics.connection_opened()
        if self.closing:
            conn.shutdown()

    def _refuse(self, conn: Connection) -> None:
        """Over the cap: close at once (the client sees a reset, as at nginx's
        ``worker_connections``) and say so, at most once per ``_REFUSAL_LOG_INTERVAL``."""
        conn.abort()
        self._refused += 1
        now = self.loop.time()
        if now >= self._refusal_logged_at + _REFUSAL_LOG_INTERVAL:
            log.warning(
                "refused %d connection(s): %d open, the cap for a descriptor limit of %d "
                "(RLIMIT_NOFILE); raise `ulimit -n` to serve more",
                self._refused,
                len(self.connections),
                self._fd_limit,
            )
            self._refused = 0
            self._refusal_logged_at = now

    def closed(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self.metrics.connection_closed()

    @property
    def mirrors(self) -> Mirrors:
        """Request mirrors' copies in flight and their counters (``_mirror``); the same object
        is the metrics' mirror counters, so ``/metrics`` reports what the copies did."""
        return self._mirrors

    @mirrors.setter
    def mirrors(self, mirrors: Mirrors) -> None:
        self._mirrors = mirrors
        self.metrics.mirrors = mirrors

    def spawn(
        self, coro: Coroutine[Any, Any, T], done: Callable[[asyncio.Task[T]], None]
    ) -> asyncio.Task[T]:
        """Run ``coro`` as a task this plane owns (cancelled at close); ``done`` gets the task."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(done)
        return task

    def record(self, ex: Finished) -> None:
        """Metrics and the access log for a finished exchange."""
        # perf_counter, not loop.time(): libuv's clock ticks in whole milliseconds.
        duration = perf_counter() - ex.started
        route = ex.route
        # Per-route entries by id: hashing a Route hashes its whole backend. The table holds
        # its routes alive and the dict is emptied at every swap, so ids cannot go stale.
        entry = self._routes.get(id(route))
        if entry is None:
            entry = self._route_entry(route)
        entry[0].observe(ex.status, duration)
        access_log = self.access_log
        if access_log is None:
            return
        req = ex.req
        log = req.log
        if log is None:
            log = req.log = access_log.request_part(
                req.method, req.host_header or b"", req.target, req.agent, req.request_id
            )
        ep = ex.endpoint
        access_log.request(
            ex.client.peer_bytes,
            log[1] if req.request_id is not None else ex.request_id or ex.new_request_id(),
            log[0],
            ex.status,
            ex.response_bytes,
            duration,
            b"" if ep is None else self._endpoints.get(ep) or self._endpoint_label(ep),
            entry[1],
            ex.error,
        )

    def _route_entry(self, route: Route | WeightedBackend | None) -> tuple[Series, bytes]:
        ingress, service = (route.ingress, route.backend.key) if route is not None else ("", "")
        label = self.access_log.label(ingress, service) if self.access_log is not None else b""
        entry = self._routes[id(route)] = (self.metrics.series(ingress, service), label)
        return entry

    def _endpoint_label(self, ep: tuple[str, int]) -> bytes:
        if len(self._endpoints) > 10_000:
            self._endpoints.clear()
        label = self._endpoints[ep] = f"{ep[0]}:{ep[1]}".encode()
        return label

    # --- deadlines ----------------------------------------------------------------------------

    def _schedule_sweep(self) -> None:
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self.settings.sweep_interval, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = self.loop.time()
        read_timeout = self.settings.timeouts.upstream_read
        for conn in list(self.connections):
            if conn.deadline and conn.deadline <= now:
                conn.expire()
            if conn.upstream_deadline:
                # The endpoint's activity is counted per read, not timed: a time read per
                # packet costs more than this check once per sweep.
                if conn.upstream_reads != conn.upstream_mark:
                    conn.upstream_mark = conn.upstream_reads
                    conn.upstream_deadline = now + read_timeout
                elif conn.upstream_deadline <= now:
                    conn.expire_upstream()
        self.pool.sweep(now)
        self.h2c_pool.sweep(now)
        if self.access_log is not None:
            self.access_log.flush()
        self._schedule_sweep()

    # --- shutdown -----------------------------------------------------------------------------

    def stop_accepting(self) -> None:
        for server in self._servers:
            server.close()
        for _, _, server in self._gateway_servers.values():
            server.close()

    async def drain(self, timeout: float | None = None) -> int:
        """Stop accepting, finish in-flight requests, then cut what is left; returns that count."""
        self.closing = True
        self.stop_accepting()
        for conn in list(self.connections):
            conn.shutdown()
        limit = self.loop.time() + (self.settings.timeouts.drain if timeout is None else timeout)
        while self.connections and self.loop.time() < limit:
            await asyncio.sleep(min(0.05, self.settings.sweep_interval))
        cut = len(self.connections)
        for conn in list(self.connections):
            conn.abort()
        await self.close()
        return cut

    async def close(self) -> None:
        self.closing = True
        self.stop_accepting()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        for _, _, server in self._gateway_servers.values():
            await server.wait_closed()
        self._gateway_servers.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.connections):
            conn.abort()
        for task in list(self._tasks):
            task.cancel("data plane closed")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.pool.close_all()
        self.h2c_pool.close_all()
        self.guard.close()
        if self.access_log is not None:
            self.access_log.flush()
