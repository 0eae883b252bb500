"""HTTP/1.1 message heads as a proxy writes them: pure functions and lookup tables, no I/O.

RFC 9110 §7.6.1: a proxy removes the ``Connection`` header, every header it names, and the other
hop-by-hop headers (``Keep-Alive``, ``Proxy-Connection``, ``TE``, ``Trailer``,
``Transfer-Encoding``, ``Upgrade``) before forwarding; it then frames the message itself
(RFC 9112 §6: ``Content-Length`` kept when known, otherwise chunked, or close-delimited toward an
HTTP/1.0 client). The tables below say what happens to each header name; the shells look names
up instead of branching on them.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Final

from kexpose.hosts import normalize_host

__all__ = [
    "H_AGENT",
    "H_CONNECTION",
    "H_DROP",
    "H_HOST",
    "H_LENGTH",
    "H_REQUEST_ID",
    "H_TRANSFER",
    "H_UPGRADE",
    "REQUEST_HEADERS",
    "RESPONSE_HEADERS",
    "STATUS_LINES",
    "chunk",
    "connection_tokens",
    "host_name",
    "local_response",
    "status_line",
]

# What a header name means to the proxy (values of the tables below); absent = forward as is.
H_DROP: Final = 1  # hop-by-hop, or replaced by our own value
H_HOST: Final = 2
H_CONNECTION: Final = 3
H_UPGRADE: Final = 4
H_TRANSFER: Final = 5
H_LENGTH: Final = 6
H_REQUEST_ID: Final = 7
H_AGENT: Final = 8

_HOP_BY_HOP: Final = {
    b"connection": H_CONNECTION,
    b"keep-alive": H_DROP,
    b"proxy-connection": H_DROP,  # never standard, still sent by some clients (RFC 9112 §9.6)
    b"te": H_DROP,
    b"trailer": H_DROP,
    b"transfer-encoding": H_TRANSFER,
    b"upgrade": H_UPGRADE,
}

#: Request header (lower case) -> what we do with it.
REQUEST_HEADERS: Final[dict[bytes, int]] = {
    **_HOP_BY_HOP,
    b"host": H_HOST,
    b"content-length": H_LENGTH,
    b"x-request-id": H_REQUEST_ID,
    b"user-agent": H_AGENT,
    # Replaced by the values we observed, as ingress-nginx does without use-forwarded-headers:
    # a client must not be able to choose the address an application logs or trusts.
    b"x-forwarded-for": H_DROP,
    b"x-forwarded-host": H_DROP,
    b"x-forwarded-port": H_DROP,
    b"x-forwarded-proto": H_DROP,
    b"x-forwarded-scheme": H_DROP,
    b"x-real-ip": H_DROP,
}

#: Response header (lower case) -> what we do with it.
RESPONSE_HEADERS: Final[dict[bytes, int]] = {**_HOP_BY_HOP, b"content-length": H_LENGTH}


def _status_lines() -> dict[int, bytes]:
    lines = {}
    for code in range(100, 600):
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = ""  # reason-phrase is optional (RFC 9112 §4)
        lines[code] = f"HTTP/1.1 {code} {phrase}\r\n".encode("latin-1")
    return lines


#: Status code -> ``HTTP/1.1 <code> <reason>\r\n``. We always answer as HTTP/1.1, also to
#: HTTP/1.0 clients (RFC 9110 §2.5), and frame bodies for them by closing.
STATUS_LINES: Final[dict[int, bytes]] = _status_lines()


def status_line(code: int) -> bytes:
    line = STATUS_LINES.get(code)
    return line if line is not None else f"HTTP/1.1 {code} \r\n".encode("latin-1")


def connection_tokens(value: bytes) -> frozenset[bytes]:
    """The lower-case options of a ``Connection`` header (RFC 9110 §7.6.1)."""
    return frozenset(t.strip().lower() for t in value.split(b",") if t.strip())


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1); never call it with empty data."""
    return b"%x\r\n%b\r\n" % (len(data), data)


_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=-]*)(:[0-9]*)?")


def host_name(raw: bytes) -> str | None:
    """The route key of a Host header value, or None when it is invalid (RFC 9112 §3.2: 400).

    ``host [":" port]`` (RFC 9110 §7.2, RFC 3986 §3.2.2); lower-cased, port and one trailing dot
    dropped. ``..`` is refused as nginx refuses it.
    """
    if _HOST.fullmatch(raw) is None or b".." in raw:
        return None
    return normalize_host(raw.decode("ascii"))


_REASONS: Final = {
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


def local_response(
    status: int,
    *,
    close: bool,
    head_only: bool = False,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    """A complete response the proxy answers by itself (errors and redirects), plain text."""
    reason = _REASONS.get(status) or status_line(status)[13:-2]
    body = b"%d %b\n" % (status, reason)
    parts = [status_line(status)]
    for name, value in headers:
        parts.append(b"%b: %b\r\n" % (name, value))
    parts.append(b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body))
    if close:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if not head_only:
        parts.append(body)
    return b"".join(parts)
