"""Where a chunked body ends, and what data it carries (RFC 9112 §7.1). Pure, incremental.

The proxy feeds every byte to llhttp as well, which validates the framing strictly; this
scanner exists because httptools reports *that* a message ended but not *where* in the buffer.
Knowing the exact end lets us keep whatever follows (a pipelined request) for the next message
and pass chunked bodies through unchanged. Both must agree on the end, or the message is
refused: a disagreement between two parsers is how request smuggling starts.

    chunked-body = *chunk last-chunk trailer-section CRLF
    chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
    last-chunk   = 1*("0") [ chunk-ext ] CRLF
"""

from __future__ import annotations

from typing import Final

__all__ = ["ChunkedError", "ChunkedScanner"]

_SIZE: Final = 0  # reading a chunk-size line
_DATA: Final = 1  # inside chunk-data
_DATA_END: Final = 2  # expecting the CRLF after chunk-data
_TRAILER: Final = 3  # reading trailer lines up to the empty one
_DONE: Final = 4

#: A chunk-size line (with extensions) or trailer line longer than this is refused; llhttp
#: has no limit of its own, and nothing legitimate comes close.
MAX_LINE: Final = 8 * 1024

#: The largest chunk-size accepted: nginx's bound (the largest ``off_t``). llhttp takes any
#: 64-bit value; a size of 2**63 or more reads as negative to a backend that parses it into a
#: signed 64-bit integer, and a disagreement on where a chunk ends is request smuggling.
MAX_CHUNK_SIZE: Final = 2**63 - 1


class ChunkedError(ValueError):
    """The body is not valid chunked coding."""


class ChunkedScanner:
    __slots__ = ("_left", "_line", "_state")

    def __init__(self) -> None:
        self._state = _SIZE
        self._left = 0
        self._line = b""

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def scan(
        self,
        data: bytes,
        out: list[bytes] | None = None,
        forward: list[bytes] | None = None,
    ) -> int:
        """How many leading bytes of ``data`` belong to the body; appends decoded data to ``out``
        and, to ``forward``, those bytes as a proxy passes them on.

        Returns ``len(data)`` while the body goes on; less once it ended inside ``data``.

        ``forward`` gets the chunks and the last chunk as received, then an empty trailer
        section: trailer fields are dropped (nginx drops them too, by re-framing). They would
        otherwise reach the endpoint without the checks header fields get, e.g. an
        ``X_Forwarded_For`` or ``X-Forwarded-For`` trailer that a lenient framework merges
        into the headers (RFC 9110 §6.5.1 forbids the merge; not every framework obeys).
        """
        pos = 0
        n = len(data)
        kept = 0 if self._state != _TRAILER else -1  # start of the bytes to forward; -1: none
        while pos < n:
            state = self._state
            if state == _DATA:
                take = min(self._left, n - pos)
                if out is not None:
                    out.append(data[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._state = _DATA_END
                continue
            if state == _DONE:
                break
            line, pos = self._read_line(data, pos)
            if line is None:
                pos = n
                break
            if state == _DATA_END:
                if line:
                    raise ChunkedError("chunk data longer than its size")
                self._state = _SIZE
            elif state == _SIZE:
                size_text = line.split(b";", 1)[0].strip(b" \t")
                if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                    raise ChunkedError(f"bad chunk size {size_text[:20]!r}")
                # More than 16 digits (leading zeros included) is refused too: parsers that
                # bound the digit count (h11: 20) would read the chunk line differently.
                size = int(size_text, 16) if len(size_text) <= 16 else MAX_CHUNK_SIZE + 1
                if size > MAX_CHUNK_SIZE:
                    raise ChunkedError(f"chunk size {size_text[:20]!r} too large")
                if size:
                    self._left = size
                    self._state = _DATA
                else:
                    self._state = _TRAILER
                    if forward is not None and kept >= 0:
                        forward.append(data[kept:pos])  # up to the end of the last-chunk line
                    kept = -1
            elif not line:  # _TRAILER: the empty line ends the body
                self._state = _DONE
                if forward is not None:
                    forward.append(b"\r\n")
        if forward is not None and kept >= 0 and pos > kept:
            forward.append(data[kept:pos])
        return pos

    def _read_line(self, data: bytes, pos: int) -> tuple[bytes | None, int]:
        """The next complete line (without CRLF) and the position after it, or (None, -1)."""
        partial = self._line
        if partial.endswith(b"\r") and data[pos : pos + 1] == b"\n":  # CRLF split across reads
            self._line = b""
            return partial[:-1], pos + 1
        end = data.find(b"\r\n", pos)
        if end < 0:
            partial += data[pos:]
            if len(partial) > MAX_LINE:
                raise ChunkedError("chunk line too long")
            self._line = partial
            return None, -1
        line = partial + data[pos:end] if partial else data[pos:end]
        self._line = b""
        if len(line) > MAX_LINE:
            raise ChunkedError("chunk line too long")
        return line, end + 2
