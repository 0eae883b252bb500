"""The fuzzer's rig: one in-process proxy in front of a recording backend, and the verdict.

``Rig.send(stream)`` writes one client's bytes to the proxy on a fresh connection, reads the
answers, hangs up, and waits until the proxy and the backend are quiet again. The backend
records the exact bytes of every upstream connection and answers each request it reads with a
fixed ``200`` that names the connection (``x-fuzz-conn``), so a client's response tells which
upstream connection served it.
The proxy keeps no idle upstream connections (``upstream_keepalive=0``), so every upstream
connection carries the one request the proxy meant to send on it, and whatever else it sent.

``violations`` compares the two sides through the oracle (``fuzz_oracle``) and names each
broken rule; the rules and their reasons are in its docstring.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Final, cast

from tests.proxy.fuzz_oracle import (
    Message,
    Parsed,
    expected_target_and_host,
    parse_stream,
    strict_refusal,
)
from tests.proxy.objects import backend, ingress, ingress_class

from kexpose.certs import KeyPair
from kexpose.defaults import CONTROLLER_NAME
from kexpose.proxy.dataplane.server import DataPlane
from kexpose.proxy.routes import Claim, ObjectSet, build_table
from kexpose.proxy.settings import DataPlaneSettings, Limits, Timeouts

__all__ = ["SETTINGS", "Observation", "Rig", "Violation", "violations"]

#: Short client timeouts so that a stream that stops mid-message costs a quarter second, and a
#: short keep-alive so that every conversation can end with the proxy closing; no idle upstream
#: connections, so that each upstream connection holds one exchange.
SETTINGS: Final = DataPlaneSettings(
    timeouts=Timeouts(
        header=0.25,
        client_body=0.25,
        keepalive=0.05,
        upstream_connect=1.0,
        upstream_read=1.0,
        upstream_idle=1.0,
        tunnel_idle=0.5,
        drain=0.5,
    ),
    limits=Limits(upstream_keepalive=0),
    sweep_interval=0.02,
    access_log=False,
)

#: Longest wait for the proxy to answer or close, well above every timeout in SETTINGS: reaching
#: it means the proxy hung.
_ANSWER_CAP: Final = 2.0
#: After the last expected response of a stream that stops mid-message, how long to keep
#: listening for anything more before hanging up.
_GRACE: Final = 0.03
_QUIET_CAP: Final = 3.0

_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CONN = re.compile(rb"\r\nx-fuzz-conn:[ \t]*(\d+)", re.IGNORECASE)


class _Recorder(asyncio.Protocol):
    def __init__(self, backend: RecordingBackend) -> None:
        self.backend = backend
        self.index = len(backend.connections)
        self.data = bytearray()
        self.answered = 0
        self.open = True
        self.transport: asyncio.Transport | None = None
        backend.connections.append(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.data += data
        done = parse_stream(bytes(self.data)).complete
        for msg in done[self.answered :]:
            body = b"" if msg.method == b"HEAD" else b"ok"
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-fuzz-conn: %d\r\n\r\n%b"
                % (self.index, body)
            )
        self.answered = len(done)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False


@dataclass
class RecordingBackend:
    host: str = "127.0.0.2"
    port: int = 0
    connections: list[_Recorder] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Recorder(self), self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for rec in self.connections:
                if rec.transport is not None:
                    rec.transport.abort()
            await self._server.wait_closed()


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    conn: int | None
    """The upstream connection that answered (``x-fuzz-conn``), None for the proxy's own."""


@dataclass(frozen=True, slots=True)
class Observation:
    responses: tuple[Response, ...]
    closed: bool
    """The proxy closed the connection (or reset it)."""
    hung: bool
    """Not closed within ``_ANSWER_CAP`` (every timeout in ``SETTINGS`` is well below it)."""
    upstream: tuple[bytes, ...]
    """The bytes of each upstream connection, in the order the backend accepted them."""
    stuck: bool = False
    """The proxy or the backend still had a connection or task open after the client left."""


def split_responses(data: bytes, methods: list[bytes]) -> list[Response]:
    """The responses in ``data`` (all framed by Content-Length, ours and the proxy's); stops at
    the first thing that is not a response."""
    out: list[Response] = []
    pos = 0
    while pos < len(data):
        m = _STATUS.match(data, pos)
        end = data.find(b"\r\n\r\n", pos)
        if m is None or end < 0:
            break
        head = data[m.end() - 2 : end + 2]
        conn = _CONN.search(head)
        length = _CONTENT_LENGTH.search(head)
        head_request = len(out) < len(methods) and methods[len(out)] == b"HEAD"
        size = int(length.group(1)) if length and not (head_request and conn) else 0
        out.append(Response(int(m.group(1)), int(conn.group(1)) if conn else None))
        pos = end + 4 + size
    return out


class Rig:
    """The proxy and the backend, on a loop the caller owns and runs."""

    def __init__(self, certificate: KeyPair) -> None:
        self.certificate = certificate
        self.backend = RecordingBackend()
        self.plane: DataPlane | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    async def start(self) -> None:
        await self.backend.start()
        self.plane = plane = DataPlane(settings=SETTINGS, default_certificate=self.certificate)
        bound = dict(await plane.listen(bind="127.0.0.1", http_port=0, https_port=0))
        self.address = bound["http"]
        # One catch-all route (every host, every path) to the backend, so that no request is
        # answered 404 for want of a route: what the proxy refuses, it refuses for its syntax.
        docs = [
            ingress_class(),
            ingress("fuzz", default=backend("sink")),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "sink", "namespace": "default"},
                "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "sink-1",
                    "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "sink"},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [self.backend.host], "conditions": {"ready": True}}],
                "ports": [{"name": "http", "port": self.backend.port, "protocol": "TCP"}],
            },
        ]
        objects, problems = ObjectSet.from_documents(docs)
        assert not problems, problems
        plane.swap(build_table(objects, claim=Claim(CONTROLLER_NAME, ingress_class="kexpose")))

    async def stop(self) -> None:
        if self.plane is not None:
            await self.plane.close()
        await self.backend.stop()

    async def send(self, stream: bytes, oracle: Parsed) -> Observation:
        """One client connection: ``stream`` in, the proxy's answers and the backend's bytes out."""
        self.backend.connections.clear()
        reader, writer = await asyncio.open_connection(*self.address)
        # No half-close after the bytes: a proxy may keep a half-closed connection until its
        # keep-alive timeout, and a client that hangs up is noticed at once only while the
        # proxy is reading. A stream that stops mid-message is left to the proxy's timeouts.
        writer.write(stream)
        methods = [m.method for m in oracle.messages]
        # Every conversation ends with the proxy closing: after an error, after Connection:
        # close, or once the keep-alive timeout passes (short here). Only a stream cut inside a
        # message is cut short by us, after the answers to the requests before it and a grace
        # for anything else, rather than waiting for the header or body timeout.
        wanted, grace = -1, 0.0
        if oracle.ending == "incomplete" and not any(strict_refusal(m) for m in oracle.messages):
            wanted, grace = len(oracle.complete), _GRACE
        data = b""
        closed = hung = False
        loop = asyncio.get_running_loop()
        limit = loop.time() + _ANSWER_CAP
        while True:
            if wanted >= 0 and len(split_responses(data, methods)) >= wanted:
                if not grace:
                    break
                limit, grace = min(limit, loop.time() + grace), 0.0
            left = limit - loop.time()
            if left <= 0:
                hung = wanted < 0 or len(split_responses(data, methods)) < wanted
                break
            try:
                chunk = await asyncio.wait_for(reader.read(65536), left)
            except TimeoutError:
                continue
            except ConnectionError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
        writer.transport.abort()
        stuck = not await self._quiet()
        return Observation(
            tuple(split_responses(data, methods)),
            closed,
            hung,
            tuple(bytes(r.data) for r in self.backend.connections),
            stuck,
        )

    async def _quiet(self) -> bool:
        """Wait until no client connection, upstream connection or proxy task is left."""
        assert self.plane is not None
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        limit = loop.time() + _QUIET_CAP
        while loop.time() < limit:
            busy = (
                self.plane.connections
                or any(r.open for r in self.backend.connections)
                or any(t is not me and not t.done() for t in asyncio.all_tasks())
            )
            if not busy:
                return True
            await asyncio.sleep(0.002)
        return False


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    detail: str


def _same_head(msg: Message, fwd: Message) -> bool:
    target, _ = expected_target_and_host(msg)
    return fwd.method == msg.method and fwd.target == target


def violations(oracle: Parsed, obs: Observation) -> list[Violation]:
    """The rules the proxy broke for one stream (empty: it behaved).

    Backend side (safety):
    - ``smuggled``: an upstream connection carried more than one request: the proxy framed a
      request differently from the client (or let one through inside another's body).
    - ``malformed``: an upstream connection carried bytes a strict server refuses (a request
      without Host, say).
    - ``unknown``: the backend received a request the client did not send (per h11).
    - ``changed``: a forwarded request differs in method, target (after the absolute-form
      rewrite), Host or body from the client's.
    - ``completed``: the backend received a complete request that the client never completed
      (h11 found an error in its body, or the stream ended inside it).
    - ``stricter:<rule>``: a request of ``fuzz_oracle.STRICTER`` reached the backend complete, or
      an underscore header (or trailer) name reached it at all.
    Client side (answers):
    - ``unanswered``: h11 refuses a request (or a STRICTER rule does), the proxy forwarded
      nothing for it, and the client got no 4xx/5xx for it.
    - ``timeout``: a request h11 read completely was answered 408: the proxy waited for bytes
      that were already there (a hang until the header timeout).
    - ``hung``: the connection was still open at the cap, past every timeout of the proxy (an
      idle keep-alive connection must close at its timeout); ``stuck``: connections or tasks
      left behind once the client went away.
    """
    out: list[Violation] = []
    msgs = oracle.messages
    resp = obs.responses
    served = {r.conn: i for i, r in enumerate(resp) if r.conn is not None}
    nxt = 0
    for conn, raw in enumerate(obs.upstream):
        if not raw:
            continue  # connected after the client left: nothing was sent
        got = parse_stream(raw)
        if len(got.messages) > 1:
            out.append(Violation("smuggled", f"upstream #{conn} carried {raw!r}"))
        if got.ending == "error":
            out.append(Violation("malformed", f"upstream #{conn} ({got.error}): {raw!r}"))
        if not got.messages:
            continue
        fwd = got.messages[0]
        underscored = [k for k, _ in fwd.headers + fwd.trailers if b"_" in k]
        if underscored:
            out.append(Violation("stricter:underscore", f"forwarded header names {underscored}"))
        index = served.get(conn)
        if index is None:  # no response says which request it was: the next one that fits
            index = next((i for i in range(nxt, len(msgs)) if _same_head(msgs[i], fwd)), -1)
        if not 0 <= index < len(msgs):
            out.append(Violation("unknown", f"upstream #{conn} got a request never sent: {raw!r}"))
            continue
        nxt = index + 1
        msg = msgs[index]
        target, host = expected_target_and_host(msg)
        fwd_hosts = fwd.header(b"host")
        changes = []
        if fwd.method != msg.method:
            changes.append(f"method {msg.method!r} -> {fwd.method!r}")
        if fwd.target != target:
            changes.append(f"target {target!r} -> {fwd.target!r}")
        if host is not None and fwd_hosts != [host]:
            changes.append(f"host {host!r} -> {fwd_hosts!r}")
        if not msg.body.startswith(fwd.body) or (fwd.complete and fwd.body != msg.body):
            changes.append(f"body {msg.body!r} -> {fwd.body!r}")
        if changes:
            out.append(Violation("changed", f"request {index}: " + "; ".join(changes)))
        if fwd.complete and not msg.complete:
            out.append(Violation("completed", f"request {index} ({oracle.ending}) was completed"))
        rule = strict_refusal(msg)
        if fwd.complete and rule is not None:
            out.append(Violation(f"stricter:{rule}", f"request {index} was forwarded"))

    def refused_before(i: int) -> bool:
        # The proxy refused an earlier request (and closed): nothing after it is answered.
        return any(r.conn is None and r.status >= 400 for r in resp[:i])

    for i, msg in enumerate(msgs):
        rule = strict_refusal(msg)
        if i >= len(resp):
            if rule is not None and not refused_before(i) and not obs.hung:
                out.append(Violation("unanswered", f"request {i} ({rule}) got no answer"))
            break
        status = resp[i].status
        if rule is not None and not 400 <= status < 600:
            out.append(Violation(f"stricter:{rule}", f"request {i} answered {status}"))
        if rule is not None and status == 408:
            out.append(Violation(f"stricter:{rule}", f"request {i} waited for a timeout (408)"))
        if msg.complete and rule is None and status == 408:
            out.append(Violation("timeout", f"request {i} was complete but answered 408"))
    if oracle.ending == "error":
        i = len(oracle.complete)  # the request h11 refuses (in its head, or in its body)
        # h11 refuses some heads before their empty line (a first byte that cannot start a
        # request line); the proxy reads a head to its empty line before it parses it, so for
        # such a stream the header timeout's 408 is its refusal.
        head_cut = b"\r\n\r\n" not in oracle.rest and b"\n\n" not in oracle.rest
        if i < len(resp):
            if not 400 <= resp[i].status < 600:
                out.append(Violation("unanswered", f"refused request {i}: {resp[i].status}"))
            elif resp[i].status == 408 and not head_cut:
                out.append(Violation("timeout", f"refused request {i} ({oracle.error}): 408"))
        elif not refused_before(i) and not obs.hung:
            out.append(Violation("unanswered", f"refused request {i} ({oracle.error}): no answer"))
    if obs.hung:
        out.append(Violation("hung", f"{len(resp)} answers, still open after {_ANSWER_CAP} s"))
    if obs.stuck:
        out.append(Violation("stuck", "connections or tasks left after the client went away"))
    return out
