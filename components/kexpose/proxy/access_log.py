"""The access log: one line per request, JSON (default) or nginx-like text, written in batches.

Lines are collected in memory and written with one ``write`` per batch (when the buffer passes
``_FLUSH_BYTES`` or on the data plane's periodic sweep), which keeps a system call per request
off the hot path. Each line is one bytes-formatting operation: the parts that repeat (the
Ingress/Service pair of a route, an endpoint address, the timestamp of the current second)
are formatted once and cached, and values a client controls are JSON-escaped only when they
contain something that needs it. Time has one-second resolution, as nginx's ``$time_local``;
``duration`` carries the precise figure. The fields follow ingress-nginx's log format
(request id, upstream address, Ingress and Service).
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
_CACHE_MAX: Final = 10_000
_UNSAFE: Final = re.compile(rb'["\\\x00-\x1f\x7f-\xff]')


def _json(value: bytes) -> bytes:
    """``value`` as the inside of a JSON string (RFC 8259 §7)."""
    if _UNSAFE.search(value) is None:
        return value
    return encode_basestring_ascii(value.decode("latin-1"))[1:-1].encode("ascii")


def _text(value: str) -> bytes:
    return _json(value.encode("utf-8", "surrogateescape"))


class AccessLog:
    __slots__ = ("_buffer", "_fd", "_json", "_labels", "_second", "_size", "_stamp")

    def __init__(self, fd: int, *, fmt: LogFormat = "json") -> None:
        self._fd = fd
        self._json = fmt == "json"
        self._buffer: list[bytes] = []
        self._size = 0
        self._second = -1
        self._stamp = b""
        self._labels: dict[tuple[str, str], bytes] = {}

    def _now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)).encode()
        return self._stamp

    def label(self, ingress: str, service: str) -> bytes:
        """The Ingress/Service part of a line, formatted once per pair."""
        key = (ingress, service)
        label = self._labels.get(key)
        if label is None:
            if len(self._labels) >= _CACHE_MAX:
                self._labels.clear()
            if self._json:
                label = b'"ingress":"%b","service":"%b"' % (_text(ingress), _text(service))
            else:
                label = b"%b %b" % (_text(ingress) or b"-", _text(service) or b"-")
            self._labels[key] = label
        return label

    def request_part(
        self, method: bytes, host: bytes, uri: bytes, agent: bytes, request_id: bytes | None
    ) -> tuple[bytes, bytes]:
        """The part of a line that depends on the request head only, and the client's
        request id, escaped. The data plane keeps both with the (shared) request head."""
        rid = _json(request_id) if request_id is not None else b""
        if self._json:
            part = b'"method":"%b","host":"%b","uri":"%b","user_agent":"%b"' % (
                method,
                _json(host),
                _json(uri),
                _json(agent),
            )
        else:
            part = b'"%b %b" %b "%b"' % (method, _json(uri), _json(host) or b"-", _json(agent))
        return part, rid

    def request(
        self,
        remote: bytes,
        request_id: bytes,
        part: bytes,
        status: int,
        size: int,
        duration: float,
        upstream: bytes,
        label: bytes,
        error: str,
    ) -> None:
        """One line. ``part`` and ``label`` come from :meth:`request_part` and :meth:`label`;
        ``remote``, ``upstream`` and a generated ``request_id`` need no escaping."""
        if self._json:
            line = (
                b'{"time":"%b","remote_addr":"%b","request_id":"%b",%b,"status":%d,"bytes":%d,'
                b'"duration":%.6f,"upstream":"%b",%b%b}\n'
                % (
                    self._now(),
                    remote,
                    request_id,
                    part,
                    status,
                    size,
                    duration,
                    upstream,
                    label,
                    b',"error":"%b"' % _text(error) if error else b"",
                )
            )
        else:
            line = b"%b - [%b] %b %d %d %.6f %b %b %b%b\n" % (
                remote,
                self._now(),
                part,
                status,
                size,
                duration,
                upstream or b"-",
                label,
                request_id or b"-",
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
