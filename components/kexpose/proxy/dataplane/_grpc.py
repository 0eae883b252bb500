"""gRPC as a proxy sees it: which requests are gRPC calls, and how the proxy's own answers
read to a gRPC client. Pure functions, no I/O.

A gRPC client judges a call by ``grpc-status`` in the trailers, not by the HTTP status: a bare
HTTP 502 reads as "UNKNOWN: unexpected HTTP status" or worse, where clients retry and fail over
on ``UNAVAILABLE``. So an answer the proxy gives by itself to a gRPC call is HTTP 200 with the
status in the trailers, mapped as gRPC's own table does (grpc/doc/http-grpc-status-mapping.md):
a backend that cannot be reached is UNAVAILABLE (14), no route UNIMPLEMENTED (12).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["grpc_local_response", "grpc_status", "grpc_timeout", "is_grpc", "trailers_only"]

_GRPC_CONTENT_TYPE: Final = re.compile(rb"\r\ncontent-type[ \t]*:[ \t]*application/grpc", re.I)

#: HTTP status -> gRPC status code, for answers the proxy makes itself.
_STATUS: Final = {
    400: 13,  # INTERNAL
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 12,  # UNIMPLEMENTED
    429: 14,  # UNAVAILABLE
    502: 14,
    503: 14,
    504: 14,
}
_UNKNOWN: Final = 2

#: grpc-timeout units (gRPC over HTTP/2, "Timeout"): hours to nanoseconds, in seconds.
_UNITS: Final = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
_TIMEOUT: Final = re.compile(rb"([0-9]{1,8})([HMSmun])\Z")


def is_grpc(fields: bytes) -> bool:
    """Whether a request's header lines (``RequestHead.fields``) say it is a gRPC call."""
    return _GRPC_CONTENT_TYPE.search(fields) is not None


def grpc_status(http_status: int) -> int:
    return _STATUS.get(http_status, _UNKNOWN)


def grpc_timeout(value: bytes) -> float | None:
    """Seconds from a ``grpc-timeout`` value (at most 8 digits and a unit); None if invalid."""
    m = _TIMEOUT.match(value.strip())
    if m is None:
        return None
    return int(m.group(1)) * _UNITS[m.group(2)]


def trailers_only(head: list[tuple[bytes, bytes]], trailers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a response without a message, ``head`` then ``trailers`` (HTTP/2 fields), can go
    as gRPC's "Trailers-Only": one HEADERS frame that ends the stream (gRPC over HTTP/2,
    "Responses": ``Trailers-Only → HTTP-Status Content-Type Trailers``, "permitted for calls
    that produce an immediate error"). It can when the head is a 200 with an
    ``application/grpc`` content type and nothing else (custom metadata in the head would turn
    into trailers) and the trailers carry ``grpc-status``: every answer the proxy makes itself
    to a gRPC call (``grpc_local_response``), and an endpoint's own Trailers-Only answer."""
    return (
        (b":status", b"200") in head
        and all(name in (b":status", b"content-type") for name, _ in head)
        and any(n == b"content-type" and v.lower().startswith(b"application/grpc") for n, v in head)
        and any(name == b"grpc-status" for name, _ in trailers)
    )


def grpc_local_response(http_status: int, message: str, *, close: bool) -> bytes:
    """HTTP 200 whose trailers carry the gRPC status for ``http_status`` (as HTTP/1.1 bytes, like
    every local answer; an HTTP/2 stream sends it Trailers-Only, ``trailers_only``)."""
    # grpc-message is percent-encoded (gRPC over HTTP/2, "Status-Message").
    text = "".join(
        c if " " <= c <= "~" and c != "%" else "".join(f"%{b:02X}" for b in c.encode())
        for c in message
    )
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n"
        + (b"connection: close\r\n" if close else b"")
        + b"\r\n0\r\ngrpc-status: %d\r\ngrpc-message: %b\r\n\r\n"
        % (grpc_status(http_status), text.encode("ascii"))
    )
