"""HTTP/2 header lists to HTTP/1.1 heads and back (``_translation``): pure case tables."""

from __future__ import annotations

import pytest

from kexpose.proxy.dataplane._translation import (
    BadRequest,
    request_head,
    response_fields,
    trailer_section,
)

P = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.example"), (b":path", b"/x")]

HEADS: list[tuple[str, list[tuple[bytes, bytes]], bool, bytes, bool]] = [
    ("plain", P, False, b"GET /x HTTP/1.1\r\nhost: a.example\r\n\r\n", False),
    (
        "cookies joined last",
        [*P, (b"cookie", b"a=1"), (b"x-a", b"1"), (b"cookie", b"b=2")],
        False,
        b"GET /x HTTP/1.1\r\nhost: a.example\r\nx-a: 1\r\ncookie: a=1; b=2\r\n\r\n",
        False,
    ),
    (
        "host only",
        [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b"host", b"h.example")],
        False,
        b"GET / HTTP/1.1\r\nhost: h.example\r\n\r\n",
        False,
    ),
    (
        "body without length is chunked",
        P,
        True,
        b"GET /x HTTP/1.1\r\nhost: a.example\r\ntransfer-encoding: chunked\r\n\r\n",
        True,
    ),
    (
        "body with length",
        [*P, (b"content-length", b"3")],
        True,
        b"GET /x HTTP/1.1\r\nhost: a.example\r\ncontent-length: 3\r\n\r\n",
        False,
    ),
    (
        "repeated equal lengths count once",
        [*P, (b"content-length", b"3"), (b"content-length", b"3")],
        True,
        b"GET /x HTTP/1.1\r\nhost: a.example\r\ncontent-length: 3\r\n\r\n",
        False,
    ),
    (
        "zero length without DATA",
        [*P, (b"content-length", b"0")],
        False,
        b"GET /x HTTP/1.1\r\nhost: a.example\r\ncontent-length: 0\r\n\r\n",
        False,
    ),
]


@pytest.mark.parametrize(
    ("fields", "body", "head", "chunked"), [h[1:] for h in HEADS], ids=[h[0] for h in HEADS]
)
def test_request_heads(
    fields: list[tuple[bytes, bytes]], body: bool, head: bytes, chunked: bool
) -> None:
    assert request_head(fields, body=body) == (head, chunked)


REFUSED: list[tuple[str, list[tuple[bytes, bytes]], bool]] = [
    ("no path", P[:3], False),
    ("asterisk", [*P[:3], (b":path", b"*")], False),
    ("absolute", [*P[:3], (b":path", b"https://b.example/")], False),
    ("no authority", [P[0], P[1], P[3]], False),
    ("protocol pseudo", [*P, (b":protocol", b"websocket")], False),
    ("name with space", [*P, (b"x y", b"1")], False),
    ("uppercase name", [*P, (b"X-Y", b"1")], False),
    ("control char", [*P, (b"x-y", b"a\x7fb")], False),
    ("signed length", [*P, (b"content-length", b"+3")], True),
    ("lengths disagree", [*P, (b"content-length", b"3"), (b"content-length", b"4")], True),
    ("length without DATA", [*P, (b"content-length", b"3")], False),
    ("authority with space", [P[0], P[1], (b":authority", b"a b"), P[3]], False),
]


@pytest.mark.parametrize(("fields", "body"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused_requests(fields: list[tuple[bytes, bytes]], body: bool) -> None:
    with pytest.raises(BadRequest):
        request_head(fields, body=body)


def test_response_fields_lose_connection_specific_ones() -> None:
    fields = [
        (b"content-type", b"text/plain"),
        (b"connection", b"keep-alive"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"h2c"),
        (b"set-cookie", b"a=1"),
    ]
    assert response_fields(fields) == [(b"content-type", b"text/plain"), (b"set-cookie", b"a=1")]


def test_trailer_section_keeps_only_what_a_trailer_may_carry() -> None:
    trailers = [
        (b"x-sum", b"1"),
        (b"content-length", b"9"),
        (b"host", b"evil"),
        (b"x bad", b"1"),
        (b"x-ctl", b"a\x01"),
        (b"grpc-status", b"0"),
    ]
    assert trailer_section(trailers) == b"0\r\nx-sum: 1\r\ngrpc-status: 0\r\n\r\n"
