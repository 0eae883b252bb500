"""HTTP/2 header lists to HTTP/1.1 heads and back: pure functions, no I/O.

A request that arrives on an HTTP/2 stream is forwarded to HTTP/1.1 endpoints, so it is
written out as the HTTP/1.1 head that says the same (RFC 9113 §8.3.1: ``:method``,
``:path``, and ``:authority`` as ``Host``; §8.2.3: ``Cookie`` fields joined with "; "), framed
by the ``content-length`` the client gave or else chunked, and then goes through the very
checks and plans an HTTP/1.1 head does (llhttp, ``_plans``). ``h2`` has already refused
what RFC 9113 calls malformed (uppercase names, connection-specific fields, ``TE`` other than
``trailers``, CR/LF/NUL, missing or duplicate pseudo-headers); what is left to refuse here is
what HTTP/1.1 cannot carry faithfully, so that no field can be read one way by the route and
another by the endpoint (h2-to-h1 request smuggling).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["BadRequest", "request_head", "response_fields", "trailer_section"]

#: A field name HTTP/1.1 can carry (RFC 9110 §5.1 token); h2 checks less (RFC 9113 §8.2.1
#: only forbids uppercase and a few bytes), and a name with a space or a colon in it would
#: change the meaning of the HTTP/1.1 head.
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")
#: A field value HTTP/1.1 can carry: visible characters, spaces and tabs (RFC 9110 §5.5);
#: h2 refuses CR, LF and NUL, but not the other control characters.
_VALUE: Final = re.compile(rb"[\t\x20-\x7e\x80-\xff]*\Z")
#: Content-Length is one decimal number (RFC 9110 §8.6); ``int()`` would also take "+5",
#: " 5" and "5_0", which endpoints read differently.
_DIGITS: Final = re.compile(rb"[0-9]{1,18}\Z")

#: Fields that only make sense for one connection (RFC 9113 §8.2.2) or that we set ourselves;
#: never copied from an HTTP/1.1 response onto a stream.
_CONNECTION_FIELDS: Final = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te")
)
#: Fields that must not appear in a trailer section forwarded to an endpoint (RFC 9110 §6.5.1:
#: framing, routing, authentication and control data).
_NOT_IN_TRAILERS: Final = frozenset(
    (
        b"content-length",
        b"transfer-encoding",
        b"host",
        b"authorization",
        b"cookie",
        b"set-cookie",
        b"te",
        b"trailer",
        b"connection",
        b"content-type",
        b"content-encoding",
        b"content-range",
        b"cache-control",
        b"expect",
        b"max-forwards",
        b"pragma",
        b"range",
    )
)


class BadRequest(ValueError):  # noqa: N818 - the name says what the request is
    """The stream's request cannot be forwarded as it is (answered 400 on its stream)."""


def request_head(headers: Iterable[tuple[bytes, bytes]], *, body: bool) -> tuple[bytes, bool]:
    """The HTTP/1.1 head for an HTTP/2 request, and whether its body is sent chunked.

    ``headers`` as h2 decoded and validated them (pseudo-headers first, names lower case).
    """
    method = path = authority = length = None
    cookies: list[bytes] = []
    fields: list[bytes] = []
    for name, value in headers:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            elif name != b":scheme":
                # :protocol (extended CONNECT, RFC 8441) is not enabled; h2 refuses others.
                raise BadRequest(f"pseudo-header {name!r} is not supported")
            continue
        if not _TOKEN.match(name):
            raise BadRequest(f"field name {name!r} is not an HTTP token")
        if not _VALUE.match(value):
            raise BadRequest(f"field {name.decode()} has a control character in its value")
        if name == b"cookie":
            cookies.append(value)  # RFC 9113 §8.2.3: one HTTP/1.1 field, "; "-joined
            continue
        if name == b"host":
            # RFC 9113 §8.3.1: :authority wins; h2 has refused a Host that disagrees with it.
            if authority is None:
                authority = value
            continue
        if name == b"content-length":
            if not _DIGITS.match(value) or (length is not None and value != length):
                raise BadRequest(f"content-length {value!r} is not one decimal number")
            if length is not None:
                continue
            length = value
        fields.append(b"\r\n%b: %b" % (name, value))
    if method is None or path is None:
        raise BadRequest(":method and :path are required")
    if not path.startswith(b"/"):
        # Origin-form only: the asterisk form of OPTIONS and the absolute form are not routed
        # (an absolute :path would let the path name another authority than :authority).
        raise BadRequest(f":path {path!r} does not start with /")
    if authority is None or not authority:
        raise BadRequest(":authority (or Host) is required")
    if not _VALUE.match(authority) or b" " in authority or b"\t" in authority:
        raise BadRequest(f":authority {authority!r} is not a host")
    if cookies:
        fields.append(b"\r\ncookie: " + b"; ".join(cookies))
    chunked = False
    if body and length is None:
        chunked = True
        fields.append(b"\r\ntransfer-encoding: chunked")
    elif not body and length not in (None, b"0"):
        raise BadRequest(f"content-length {length!r} on a request without DATA")
    head = b"%b %b HTTP/1.1\r\nhost: %b%b\r\n\r\n" % (method, path, authority, b"".join(fields))
    return head, chunked


def response_fields(fields: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """An HTTP/1.1 response's fields (names lower case) as an HTTP/2 stream may carry them."""
    return [(n, v) for n, v in fields if n not in _CONNECTION_FIELDS]


def trailer_section(trailers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The last chunk of a chunked body carrying the client's trailers (RFC 9112 §7.1.2),
    without fields a trailer must not carry and any an HTTP/1.1 head cannot."""
    lines = [
        b"%b: %b\r\n" % (n, v)
        for n, v in trailers
        if n[:1] != b":" and n not in _NOT_IN_TRAILERS and _TOKEN.match(n) and _VALUE.match(v)
    ]
    return b"0\r\n" + b"".join(lines) + b"\r\n"
