"""The fuzzer's oracle: what a strict HTTP/1.1 server (h11) reads from a byte stream. Pure.

``parse_stream`` turns the bytes a client sent into the requests h11 finds in them, in order,
and says how the stream ended: cleanly between messages, inside a message (the client stopped
sending: *incomplete*), with a protocol error h11 refuses, after a request that ends the
connection (``Connection: close``, HTTP/1.0), or after a request that asks to switch protocols.
The same function reads the bytes the recording backend received from the proxy, so the client
side and the backend side are compared in one vocabulary.

Where the proxy is meant to differ from h11, the rule is written here next to its reason:

- ``STRICTER`` lists what h11 accepts and the proxy must refuse anyway (decisions of issue 14,
  each with what nginx does). A request with one of these never reaches the backend complete.
- ``LOOSER`` lists what h11 refuses or mishandles and the oracle reads as the RFC allows, so that
  the proxy doing the same is not reported.
- Everything else h11 accepts, the proxy may still refuse (it is a stricter parser, llhttp:
  obsolete line folding, ``Content-Length: 1, 1``, both Content-Length and Transfer-Encoding,
  targets in neither origin- nor absolute-form, Host values that are not a host); that is
  allowed as long as the refusal is a prompt 4xx/5xx, and the fuzzer counts those cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import h11
from h11._state import MIGHT_SWITCH_PROTOCOL

__all__ = [
    "LOOSER",
    "MAX_CHUNK",
    "STRICTER",
    "Ending",
    "Message",
    "Parsed",
    "connection_tokens",
    "expected_target_and_host",
    "parse_stream",
    "strict_refusal",
]

#: What the proxy must refuse although h11 accepts it (reason, and nginx's answer).
STRICTER: Final[dict[str, str]] = {
    "version": "HTTP/1.x other than 1.0 and 1.1 (h11 reads any digit.digit): a request for "
    "another protocol version must not be relayed as HTTP/1.1; nginx answers 505",
    "fragment": "a '#' in the request target: a request target has no fragment (RFC 9112 §3.2, "
    "RFC 9110 §7.1), and proxy and backend would disagree on the path; nginx answers 400",
    "chunk-size": "a chunk size of 2**63 or more (h11 reads up to 20 hex digits): no body is "
    "that long, and a size that overflows a signed 64-bit length is how parsers disagree; "
    "nginx answers 400 at once instead of waiting for the bytes",
    "underscore": "a header name with '_' never reaches the backend (dropped or refused): CGI-"
    "style backends read X_A and X-A as the same variable; nginx drops them",
}

#: Where the oracle reads the stream differently from h11, and why.
LOOSER: Final[dict[str, str]] = {
    "empty-lines": "CR and LF bytes before a request line are skipped, as RFC 9112 §2.2 asks of "
    "a server for empty lines (h11 refuses them); a lone CR too, as nginx and the proxy skip it",
    "http10-keep-alive": "an HTTP/1.0 request with Connection: keep-alive keeps the connection "
    "(RFC 9112 §9.3); h11 always closes after HTTP/1.0, so the oracle reads the rest itself",
    "upgrade-without-connection": "an Upgrade header that Connection does not name is no "
    "request to switch (RFC 9110 §7.8: the sender MUST also send the upgrade connection option; "
    "the proxy drops the header as hop-by-hop); h11 switches on Upgrade alone, so the oracle "
    "reads the following requests itself",
}

#: The largest chunk size the proxy need accept (a signed 64-bit length, as nginx's off_t).
MAX_CHUNK: Final = 2**63 - 1

#: A bound on the requests read from one stream (the generator makes at most a few).
_MAX_MESSAGES: Final = 16

Ending = Literal["clean", "incomplete", "error", "closed", "switched"]


@dataclass(frozen=True, slots=True)
class Message:
    """One request as h11 read it: ``complete`` is False when the stream ended or failed inside
    its body (the body is what arrived before that)."""

    method: bytes
    target: bytes
    version: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    """Lower-case names, values as h11 gives them (surrounding whitespace removed)."""
    body: bytes
    complete: bool
    trailers: tuple[tuple[bytes, bytes], ...] = ()
    """The trailer section of a chunked body (lower-case names)."""
    chunk_size: int = 0
    """The declared size of the chunk the stream stopped in, if it did (chunk-size rule)."""

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]


@dataclass(frozen=True, slots=True)
class Parsed:
    messages: tuple[Message, ...]
    """Complete requests, then possibly one that is not (``ending`` says why)."""
    ending: Ending
    error: str = ""
    rest: bytes = b""
    """The bytes from the start of the message the stream ended in or h11 refused."""

    @property
    def complete(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.complete)


def connection_tokens(msg: Message) -> frozenset[bytes]:
    return frozenset(
        t.strip().lower() for v in msg.header(b"connection") for t in v.split(b",") if t.strip()
    )


def _keeps_alive(msg: Message) -> bool:
    """RFC 9112 §9.3: HTTP/1.1 persists unless ``close``; HTTP/1.0 only with ``keep-alive``."""
    tokens = connection_tokens(msg)
    if b"close" in tokens:
        return False
    return msg.version != b"1.0" or b"keep-alive" in tokens


def _skip_empty_lines(data: bytes) -> bytes:
    return data.lstrip(b"\r\n")  # LOOSER["empty-lines"]


def parse_stream(data: bytes) -> Parsed:
    """The requests a strict server reads from ``data``, the whole of what a client sent."""
    messages: list[Message] = []
    rest = data
    for _ in range(_MAX_MESSAGES):
        rest = _skip_empty_lines(rest)
        if not rest:
            return Parsed(tuple(messages), "clean")
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(rest)
        request: h11.Request | None = None
        trailers: tuple[tuple[bytes, bytes], ...] = ()
        body = bytearray()
        chunk_seen = 0  # bytes of the chunk being read (for the chunk-size rule)
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if request is not None:
                    messages.append(_message(request, body, complete=False))
                return Parsed(tuple(messages), "error", str(exc), rest)
            if event is h11.NEED_DATA:
                if request is not None:
                    # h11 keeps what is still due of the current chunk (private, h11 is pinned).
                    left = int(getattr(conn._reader, "_bytes_in_chunk", 0))
                    size = left + chunk_seen if left else 0
                    messages.append(_message(request, body, complete=False, chunk_size=size))
                return Parsed(tuple(messages), "incomplete", rest=rest)
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                chunk_seen = len(event.data) + (0 if event.chunk_start else chunk_seen)
            elif isinstance(event, h11.EndOfMessage):
                trailers = tuple((k, v) for k, v in event.headers)
                break
        assert request is not None
        msg = _message(request, body, complete=True, trailers=trailers)
        messages.append(msg)
        if conn.their_state is MIGHT_SWITCH_PROTOCOL:
            asked = request.method == b"CONNECT" or b"upgrade" in connection_tokens(msg)
            if asked:
                return Parsed(tuple(messages), "switched")  # not HTTP after it
            # LOOSER["upgrade-without-connection"]: go on with what follows, as HTTP.
            if not _keeps_alive(msg):
                return Parsed(tuple(messages), "closed")
            rest = conn.trailing_data[0]
            continue
        if not _keeps_alive(msg):
            return Parsed(tuple(messages), "closed")
        rest = conn.trailing_data[0]
    return Parsed(tuple(messages), "error", "too many requests for the fuzzer's bound")


def _message(
    request: h11.Request,
    body: bytearray,
    *,
    complete: bool,
    chunk_size: int = 0,
    trailers: tuple[tuple[bytes, bytes], ...] = (),
) -> Message:
    return Message(
        method=request.method,
        target=request.target,
        version=request.http_version,
        headers=tuple((k, v) for k, v in request.headers),
        body=bytes(body),
        complete=complete,
        chunk_size=chunk_size,
        trailers=trailers,
    )


def strict_refusal(msg: Message) -> str | None:
    """The ``STRICTER`` rule that makes the proxy refuse ``msg``, if any (underscores aside:
    those may be dropped instead, which the backend side checks)."""
    if msg.version not in (b"1.0", b"1.1"):
        return "version"
    if b"#" in msg.target:
        return "fragment"
    if msg.chunk_size > MAX_CHUNK:
        return "chunk-size"
    return None


def expected_target_and_host(msg: Message) -> tuple[bytes, bytes | None]:
    """The target and Host the backend should see for ``msg``.

    The proxy's documented rewrite (RFC 9112 §3.2.2, ``_plans``): an absolute-form target is
    cut to its path (``/`` when it has none) and its authority replaces Host. ``None``: the
    client sent no Host (HTTP/1.0), and the proxy names the endpoint instead.
    """
    target = msg.target
    if target[:8].lower().startswith((b"http://", b"https://")):
        rest = target.split(b"//", 1)[1]
        slash = rest.find(b"/")
        if slash < 0:
            return b"/", rest
        return rest[slash:], rest[:slash]
    hosts = msg.header(b"host")
    return target, hosts[0] if hosts else None
