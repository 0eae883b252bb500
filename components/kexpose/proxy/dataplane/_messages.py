"""HTTP/1.1 message heads as a proxy reads and rewrites them: pure functions, no I/O.

Every head has been validated by llhttp before these functions see it (request/status line,
header syntax, no obsolete line folding, one consistent framing), so they only *extract* and
*rewrite*: a few regular-expression passes over the raw bytes instead of a Python callback per
header, which is the difference between a slow and a fast proxy in CPython.

What a proxy must do to a forwarded head (RFC 9110 §7.6.1): drop ``Connection``, every header
it names, and the other hop-by-hop headers (``Keep-Alive``, ``Proxy-Connection``, ``TE``,
``Trailer``, ``Transfer-Encoding``, ``Upgrade``), then frame the message itself (RFC 9112 §6).
We also drop what we set ourselves (``X-Forwarded-*``, ``X-Real-IP``), as ingress-nginx does
without ``use-forwarded-headers``: a client must not choose the address an application trusts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final, TypeVar

from kexpose.hosts import normalize_host
from kexpose.proxy.filters import HeaderModifier, apply_header_modifier
from kexpose.proxy.routes import Route, RouteTable, VirtualHost

__all__ = [
    "STATUS_LINES",
    "RequestHead",
    "ResponseHead",
    "chunk",
    "connection_tokens",
    "field_pairs",
    "host_name",
    "join_fields",
    "local_response",
    "modify_fields",
    "parse_request_head",
    "parse_response_head",
    "remember_head",
    "status_line",
]

_OPTIONS: Final = frozenset((b"close", b"keep-alive", b"upgrade"))

# What a head parsed once is worth keeping for, by its exact bytes: bounded in entries and in
# the size of a head (a long one is rarely repeated to the byte).
_HEAD_CACHE_MAX: Final = 1024
_HEAD_CACHE_BYTES: Final = 2048

_Parsed = TypeVar("_Parsed")

# Headers a request head is searched for (one pass), and those removed before forwarding.
_REQUEST_FIELDS: Final = re.compile(
    rb"\r\n(host|connection|upgrade|transfer-encoding|content-length|x-request-id|user-agent"
    rb"|keep-alive|proxy-connection|te|trailer|x-forwarded-(?:for|host|port|proto|scheme)"
    rb"|x-real-ip)[ \t]*:[ \t]*([^\r]*)",
    re.IGNORECASE,
)
_REQUEST_DROP: Final = re.compile(
    rb"\r\n(?:connection|upgrade|transfer-encoding|keep-alive|proxy-connection|te|trailer"
    rb"|x-forwarded-(?:for|host|port|proto|scheme)|x-real-ip)[ \t]*:[^\r]*",
    re.IGNORECASE,
)
_DROPPED: Final = frozenset(
    (
        b"connection",
        b"upgrade",
        b"transfer-encoding",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-proto",
        b"x-forwarded-scheme",
        b"x-real-ip",
    )
)
# Framing and routing headers a ``Connection`` header can never remove. RFC 9110 §7.6.1 lets a
# sender name any field as hop-by-hop, but dropping ``Content-Length`` while forwarding the body
# it framed is request smuggling (the endpoint would read the body as a second request), and
# dropping ``Host`` changes where the request goes. The message is forwarded framed as received.
_FRAMING: Final = frozenset((b"content-length", b"transfer-encoding", b"host"))
# Header names with an underscore are dropped, as nginx does (``underscores_in_headers off``):
# CGI-style backends map ``-`` and ``_`` to the same variable, so ``X_Forwarded_For`` would
# collide with the ``X-Forwarded-For`` we set (RFC 3875 §4.1.18).
# (The name is what precedes the first colon, so the match needs an underscore in the name.)
_UNDERSCORE_FIELD: Final = re.compile(rb"\r\n[^:\r]*_[^:\r]*:[^\r]*")
_RESPONSE_FIELDS: Final = re.compile(
    rb"\r\n(connection|keep-alive|proxy-connection|transfer-encoding|te|trailer|upgrade"
    rb"|content-length)[ \t]*:[ \t]*([^\r]*)",
    re.IGNORECASE,
)
_RESPONSE_DROP: Final = re.compile(
    rb"\r\n(?:connection|keep-alive|proxy-connection|transfer-encoding|te|trailer)[ \t]*:[^\r]*",
    re.IGNORECASE,
)


@dataclass(slots=True)
class RequestHead:
    """A request head, taken apart and checked. Immutable once planned, and shared by every
    request with the same head bytes (the client connection caches it), so it holds nothing
    about one connection or one request."""

    method: bytes
    target: bytes
    """As forwarded: origin-form (an absolute-form target is cut to its path, RFC 9112 §3.2.2)."""
    http10: bool
    version: bytes
    """The request line's HTTP-version, e.g. ``HTTP/1.1`` (anything but 1.0/1.1 is answered 505)."""
    fields: bytes
    """The header lines to forward, each preceded by CRLF; hop-by-hop and forwarding headers
    are already removed."""
    host_header: bytes | None = None
    content_length: int = 0
    chunked: bool = False
    transfer: bytes | None = None
    """A Transfer-Encoding other than exactly ``chunked`` (answered 501)."""
    upgrade: bytes | None = None
    """The Upgrade value when the client asked to switch (``Connection: upgrade``)."""
    close: bool = False
    keep_alive: bool = True
    """Whether the connection persists after this request (RFC 9112 §9.3): HTTP/1.1 unless
    ``Connection: close``; HTTP/1.0 only with ``Connection: keep-alive``. llhttp's
    ``should_keep_alive`` says the same, but only until the message is complete."""
    request_id: bytes | None = None
    forwarded_for: bytes | None = None
    """The client's own ``X-Forwarded-For`` (never forwarded; read only for a peer in
    ``--trusted-proxies``, edge-auth.md)."""
    agent: bytes = b""
    hosts: int = 0
    # Filled in by the client connection's checks:
    status: int = 0
    """Non-zero: answer with this status instead of forwarding (400, 405, 414, 501, ...)."""
    host: str = ""
    """The route key (normalised Host)."""
    forwarded_port: bytes = b""
    path: str = ""
    """The normalised path routes are matched against."""
    prefix: bytes = b""
    """The forwarded head up to the per-connection headers: request line and fields."""
    suffix: bytes = b""
    """The forwarded head after them: X-Forwarded-Host/-Port, framing, the blank line."""
    memo: tuple[RouteTable, VirtualHost, Route | None] | None = None
    log: tuple[bytes, bytes] | None = None
    """This head's part of an access log line and its escaped X-Request-ID, made once."""
    """(route table, virtual host, route) of the last lookup, reused while the table is current."""


def _without(fields: bytes, names: frozenset[bytes]) -> bytes:
    """``fields`` minus the header lines whose names are in ``names`` (lower case)."""
    lines = fields.split(b"\r\n")
    kept = [ln for ln in lines[1:] if ln.split(b":", 1)[0].strip().lower() not in names]
    return b"".join(b"\r\n" + ln for ln in kept)


def parse_request_head(head: bytes) -> RequestHead:
    """Split a validated request head (request line to the empty line, inclusive)."""
    line_end = head.find(b"\r\n")
    method, target, version = head[:line_end].split(b" ", 2)
    fields = head[line_end:-4]
    req = RequestHead(method, target, version == b"HTTP/1.0", version, fields)
    options: frozenset[bytes] = frozenset()
    upgrade = None
    drop = False
    for name, value in _REQUEST_FIELDS.findall(fields):
        key = name.lower()
        value = value.rstrip(b" \t")
        if key == b"host":
            req.host_header = value
            req.hosts += 1
        elif key == b"user-agent":
            req.agent = value
        elif key == b"content-length":
            req.content_length = int(value)  # llhttp checked it is one decimal number
        elif key == b"x-request-id":
            req.request_id = value
        else:
            drop = True
            if key == b"connection":
                simple = value.lower()
                options |= {simple} if simple in _OPTIONS else connection_tokens(value)
            elif key == b"transfer-encoding":
                req.transfer = value if req.transfer is None else req.transfer + b", " + value
            elif key == b"upgrade":
                upgrade = value
            elif key == b"x-forwarded-for":
                old = req.forwarded_for
                req.forwarded_for = value if old is None else old + b", " + value
    if drop:
        fields = _REQUEST_DROP.sub(b"", fields)
        named = options - _OPTIONS - _DROPPED - _FRAMING
        if named:
            fields = _without(fields, named)
        req.fields = fields
    if b"_" in fields:
        req.fields = fields = _UNDERSCORE_FIELD.sub(b"", fields)
    if req.transfer is not None and req.transfer.lower() == b"chunked":
        req.chunked = True
        req.transfer = None
    if upgrade is not None and b"upgrade" in options and not req.http10:
        req.upgrade = upgrade
    req.close = b"close" in options
    req.keep_alive = b"keep-alive" in options if req.http10 else not req.close
    return req


_RESPONSE_DROP_UPGRADE: Final = re.compile(
    rb"\r\n(?:connection|keep-alive|proxy-connection|transfer-encoding|te|trailer|upgrade)"
    rb"[ \t]*:[^\r]*",
    re.IGNORECASE,
)

#: A parsed response head: (status code, status line with our version, header lines to
#: forward each preceded by CRLF, Content-Length or None, chunked, whether the endpoint keeps
#: the connection open: HTTP/1.1 unless ``Connection: close``, HTTP/1.0 only with
#: ``keep-alive``).
ResponseHead = tuple[int, bytes, bytes, int | None, bool, bool]


def parse_response_head(head: bytes, *, upgrade: bool) -> ResponseHead:
    """Split a validated response head; ``upgrade`` keeps the Upgrade header (for a 101).

    Returns a tuple rather than an object: this runs once per response on the hot path.
    """
    line_end = head.find(b"\r\n")
    line = head[:line_end]
    http10 = line[:9] != b"HTTP/1.1 "
    if http10:
        line = b"HTTP/1.1" + line[8:]  # we speak HTTP/1.1 to the client (RFC 9110 §7.6.1)
    fields = head[line_end:-4]
    chunked = drop = False
    options: frozenset[bytes] = frozenset()
    length: int | None = None
    named: frozenset[bytes] = frozenset()
    for name, value in _RESPONSE_FIELDS.findall(fields):
        key = name.lower()
        if key == b"content-length":
            length = int(value)  # llhttp checked it is one decimal number
        elif key == b"upgrade":
            drop = drop or not upgrade
        else:
            drop = True
            if key == b"transfer-encoding":
                chunked = True
            elif key == b"connection":
                simple = value.strip().lower()
                if simple in _OPTIONS:
                    options |= {simple}
                else:
                    tokens = connection_tokens(value)
                    options |= tokens
                    # The response is framed as received: see _FRAMING.
                    named |= tokens - _OPTIONS - _FRAMING
    if drop:
        fields = (_RESPONSE_DROP if upgrade else _RESPONSE_DROP_UPGRADE).sub(b"", fields)
        if named:
            fields = _without(fields, named)
    keep_alive = b"keep-alive" in options if http10 else b"close" not in options
    return int(line[9:12]), line, fields, length, chunked, keep_alive


def _status_lines() -> dict[int, bytes]:
    lines = {}
    for code in range(100, 600):
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = ""  # reason-phrase is optional (RFC 9112 §4)
        lines[code] = f"HTTP/1.1 {code} {phrase}\r\n".encode("latin-1")
    return lines


#: Status code -> ``HTTP/1.1 <code> <reason>\r\n`` for the answers we make ourselves.
STATUS_LINES: Final[dict[int, bytes]] = _status_lines()


def status_line(code: int) -> bytes:
    line = STATUS_LINES.get(code)
    return line if line is not None else f"HTTP/1.1 {code} \r\n".encode("latin-1")


def connection_tokens(value: bytes) -> frozenset[bytes]:
    """The lower-case options of a ``Connection`` header (RFC 9110 §7.6.1)."""
    return frozenset(t.strip().lower() for t in value.split(b",") if t.strip())


def field_pairs(fields: bytes) -> list[tuple[str, str]]:
    """Header lines (each preceded by CRLF, validated by llhttp) as (name, value) pairs."""
    pairs = []
    for line in fields.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b":")
            pairs.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return pairs


def join_fields(pairs: Sequence[tuple[str, str]]) -> bytes:
    """The inverse of ``field_pairs``. Names and values come from llhttp-validated heads or
    from filters whose values the route core checked (no CR, LF or NUL can get in)."""
    return b"".join(b"\r\n%b: %b" % (n.encode("latin-1"), v.encode("latin-1")) for n, v in pairs)


def modify_fields(fields: bytes, modifiers: Sequence[HeaderModifier]) -> bytes:
    """Header lines changed by ``modifiers`` in order (Gateway API header filters); the
    framing headers the proxy sets itself are added after this."""
    pairs = field_pairs(fields)
    for modifier in modifiers:
        pairs = apply_header_modifier(pairs, modifier)
    return join_fields(pairs)


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


@dataclass(frozen=True, slots=True)
class HeadRewrite:
    """The upstream header changes of one authentication outcome, ready to apply."""

    modifier: HeaderModifier
    needles: tuple[bytes, ...]
    """``\\r\\n<name>:`` for every name set or removed, lower case."""
    lines: bytes
    """The header lines added."""

    @classmethod
    def of(cls, modifier: HeaderModifier) -> HeadRewrite:
        names = [n.lower() for n, _ in modifier.set] + list(modifier.remove)
        added = (*modifier.set, *modifier.add)
        return cls(
            modifier,
            tuple(b"\r\n%b:" % n.encode("latin-1") for n in names),
            b"".join(b"\r\n%b: %b" % (n.encode("latin-1"), v.encode("latin-1")) for n, v in added),
        )

    def apply(self, prefix: bytes) -> bytes:
        """A forwarded head's request line and fields with the changes applied."""
        if self.needles:
            low = prefix.lower()
            if any(needle in low for needle in self.needles):
                line_end = prefix.find(b"\r\n")
                if line_end < 0:
                    return prefix + modify_fields(b"", (self.modifier,))
                return prefix[:line_end] + modify_fields(prefix[line_end:], (self.modifier,))
        # The usual case: the client sent none of the names (llhttp refuses whitespace before
        # the colon, so the search is exact); the new lines are appended as they are.
        return prefix + self.lines


def remember_head(heads: dict[bytes, _Parsed], head: bytes, parsed: _Parsed) -> None:
    """Keep what ``head`` was parsed into for the next identical head bytes: at most
    ``_HEAD_CACHE_MAX`` heads of at most ``_HEAD_CACHE_BYTES`` each (a full cache starts over)."""
    if len(head) <= _HEAD_CACHE_BYTES:
        if len(heads) >= _HEAD_CACHE_MAX:
            heads.clear()
        heads[head] = parsed
