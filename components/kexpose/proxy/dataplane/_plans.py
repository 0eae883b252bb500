"""Request heads turned into plans: where a request goes, or the status it gets instead.

A plan depends only on the head's bytes and the listener's scheme, so the client connection
keeps plans for heads it has seen (clients on keep-alive connections repeat their heads) and
plans each distinct head once. Pure apart from the Host cache it is handed.
"""

from __future__ import annotations

import re
from typing import Final

from kexpose.proxy.dataplane._messages import RequestHead, host_name, parse_request_head
from kexpose.proxy.routes import normalize_path

__all__ = ["plan_request"]

_HOST_CACHE_MAX: Final = 4096  # distinct raw Host values remembered per process
# CONNECT: we are a reverse proxy, not a tunnel to arbitrary hosts. TRACE: reflects the
# request's headers, cookies included, back to the client (cross-site tracing); nginx answers
# 405 too. (IIS's TRACK is no method llhttp knows: 400.)
_REFUSED_METHODS: Final = frozenset((b"CONNECT", b"TRACE"))
_HOST_LINE: Final = re.compile(rb"\r\nhost[ \t]*:[^\r]*", re.IGNORECASE)


def plan_request(
    head: bytes, *, scheme: bytes, hosts: dict[bytes, tuple[str, bytes]]
) -> RequestHead:
    """Take a validated head apart and check it. ``hosts`` caches raw Host -> (route key,
    X-Forwarded-Port) for ``scheme``."""
    req = parse_request_head(head)
    req.status = _check(req, scheme, hosts)
    if not req.status:
        extra = b""
        if req.chunked:
            extra = b"\r\ntransfer-encoding: chunked"
        if req.upgrade is not None:
            extra += b"\r\nconnection: upgrade\r\nupgrade: " + req.upgrade
        req.prefix = b"%b %b HTTP/1.1%b" % (req.method, req.target, req.fields)
        req.suffix = b"\r\nx-forwarded-host: %b\r\nx-forwarded-port: %b%b\r\n\r\n" % (
            req.host_header or b"",
            req.forwarded_port,
            extra,
        )
    return req


def _check(req: RequestHead, scheme: bytes, hosts: dict[bytes, tuple[str, bytes]]) -> int:
    """Fill in host, path and port; returns the status to answer instead, or 0."""
    target = req.target
    if req.version != b"HTTP/1.1" and not req.http10:
        # llhttp reads any digit.digit; this listener speaks HTTP/1.x only (RFC 9110 §15.6.6;
        # HTTP/2 arrives by ALPN or prior knowledge, never in an HTTP/1 request line). nginx: 505.
        return 505
    if req.hosts > 1:
        return 400  # more than one Host (RFC 9112 §3.2)
    if req.method in _REFUSED_METHODS:
        return 405
    if b"#" in target:
        # A request target has no fragment (RFC 9112 §3.2); forwarding one lets the route see
        # one path (after "#/../") and the endpoint another (before "#").
        return 400
    if req.transfer is not None:
        return 501  # a transfer coding we do not know (RFC 9112 §6.1)
    if target[:1] != b"/":
        if not target[:8].lower().startswith((b"http://", b"https://")):
            return 400
        if req.host_header is None and not req.http10:
            # Even with an absolute-form target, an HTTP/1.1 request without Host is 400
            # (RFC 9112 §3.2: "A server MUST respond with a 400 ... to any HTTP/1.1 request
            # message that lacks a Host header field").
            return 400
        # absolute-form: the target's authority replaces Host (RFC 9112 §3.2.2)
        rest = target.split(b"//", 1)[1]
        slash = rest.find(b"/")
        authority, target = (rest, b"/") if slash < 0 else (rest[:slash], rest[slash:])
        req.host_header = authority
        req.target = target
        req.fields = _HOST_LINE.sub(b"", req.fields) + b"\r\nhost: " + authority
    raw_host = req.host_header
    if raw_host is None:
        if not req.http10:
            return 400  # HTTP/1.1 without Host (RFC 9112 §3.2)
        req.forwarded_port = _port_of(None, scheme)
    else:
        known = hosts.get(raw_host)
        if known is None:
            name = host_name(raw_host)
            if name is None:
                return 400
            if len(hosts) >= _HOST_CACHE_MAX:
                hosts.clear()
            known = hosts[raw_host] = (name, _port_of(raw_host, scheme))
        req.host, req.forwarded_port = known
    query = target.find(b"?")
    raw_path = target if query < 0 else target[:query]
    try:
        text = raw_path.decode("ascii")
    except UnicodeDecodeError:
        text = raw_path.decode("utf-8", "surrogateescape")
    path = normalize_path(text)
    if path is None:
        return 400
    req.path = path
    return 0


def _port_of(raw_host: bytes | None, scheme: bytes) -> bytes:
    """X-Forwarded-Port: the port the client addressed (from Host), else the scheme's default.

    ingress-nginx sends its own listening port; behind a Service that maps 80 -> 8080 that
    would tell the application 8080, which no client ever used.
    """
    if raw_host:
        head, sep, port = raw_host.rpartition(b":")
        bracketed = raw_host.startswith(b"[")  # an IPv6 literal: its colons are not the port's
        if sep and port.isdigit() and (not bracketed or head.endswith(b"]")):
            return port
    return b"443" if scheme == b"https" else b"80"
