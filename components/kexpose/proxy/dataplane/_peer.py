"""The client at the other end of a connection, as every request on it describes it.

HTTP/1.1 and HTTP/2 connections learn the same things once, when the transport is made: the
peer's address, the ``X-Forwarded-*`` fields each request forwards on its behalf (the same for
every request on the connection, so built once), and the SNI name of a TLS handshake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from kexpose.hosts import normalize_host
from kexpose.proxy.dataplane._tls import sni_of

if TYPE_CHECKING:
    import asyncio

__all__ = ["Peer", "peer_of"]


class Peer(NamedTuple):
    """What a connection knows of its client."""

    address: str
    """The peer's IP address ("" when the transport has none, e.g. a Unix socket)."""
    address_bytes: bytes
    forwarded: bytes
    """``\\r\\n``-led ``X-Forwarded-For``, ``X-Real-IP``, ``X-Forwarded-Proto`` and
    ``X-Forwarded-Scheme`` fields, ready to append to a request head."""
    sni: str | None
    """The normalised SNI name of the TLS handshake (None: plain HTTP or no SNI)."""


def peer_of(transport: asyncio.BaseTransport, scheme: bytes) -> Peer:
    """The client of ``transport``, a connection accepted on a ``scheme`` listener."""
    peer = transport.get_extra_info("peername")
    address = peer[0] if isinstance(peer, tuple) else ""
    ip = address.encode()
    forwarded = (
        b"\r\nx-forwarded-for: %b\r\nx-real-ip: %b\r\nx-forwarded-proto: %b"
        b"\r\nx-forwarded-scheme: %b" % (ip, ip, scheme, scheme)
    )
    sni = sni_of(transport.get_extra_info("ssl_object")) if scheme == b"https" else None
    return Peer(address, ip, forwarded, normalize_host(sni) if sni else None)
