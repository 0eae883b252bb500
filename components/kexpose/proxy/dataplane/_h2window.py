"""The HTTP/2 send window: how much of a stream's queued body may go out now.

Both HTTP/2 sides (answers to clients in ``_http2_stream``, requests to h2c endpoints in
``_h2c_stream``) queue body pieces and send them as flow control allows: no more than the
smaller of the stream's and the connection's window (RFC 9113 §5.2, which ``h2`` tracks) and the
peer's SETTINGS_MAX_FRAME_SIZE (§4.2), so a large piece goes out in several DATA frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from h2.connection import H2Connection

__all__ = ["next_piece"]


def next_piece(h2: H2Connection, stream_id: int, out: list[bytes]) -> bytes | None:
    """Take from the front of ``out`` what one DATA frame on ``stream_id`` may carry now, or
    None when the window is spent (``out`` is left as it is). ``out`` must not be empty."""
    window = min(h2.local_flow_control_window(stream_id), h2.max_outbound_frame_size)
    if window <= 0:
        return None
    piece = out[0]
    if len(piece) > window:
        out[0] = piece[window:]
        return piece[:window]
    out.pop(0)
    return piece
