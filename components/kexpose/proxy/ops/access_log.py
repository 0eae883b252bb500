"""The access log: one line per request, JSON (default) or nginx-like text, written in batches.

Lines wait in memory as rows of values and are formatted and written as a batch (every
``_FLUSH_ROWS`` requests or on the data plane's periodic sweep), which keeps a system call and
most of the formatting work off the per-request path. The parts that repeat (the
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

_FLUSH_ROWS: Final = 256  # about 80 KiB of JSON lines per write
# One template per format over the same row: (time, remote, request id, request part, status,
# bytes, duration, upstream, ingress/service label, error note).
_JSON_LINE: Final = (
    b'{"time":"%b","remote_addr":"%b","request_id":"%b",%b,"status":%d,"bytes":%d,'
    b'"duration":%.6f,"upstream":"%b",%b%b}\n'
)
_TEXT_LINE: Final = b"[%b] %b %b %b %d %d %.6f %b %b%b\n"
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
    __slots__ = ("_fd", "_json", "_labels", "_rows", "_second", "_stamp", "_template")

    def __init__(self, fd: int, *, fmt: LogFormat = "json") -> None:
        self._fd = fd
        self._json = fmt == "json"
        self._template = _JSON_LINE if self._json else _TEXT_LINE
        self._rows: list[
            tuple[bytes, bytes, bytes, bytes, int, int, float, bytes, bytes, bytes]
        ] = []
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
        ``remote``, ``upstream`` and a generated ``request_id`` need no escaping. The values
        wait in a row; :meth:`flush` formats a batch of rows in one C-level pass."""
        note = b""
        if error:
            note = (b',"error":"%b"' if self._json else b' "%b"') % _text(error)
        if not upstream and not self._json:
            upstream = b"-"
        rows = self._rows
        rows.append(
            (self._now(), remote, request_id, part, status, size, duration, upstream, label, note)
        )
        if len(rows) >= _FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        rows = self._rows
        if not rows:
            return
        data = b"".join(map(self._template.__mod__, rows))
        rows.clear()
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except OSError:
                # Gone (closed pipe) or full non-blocking pipe: requests are still served, the
                # batch is dropped rather than stalling the event loop.
                return
            view = view[written:]
