"""An HTTP/2 test client over real sockets: h2's client state machine, plus raw frames (made
with hyperframe and hpack, the libraries h2 itself uses) for the requests a well-behaved
client would never send."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from h2.exceptions import ProtocolError
from hpack import Encoder
from hyperframe.frame import Frame, GoAwayFrame, HeadersFrame, RstStreamFrame

__all__ = ["H2Client", "H2Response", "h2_context"]


def h2_context(base: ssl.SSLContext, protocols: tuple[str, ...] = ("h2",)) -> ssl.SSLContext:
    base.set_alpn_protocols(list(protocols))
    return base


@dataclass
class H2Response:
    stream_id: int
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    ended: bool = False
    reset: int | None = None
    """The RST_STREAM error code, when the server reset the stream."""

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None


class H2Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.responses: dict[int, H2Response] = {}
        self.goaway: ConnectionTerminated | None = None
        self.closed = False
        self.encoder = Encoder()
        """For raw header blocks (its dynamic table is not h2's: use it on its own)."""

    @classmethod
    async def connect(
        cls,
        addr: tuple[str, int],
        *,
        tls: ssl.SSLContext | None = None,
        sni: str | None = None,
        settings: dict[int, int] | None = None,
    ) -> H2Client:
        reader, writer = await asyncio.open_connection(
            addr[0], addr[1], ssl=tls, server_hostname=sni if tls else None
        )
        c = cls(reader, writer)
        if settings:
            c.conn.local_settings.update(settings)
        c.conn.initiate_connection()
        c.flush()
        return c

    @property
    def alpn(self) -> str | None:
        sslobj = self.writer.get_extra_info("ssl_object")
        return None if sslobj is None else sslobj.selected_alpn_protocol()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)

    def raw(self, *frames: Frame | bytes) -> None:
        """Frames h2 would refuse to send, written as they are."""
        self.writer.write(b"".join(f if isinstance(f, bytes) else f.serialize() for f in frames))

    def send_request(
        self,
        path: str = "/",
        *,
        authority: str = "app.example.com",
        method: str = "GET",
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        end: bool = True,
    ) -> int:
        sid = self.conn.get_next_available_stream_id()
        hdrs = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
        ] + [(n.encode(), v.encode()) for n, v in headers or []]
        self.responses[sid] = H2Response(sid)
        self.conn.send_headers(sid, hdrs, end_stream=end and body is None)
        if body is not None:
            self.send_body(sid, body, end=end)
        self.flush()
        return sid

    def send_body(self, sid: int, body: bytes, *, end: bool) -> None:
        """As much as the windows allow now; the rest goes by ``pump_body``."""
        self._pending = getattr(self, "_pending", {})
        self._pending[sid] = (bytearray(body), end)
        self._push()

    def _push(self) -> None:
        pending: dict[int, tuple[bytearray, bool]] = getattr(self, "_pending", {})
        for sid, (buf, end) in list(pending.items()):
            while buf:
                try:
                    window = self.conn.local_flow_control_window(sid)
                except ProtocolError:
                    del pending[sid]
                    break
                n = min(window, self.conn.max_outbound_frame_size, len(buf))
                if n <= 0:
                    break
                self.conn.send_data(sid, bytes(buf[:n]))
                del buf[:n]
            else:
                if end:
                    with contextlib.suppress(ProtocolError):
                        self.conn.end_stream(sid)
                del pending[sid]
        self.flush()

    async def pump(self, timeout: float = 5.0) -> bool:
        """Read once; False when the connection is closed."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except (ConnectionError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            self.closed = True
            return False
        for ev in events:
            if isinstance(ev, ResponseReceived):
                r = self.responses.setdefault(ev.stream_id or 0, H2Response(ev.stream_id or 0))
                r.headers = list(ev.headers or [])
                r.status = int(dict(r.headers)[b":status"])
            elif isinstance(ev, DataReceived):
                r = self.responses[ev.stream_id or 0]
                r.body += ev.data or b""
                self.conn.acknowledge_received_data(
                    ev.flow_controlled_length or 0, ev.stream_id or 0
                )
            elif isinstance(ev, TrailersReceived):
                self.responses[ev.stream_id or 0].trailers = list(ev.headers or [])
            elif isinstance(ev, StreamEnded):
                self.responses[ev.stream_id or 0].ended = True
            elif isinstance(ev, StreamReset):
                r = self.responses.setdefault(ev.stream_id or 0, H2Response(ev.stream_id or 0))
                r.reset = int(ev.error_code or 0)
            elif isinstance(ev, ConnectionTerminated):
                self.goaway = ev
        self._push()
        self.flush()
        return True

    async def wait(self, *sids: int, timeout: float = 5.0) -> list[H2Response]:
        loop = asyncio.get_running_loop()
        limit = loop.time() + timeout
        while not all(self.responses[s].done for s in sids):
            left = limit - loop.time()
            if left <= 0:
                raise TimeoutError(f"streams {sids} not done")
            if not await self.pump(left):
                break
        return [self.responses[s] for s in sids]

    async def request(self, path: str = "/", **kw: object) -> H2Response:
        sid = self.send_request(path, **kw)  # type: ignore[arg-type]
        (r,) = await self.wait(sid)
        return r

    async def until_closed(self, timeout: float = 5.0) -> ConnectionTerminated | None:
        """Read until the server closes; the GOAWAY it sent, if any."""
        loop = asyncio.get_running_loop()
        limit = loop.time() + timeout
        while not self.closed:
            left = limit - loop.time()
            if left <= 0:
                raise TimeoutError("the server did not close the connection")
            await self.pump(left)
        return self.goaway

    # --- raw reading: for streams h2's client state machine never opened ----------------------

    async def next_frame(self, timeout: float = 5.0) -> Frame | None:
        """The server's next frame, read without h2 (None: the connection closed)."""
        buf: bytearray = getattr(self, "_raw", bytearray())
        self._raw = buf
        while True:
            if len(buf) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(bytes(buf[:9])))
                if len(buf) >= 9 + length:
                    frame.parse_body(memoryview(bytes(buf[9 : 9 + length])))
                    del buf[: 9 + length]
                    return frame
            try:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
            except (ConnectionError, ssl.SSLError):
                data = b""
            if not data:
                return None
            buf += data

    async def outcome(self, sid: int, timeout: float = 5.0) -> tuple[str, int]:
        """What became of stream ``sid`` (sent raw): ("status", code), ("reset", error code)
        or ("goaway", error code); ("closed", 0) when the connection closed without a word."""
        decoder = self.conn.decoder  # shares the server's HPACK state with h2's reads so far
        while True:
            frame = await self.next_frame(timeout)
            if frame is None:
                return ("closed", 0)
            if isinstance(frame, GoAwayFrame):
                return ("goaway", frame.error_code)
            if isinstance(frame, HeadersFrame):
                fields = dict(decoder.decode(frame.data, raw=True))
                if frame.stream_id == sid:
                    return ("status", int(fields[b":status"]))
            if isinstance(frame, RstStreamFrame) and frame.stream_id == sid:
                return ("reset", frame.error_code)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
