"""The access log: one line per request, JSON (default) or nginx-like text, written in batches.

Lines are collected in memory and written with one ``write`` per batch (when the buffer passes
``_FLUSH_BYTES`` or on the data plane's periodic sweep), which keeps a system call per request
off the hot path. The fields follow ingress-nginx's log format (request id, upstream address
and status, Ingress and Service names).
"""

from __future__ import annotations

import os
import time
from json.encoder import encode_basestring_ascii as quote
from typing import Final, Literal

__all__ = ["AccessLog", "LogFormat"]

LogFormat = Literal["json", "text"]

_FLUSH_BYTES: Final = 64 * 1024


class AccessLog:
    __slots__ = ("_buffer", "_fd", "_format", "_size", "_stamp", "_stamp_second")

    def __init__(self, fd: int, *, fmt: LogFormat = "json") -> None:
        self._fd = fd
        self._format = fmt
        self._buffer: list[str] = []
        self._size = 0
        self._stamp_second = -1
        self._stamp = ""

    def _now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._stamp_second:  # formatted once per second, not per request
            self._stamp_second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

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
        if self._format == "json":
            line = (
                f'{{"time":"{self._now()}","remote_addr":{quote(remote)},'
                f'"request_id":{quote(request_id.decode("latin-1"))},'
                f'"method":{quote(method.decode("latin-1"))},'
                f'"host":{quote(host.decode("latin-1"))},"uri":{quote(uri.decode("latin-1"))},'
                f'"status":{status},"bytes":{size},"duration":{duration:.6f},'
                f'"upstream":{quote(upstream)},"ingress":{quote(ingress)},'
                f'"service":{quote(service)},"user_agent":{quote(agent.decode("latin-1"))}'
                + (f',"error":{quote(error)}}}\n' if error else "}\n")
            )
        else:
            line = (
                f'{remote} - [{self._now()}] "{method.decode("latin-1")} '
                f'{uri.decode("latin-1")}" {status} {size} {duration:.6f} '
                f"{host.decode('latin-1') or '-'} {upstream or '-'} {ingress or '-'} "
                f"{service or '-'} {request_id.decode('latin-1')} "
                f"{quote(agent.decode('latin-1'))}" + (f" {quote(error)}\n" if error else "\n")
            )
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data = "".join(self._buffer).encode("utf-8", "replace")
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
