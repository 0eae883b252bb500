"""Forward authentication (nginx ``auth_request``): the subrequest, and what its answer means.

Rules (edge-auth.md, "Forward auth"; ingress-nginx ``auth-url``, Traefik ``forwardAuth``):

- The subrequest is a ``GET`` of the auth URL's path and query as written, with the client's
  headers except body framing (``Content-Length``, ``Transfer-Encoding``) and hop-by-hop ones
  (already gone from a planned head), no body, and ``X-Forwarded-Method``, ``-Proto``,
  ``-Host``, ``-Uri`` (the original target), ``-For`` and ``X-Original-URL``. Headers of those
  names the client sent are replaced, never passed on: they are what the auth service trusts.
  ``Host`` is the auth service's own (ingress-nginx's auth location sets it so), the client's
  is in ``X-Forwarded-Host``.
- 2xx: allowed; the configured ``auth-response-headers`` are copied onto the upstream request,
  after removing any the client sent under those names (also when the answer lacks them).
- 401 or 403: that status to the client with the answer's body and its ``WWW-Authenticate``,
  ``Location`` and ``Set-Cookie``; a 401 becomes a 302 to ``auth-signin`` with
  ``rd=<original URL>`` when that is set.
- Anything else: 500 ("any other response code returned by the subrequest is considered an
  error", nginx). No answer at all: 503 (the data plane decides that one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import quote

from kexpose.proxy.filters._headers import HeaderModifier

__all__ = [
    "DEFAULT_TIMEOUT",
    "Denial",
    "ForwardAuth",
    "forward_outcome",
    "original_url",
    "signin_location",
    "subrequest_head",
]

#: Seconds the auth service has to answer (``kexpose.dev/auth-timeout`` overrides it).
DEFAULT_TIMEOUT: Final = 5.0

#: Client headers never passed to the auth service: framing (and ``Expect``: the subrequest has
#: no body to continue with), ``Host`` (replaced by the auth service's), and the ones we set.
_SUBREQUEST_DROP: Final = re.compile(
    rb"\r\n(?:content-length|transfer-encoding|expect|host"
    rb"|x-forwarded-(?:method|proto|host|uri|for)|x-original-url)[ \t]*:[^\r]*",
    re.IGNORECASE,
)
#: Headers of a 401/403 answer the client gets.
_DENIAL_HEADERS: Final = frozenset((b"www-authenticate", b"location", b"set-cookie"))


@dataclass(frozen=True, slots=True)
class ForwardAuth:
    url: str
    scheme: Literal["http", "https"]
    host: str
    """What to connect to (an IPv6 literal without brackets)."""
    port: int
    authority: str
    """The ``Host`` header of the subrequest."""
    target: str
    """Path and query as written; ``/`` when the URL has no path."""
    response_headers: tuple[str, ...] = ()
    """Lower-case names copied from a 2xx answer onto the upstream request."""
    signin: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    cache_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Denial:
    """An answer the client gets instead of the backend's."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes | None = None
    """None: the proxy's own short text body."""


def original_url(*, scheme: bytes, host: bytes, target: bytes) -> bytes:
    return b"%b://%b%b" % (scheme, host, target)


def subrequest_head(
    auth: ForwardAuth,
    *,
    method: bytes,
    target: bytes,
    host: bytes,
    scheme: bytes,
    fields: bytes,
    client: bytes,
) -> bytes:
    """The complete head of the subrequest for one client request (``fields`` as planned)."""
    kept = _SUBREQUEST_DROP.sub(b"", fields)
    url = original_url(scheme=scheme, host=host, target=target)
    line = b"GET %b HTTP/1.1" % auth.target.encode("latin-1")
    return b"".join(
        (
            b"%b\r\nhost: %b" % (line, auth.authority.encode()),
            kept,
            b"\r\nx-forwarded-method: %b\r\nx-forwarded-proto: %b" % (method, scheme),
            b"\r\nx-forwarded-host: %b\r\nx-forwarded-uri: %b" % (host, target),
            b"\r\nx-forwarded-for: %b" % client,
            b"\r\nx-original-url: %b\r\n\r\n" % url,
        )
    )


def signin_location(signin: str, original: bytes) -> bytes:
    """``signin`` with ``rd=<original URL>`` (URL-encoded) added to its query."""
    sep = "&" if "?" in signin else "?"
    return f"{signin}{sep}rd={quote(original.decode('latin-1'), safe='')}".encode("latin-1")


def forward_outcome(
    auth: ForwardAuth,
    status: int,
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    *,
    original: bytes,
) -> HeaderModifier | Denial:
    """What the auth service's answer means: the upstream header changes, or a denial."""
    if 200 <= status < 300:
        wanted = auth.response_headers
        copied = tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in headers
            if name.lower().decode("latin-1") in wanted
        )
        return HeaderModifier(add=copied, remove=wanted)
    if status == 401 and auth.signin is not None:
        return Denial(302, ((b"location", signin_location(auth.signin, original)),))
    if status in (401, 403):
        passed = tuple((n.lower(), v) for n, v in headers if n.lower() in _DENIAL_HEADERS)
        return Denial(status, passed, body)
    return Denial(500)
