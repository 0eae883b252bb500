"""Request mirrors (``HTTPRequestMirrorFilter``): fire-and-forget copies of a request.

What the spec asks (gateway-api v1.6 ``apis/v1/httproute_types.go``): "Requests are sent to the
specified destination, but responses from that destination are ignored"; "Mirrored requests
must be sent only to a single destination endpoint within this BackendRef"; ``percent`` (or
``fraction``) of the requests are mirrored, all of them when neither is set; the filter may
appear several times in a rule, one copy per filter.

How it is done here:
- A copy is its own task, owned by the data plane (cancelled when it closes), on its own
  connection to one endpoint of the mirror backend (chosen by that backend's balancer). The
  primary exchange never waits for a copy, and nothing a copy meets (a refused connection, a
  slow or silent endpoint, an error answer) reaches the primary: a copy that fails is dropped.
- The copy's head is the head the rule's filters give the request (header modifiers and URL
  rewrite of the rule, in their order; not the primary backend's own filters), so the Host is
  the client's unless a rewrite changed it: the spec asks nothing else of the Host (Envoy
  appends ``-shadow``, an implementation choice). It carries ``connection: close``, the same
  X-Request-ID and X-Forwarded-* as the primary; the response is read and discarded.
- The body is streamed to the copy as it arrives from the client, in the client's framing.
  Bounded: at most ``MirrorLimits.in_flight`` copies per data plane at once (beyond that a
  request is not mirrored), at most ``MirrorLimits.buffered`` bytes of body waiting for a copy
  whose endpoint reads slower than the client sends (beyond that the copy is cut off, as a
  copy must never slow the primary down: the body's flow control follows the primary only),
  and each copy ends within ``MirrorLimits.deadline`` seconds.
- Upgrade requests (WebSocket) are not mirrored: a tunnel cannot be copied.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from random import random
from typing import Any, Protocol, TypeVar

from kexpose.proxy.dataplane._balancer import Balancer
from kexpose.proxy.ops.metrics import MirrorCounters
from kexpose.proxy.routes import Endpoint, Mirror

T = TypeVar("T")


class MirrorHost(Protocol):
    """What copies need of the data plane (``server.DataPlane``): a task owner, the balancers
    that pick a mirror backend's endpoint, and the plane's ``Mirrors``. A protocol, so that this
    module sits below the exchange and the plane (the layers contract in ``pyproject.toml``)."""

    balancers: dict[str, Balancer]
    mirrors: Mirrors

    def spawn(
        self, coro: Coroutine[Any, Any, T], done: Callable[[asyncio.Task[T]], None]
    ) -> asyncio.Task[T]: ...


__all__ = ["MirrorCopy", "MirrorHost", "MirrorLimits", "Mirrors", "start_mirrors"]

#: Bytes read at a time from a mirror endpoint's (discarded) response.
_READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class MirrorLimits:
    """What mirrored copies may cost. Copies are best effort by the spec (their answers are
    ignored), so every limit drops a copy rather than slowing a primary request."""

    in_flight: int = 128
    """Copies at once per data plane. With ``buffered`` this bounds the memory copies hold:
    at worst, with every mirror endpoint stalled mid-body, 128 x (512 KiB + the transport's
    64 KiB high-water mark + one read), under 80 MiB."""
    buffered: int = 512 << 10
    """Body bytes waiting for one copy's endpoint to read them; beyond, the copy is cut off."""
    deadline: float = 30.0
    """Seconds from the start of a copy to the end of its (ignored) response: a mirror endpoint
    that never answers frees its slot after this."""


class Mirrors(MirrorCounters):
    """The data plane's copies in flight, what became of the others (exported as metrics by
    ``ops.metrics``), and the limits they run under."""

    __slots__ = ("limits",)

    def __init__(self, limits: MirrorLimits | None = None) -> None:
        super().__init__()
        self.limits = limits or MirrorLimits()


class MirrorCopy:
    """One copy of one request on its way to one mirror endpoint."""

    __slots__ = ("_done", "_ended", "_mirrors", "_parts", "_task", "_wake", "buffered")

    def __init__(self, mirrors: Mirrors, *, has_body: bool) -> None:
        self._mirrors = mirrors
        self._parts: deque[bytes] = deque()
        self.buffered = 0
        self._ended = not has_body
        """The client's body is complete (or there is none)."""
        self._done = False
        """Cut off or finished: nothing more is taken."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- fed by the primary exchange (never blocks, never raises) -----------------------------

    def feed(self, data: bytes) -> None:
        """More of the request body, as the client framed it."""
        if self._done:
            return
        self.buffered += len(data)
        if self.buffered > self._mirrors.limits.buffered:
            self.abandon()
            return
        self._parts.append(data)
        self._wake.set()

    def end(self) -> None:
        """The body is complete."""
        self._ended = True
        self._wake.set()

    def abandon(self) -> None:
        """Give the copy up (the client went away mid-body, or a limit was hit)."""
        if self._done:
            return
        self._mirrors.dropped += 1
        self._done = True
        self._parts.clear()
        self.buffered = 0
        if self._task is not None:
            self._task.cancel()

    # --- the copy's task ----------------------------------------------------------------------

    def launch(self, plane: MirrorHost, endpoint: Endpoint, head: bytes) -> None:
        mirrors = self._mirrors
        mirrors.in_flight += 1

        def finished(task: asyncio.Task[None]) -> None:
            mirrors.in_flight -= 1
            if not task.cancelled():
                task.exception()  # retrieved (None): run() handles what an endpoint can do

        self._task = plane.spawn(self._run(endpoint, head), finished)

    async def _run(self, endpoint: Endpoint, head: bytes) -> None:
        mirrors = self._mirrors
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(mirrors.limits.deadline):
                reader, writer = await asyncio.open_connection(endpoint[0], endpoint[1])
                writer.write(head)
                while True:
                    while self._parts:
                        # One part at a time, drained: what waits for the endpoint stays in
                        # ``_parts`` (counted against the limit), not in the transport.
                        part = self._parts.popleft()
                        self.buffered -= len(part)
                        writer.write(part)
                        await writer.drain()
                    # Nothing was awaited since ``_parts`` was found empty: no feed or end can
                    # have slipped in between the check and the wait below.
                    if self._ended:
                        break
                    self._wake.clear()
                    await self._wake.wait()
                await writer.drain()  # the head alone, for a request without a body
                mirrors.sent += 1
                while await reader.read(_READ_SIZE):
                    pass  # "responses from that destination are ignored"
        except (OSError, TimeoutError):
            mirrors.failed += 1
        finally:
            self._done = True
            self._parts.clear()
            if writer is not None:
                writer.transport.abort()


def start_mirrors(
    plane: MirrorHost,
    mirrors: tuple[Mirror, ...],
    head: bytes,
    suffix: bytes,
    *,
    has_body: bool,
    add_host: bool = False,
) -> tuple[MirrorCopy, ...]:
    """Start a copy of the request for each mirror that samples it; ``head`` + ``suffix`` is
    the forwarded head (``suffix`` ends in its blank line). ``add_host``: the request has no
    Host (HTTP/1.0), so each copy names its endpoint, as the primary does. Returns the copies
    the body must be fed to."""
    state = plane.mirrors
    # The copy's own framing: the endpoint closes after answering, so the (ignored) response
    # needs no parsing to know where it ends.
    suffix = suffix[:-2] + b"connection: close\r\n\r\n"
    copies: list[MirrorCopy] = []
    for mirror in mirrors:
        if mirror.percent < 100.0 and random() * 100.0 >= mirror.percent:  # noqa: S311 - sampling
            continue
        balancer = plane.balancers.get(mirror.backend.key)
        endpoint = balancer.pick() if balancer is not None else None
        if endpoint is None or state.in_flight >= state.limits.in_flight:
            state.dropped += 1
            continue
        copy = MirrorCopy(state, has_body=has_body)
        host = b"\r\nhost: %b" % endpoint[0].encode() if add_host else b""
        copy.launch(plane, endpoint, head + host + suffix)
        copies.append(copy)
    return tuple(copies)
