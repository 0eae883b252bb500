"""Hypothesis strategies for adversarial HTTP/1.1 request streams (bytes a client sends).

Most draws are close to valid, because a request every parser refuses at the first byte says
little; each part has a few hostile variants: versions, target forms and escapes, header names
and separators, values with control bytes, obsolete line folding, bare-LF line endings,
Connection naming framing headers, Content-Length and Transfer-Encoding variants, chunk sizes
and extensions, trailers, and pipelined requests (or a request hidden in a body) after it.
"""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["request_streams", "requests"]


HOST = b"app.example.com"


def _any(*groups: list[bytes]) -> st.SearchStrategy[bytes]:
    """One value of any of the groups (a group is just a line of the table)."""
    return st.sampled_from([v for group in groups for v in group])


def _mostly(
    common: st.SearchStrategy[bytes], rare: st.SearchStrategy[bytes], one_in: int
) -> st.SearchStrategy[bytes]:
    """``rare`` about once in ``one_in`` draws, else ``common``; shrinks towards ``common``."""
    return st.integers(0, one_in - 1).flatmap(lambda n: rare if n == one_in - 1 else common)


_EOLS = st.sampled_from([b"\n", b"\r", b"\n\r", b"\r\r\n"])

_METHODS = _mostly(
    st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH"]),
    _any(
        [b"TRACE", b"CONNECT", b"get", b"M-SEARCH", b"G_T", b"G@T", b"GET\x00", b"", b"PRI"],
        [b"\xc3\x89", b"GET /"],
    ),
    one_in=12,
)

_TARGET_STARTS = _mostly(
    st.sampled_from(
        [b"/", b"/a", b"/a/b/", b"http://app.example.com/", b"HTTP://App.Example.Com/x"]
    ),
    _any(
        [b"//x", b"*", b"", b"a", b"?q", b"#", b"%2F", b"http://app.example.com"],
        [b"https://app.example.com:443/s", b"http://other.test:8080/p", b"http://[::1]/v6"],
        [b"http://a@app.example.com/", b"http://app.example.com?q=1", b"ftp://app.example.com/"],
    ),
    one_in=6,
)

_TARGET_PIECES = _mostly(
    _any(
        [b"x", b"..", b"/..", b"/../..", b".", b"%2e%2e", b"%2E%2e/", b"%2F", b"%00", b"%"],
        [b"%zz", b"#", b"#frag", b"#/../admin", b"?q=1", b"?a=#b", b";p", b"~", b"/", b"//"],
        [b"\\", b"@", b"'", b'"', b"<"],
    ),
    st.sampled_from([b"\x7f", b"\xc3\xa9", b"\x00", b" ", b"\t", b"\r"]),
    one_in=12,
)

_VERSIONS = _mostly(
    st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]),
    _any(
        [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"HTTP/3.0", b"HTTP/9.9", b"http/1.1"],
        [b"HTTP/1.10", b"HTTP/1", b"HTTP/11", b"", b"HTTP/1.1 x", b"HTTP/1.1\x00", b"HTTPS/1.1"],
    ),
    one_in=10,
)

_HOSTS = _any(
    [b"App.Example.COM.", b"app.example.com:80", b"app.example.com:8080", b"[::1]"],
    [b"[::1]:80", b"127.0.0.1", b"", b"a..b", b"a b", b"app.example.com:", b"x_y.test"],
    [b"\xff", b"host,other", b"app.example.com:x", b"user@app.example.com", b"a/b"],
)

_NAMES = _mostly(
    _any(
        [b"X-A", b"Accept", b"User-Agent", b"X-Forwarded-For", b"X-Real-IP", b"X-Request-ID"],
        [b"x_a", b"X_Forwarded_For", b"Keep-Alive", b"Proxy-Connection", b"TE", b"Trailer"],
        [b"Upgrade", b"Expect", b"Forwarded", b"Host", b"Content-Length", b"Transfer-Encoding"],
        [b"Connection", b"Content-length", b"Transfer_Encoding", b"Content_Length"],
    ),
    st.sampled_from([b"X A", b"X-A ", b"X\tA", b"", b"X@A", b"X\x00A", b"\xc3\xa9", b"X\rA"]),
    one_in=12,
)

_SEPARATORS = _mostly(
    st.just(b": "), st.sampled_from([b":", b":\t", b" :", b"\t:", b":  ", b"::"]), one_in=10
)

_VALUES = _mostly(
    _any(
        [b"1", b"a b", b"", b" padded ", b"100-continue", b"websocket", b"trailers", b"gzip"],
        [b"chunked", b"close", b"1.2.3.4", b"a,b", b'"q"', b"x" * 40, b"\xff"],
    ),
    st.sampled_from([b"\x00", b"a\rb", b"a\nb", b"\x7f", b"\x01", b"\t"]),
    one_in=10,
)

_CONNECTION_TOKENS = _any(
    [b"close", b"keep-alive", b"upgrade", b"content-length", b"transfer-encoding", b"host"],
    [b"Content-Length", b"HOST", b"te", b"x-a", b"x_a", b"trailer", b"x-forwarded-for"],
)

_CONNECTION_JOINERS = _mostly(st.just(b", "), st.sampled_from([b",", b" , ", b",,"]), one_in=3)

_TRANSFER_CODINGS = _mostly(
    st.just(b"chunked"),
    _any(
        [b"Chunked", b"CHUNKED", b" chunked", b"chunked ", b"\tchunked", b"chunked, chunked"],
        [b"gzip, chunked", b"chunked, gzip", b"identity", b"chunked;q=1", b"xchunked", b""],
        [b"chunked,", b",chunked", b"chunked\x00"],
    ),
    one_in=3,
)

_SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: app.example.com\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"

_BODIES = st.one_of(
    st.binary(max_size=24),
    st.just(_SMUGGLED),
    st.sampled_from([b"0\r\n\r\n", b"\r\n\r\n", b"x" * 100]),
)


def _rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws (shrinks to False)."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


@st.composite
def _target(draw: st.DrawFn) -> bytes:
    pieces = draw(st.lists(_TARGET_PIECES, max_size=3)) if _rarely(draw, 3) else []
    return draw(_TARGET_STARTS) + b"".join(pieces)


@st.composite
def _content_lengths(draw: st.DrawFn, n: int) -> list[bytes]:
    """Content-Length header values for a body of ``n`` bytes (usually one, usually right)."""
    right = b"%d" % n
    if not _rarely(draw, 3):
        return [right]
    first = draw(
        _any(
            [b"0" + right, b"+" + right, b"-1", b" " + right + b" ", right + b", " + right],
            [right + b",%d" % (n + 1), b"99999999999999999999", b"18446744073709551616"],
            [b"0x10", b"", b"1e2", b"%d" % (n + 7), b"%d" % max(n - 3, 0), right, right],
        )
    )
    if not _rarely(draw, 3):
        return [first]
    return [first, draw(st.sampled_from([first, right, b"%d" % (n + 1), b"0"]))]


@st.composite
def _chunk_size(draw: st.DrawFn, size: int) -> bytes:
    if not _rarely(draw, 3):
        return b"%x" % size
    return draw(
        _any(
            [b"%X" % size, b"000%x" % size, b"%x;ext=v" % size, b"%x;e" % size, b"%x ;e=1" % size],
            [b"%x " % size, b" %x" % size, b"+%x" % size, b"0x%x" % size, b"%x" % (size + 1)],
            [b"%x" % max(size - 1, 0), b"ffffffffffffffff", b"8000000000000000"],
            [b"7fffffffffffffff", b"1" + b"0" * 16, b"0" * 19 + b"%x" % size],
            [b"0" * 30 + b"%x" % size, b'%x;e="a"' % size, b"%x\t" % size],
        )
    )


@st.composite
def _chunked_body(draw: st.DrawFn, body: bytes, eol: bytes) -> bytes:
    """``body`` in chunked coding, with hostile sizes, extensions, line endings and trailers."""
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    odd_eol = _mostly(st.just(eol), st.sampled_from([b"\n", b"\r", b""]), one_in=10)
    out = []
    for piece in pieces:
        if piece:
            size = draw(_chunk_size(len(piece)))
            out.append(size + draw(odd_eol) + piece + draw(odd_eol))
    last = b"0"
    if _rarely(draw, 5):
        last = draw(st.sampled_from([b"000", b"0;ext", b"0 ", b"00000000000000000000"]))
    trailers = b""
    if _rarely(draw, 5):
        trailers = draw(st.sampled_from([b"X-T: 1", b"Content-Length: 5", b"X_T: 1"])) + eol
    ending = eol + trailers + eol
    if _rarely(draw, 8):
        ending = draw(st.sampled_from([eol, b"", eol + b"\n", b"\n\n"]))
    return b"".join(out) + last + ending


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """One request: request line, header lines, body (possibly malformed anywhere)."""
    eol = draw(_EOLS) if _rarely(draw, 15) else b"\r\n"

    def line_end() -> bytes:
        # Now and then one line of a CRLF head ends differently (mixed line endings).
        return draw(_EOLS) if _rarely(draw, 40) else eol

    method = draw(_METHODS)
    target = draw(_target())
    version = draw(_VERSIONS)
    sep = draw(st.sampled_from([b"  ", b"\t", b""])) if _rarely(draw, 30) else b" "
    lines: list[bytes] = [method + sep + target + b" " + version]

    hosts = [HOST]
    if _rarely(draw, 4):
        hosts = draw(st.sampled_from([[], [HOST, HOST], [HOST, b"other.test"], [HOST, b""]]))
    if hosts and _rarely(draw, 4):
        hosts = [draw(_HOSTS), *hosts[1:]]
    for host in hosts:
        name = (
            draw(st.sampled_from([b"Host", b"host", b"HOST", b"Host "]))
            if _rarely(draw, 5)
            else b"Host"
        )
        lines.append(name + b": " + host)

    for _ in range(draw(st.integers(0, 3))):
        name, sep2, value = draw(_NAMES), draw(_SEPARATORS), draw(_VALUES)
        if _rarely(draw, 20):
            value += eol + draw(st.sampled_from([b" ", b"\t"])) + b"folded"  # obs-fold
        lines.append(name + sep2 + value)

    if _rarely(draw, 3):
        tokens = draw(st.lists(_CONNECTION_TOKENS, min_size=1, max_size=3))
        lines.append(b"Connection: " + draw(_CONNECTION_JOINERS).join(tokens))

    body = draw(_BODIES)
    framing = draw(st.sampled_from(["length", "none", "chunked"]))
    if _rarely(draw, 10):
        framing = "both"
    payload = b""
    if framing in ("length", "both"):
        lines += [b"Content-Length: " + v for v in draw(_content_lengths(len(body)))]
        payload = body
    if framing in ("chunked", "both"):
        lines.append(b"Transfer-Encoding: " + draw(_TRANSFER_CODINGS))
        if _rarely(draw, 12):
            lines.append(b"Transfer-Encoding: chunked")
        payload = draw(_chunked_body(body, eol))

    order = draw(st.permutations(range(1, len(lines))))
    head = lines[0] + line_end() + b"".join(lines[i] + line_end() for i in order)
    return head + eol + payload


@st.composite
def request_streams(draw: st.DrawFn) -> bytes:
    """What one client connection sends: a request, maybe pipelined ones after it, maybe junk."""
    parts = draw(st.lists(requests(), min_size=1, max_size=3))
    lead = draw(st.sampled_from([b"\r\n", b"\n", b"\r\n\r\n", b"\r"])) if _rarely(draw, 12) else b""
    tail = b""
    if _rarely(draw, 12):
        tail = draw(st.sampled_from([b"\r\n", b"GET / HTTP/1.1\r\n", b"\x00", b"x"]))
    return lead + b"".join(parts) + tail
