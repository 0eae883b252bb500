"""The access log: one line per request, JSON (default) or nginx-like text, written in batches.

Lines are collected in memory and written with one ``write`` per batch (when the buffer passes
``_FLUSH_BYTES`` or on the data plane's periodic sweep), which keeps a system call per request
off the hot path. Lines are built as bytes with one formatting operation; values a client
controls are JSON-escaped only when they contain something that needs it. The fields follow
ingress-nginx's log format (request id, upstream address and status, Ingress and Service).
"""

from __future__ import annotations

import os
import re
import time
from json.encoder import encode_basestring_ascii
from typing import Final, Literal

__all__ = ["AccessLog", "LogFormat"]

LogFormat = Literal["json", "text"]

_FLUSH_BYTES: Final = 64 * 1024
_UNSAFE: Final = re.compile(rb'["\\\x00-\x1f\x7f-\xff]')


def _json(value: bytes) -> bytes:
    """``value`` as the inside of a JSON string (RFC 8259 §7)."""
    if _UNSAFE.search(value) is None:
        return value
    return encode_basestring_ascii(value.decode("latin-1"))[1:-1].encode("ascii")


def _text(value: str) -> bytes:
    return _json(value.encode("utf-8", "surrogateescape"))


class AccessLog:
    __slots__ = ("_buffer", "_fd", "_json", "_size", "_stamp", "_stamp_second")

    def __init__(self, fd: int, *, fmt: LogFormat = "json") -> None:
        self._fd = fd
        self._json = fmt == "json"
        self._buffer: list[bytes] = []
        self._size = 0
        self._stamp_second = -1
        self._stamp = b""

    def _now(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._stamp_second:  # formatted once per second, not per request
            self._stamp_second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
        return b"%b.%03dZ" % (self._stamp, int((now - second) * 1000))

    def request(
        self,
        *,
        remote: str,
        method: bytes,
        host: bytes,
        uri: bytes,
        status: int,
        size: int,
        duration: float,
        request_id: bytes,
        upstream: str,
        ingress: str,
        service: str,
        agent: bytes,
        error: str,
    ) -> None:
        if self._json:
            line = (
                b'{"time":"%b","remote_addr":"%b","request_id":"%b","method":"%b","host":"%b",'
                b'"uri":"%b","status":%d,"bytes":%d,"duration":%.6f,"upstream":"%b",'
                b'"ingress":"%b","service":"%b","user_agent":"%b"%b}\n'
                % (
                    self._now(),
                    remote.encode(),
                    _json(request_id),
                    method,
                    _json(host),
                    _json(uri),
                    status,
                    size,
                    duration,
                    upstream.encode(),
                    _text(ingress),
                    _text(service),
                    _json(agent),
                    b',"error":"%b"' % _text(error) if error else b"",
                )
            )
        else:
            line = b'%b - [%b] "%b %b" %d %d %.6f %b %b %b %b %b "%b"%b\n' % (
                remote.encode(),
                self._now(),
                method,
                _json(uri),
                status,
                size,
                duration,
                _json(host) or b"-",
                upstream.encode() or b"-",
                _text(ingress) or b"-",
                _text(service) or b"-",
                _json(request_id) or b"-",
                _json(agent),
                b' "%b"' % _text(error) if error else b"",
            )
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except OSError:
                # Gone (closed pipe) or full non-blocking pipe: requests are still served, the
                # batch is dropped rather than stalling the event loop.
                return
            view = view[written:]
