"""``CORS`` (``HTTPCORSFilter``, gateway-api v1.6.3; the Fetch standard's CORS protocol).

- An origin is allowed when ``allowOrigins`` holds ``*``, the origin itself (scheme, host and
  port compared case-insensitively), or a pattern with a ``*`` for the host's leading labels
  (``https://*.bar.com`` allows ``https://www.bar.com`` and ``https://a.www.bar.com``, not
  ``https://bar.com``).
- A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is answered by
  the proxy: with the allow headers when the origin is allowed, without them otherwise (the
  browser then refuses). ``Access-Control-Allow-Origin`` echoes the origin (never ``*``, which
  would be refused with credentials); ``*`` in ``allowMethods`` or ``allowHeaders`` echoes what
  the preflight asked for. A browser sends a preflight without credentials (Fetch standard,
  "CORS-preflight fetch": credentials mode "omit"), so on a rule with edge auth it is answered
  before the auth mechanism, though after the allow-list (``dataplane._exchange``).
- An actual request from an allowed origin gets ``Access-Control-Allow-Origin`` (and
  ``-Credentials``, ``-Expose-Headers``) on its response. Every answer varies by ``Origin``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Cors", "cors_preflight_headers", "cors_response_headers", "origin_allowed"]

Header = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Cors:
    allow_origins: tuple[str, ...] = ()
    """Exact origins, ``*``, or patterns with one ``*`` for the host's leading labels."""
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int = 5
    allow_credentials: bool = False


def _split(origin: str) -> tuple[str, str] | None:
    scheme, sep, rest = origin.partition("://")
    return (scheme.lower(), rest.lower()) if sep and rest else None


def origin_allowed(cors: Cors, origin: str) -> bool:
    parts = _split(origin)
    if parts is None:
        return False
    scheme, authority = parts
    for pattern in cors.allow_origins:
        if pattern == "*":
            return True
        want = _split(pattern)
        if want is None or want[0] != scheme:
            continue
        if want[1] == authority:
            return True
        if want[1].startswith("*.") and authority.endswith(want[1][1:]):
            return True
    return False


def _listed(values: tuple[str, ...], asked: str) -> str:
    return asked if "*" in values else ", ".join(values)


def cors_preflight_headers(
    cors: Cors, origin: str, method: str, request_headers: str
) -> tuple[Header, ...]:
    """The answer's headers to a preflight from ``origin`` (only ``Vary`` if not allowed)."""
    if not origin_allowed(cors, origin):
        return (("vary", "origin"),)
    out = [("access-control-allow-origin", origin)]
    if cors.allow_methods:
        out.append(("access-control-allow-methods", _listed(cors.allow_methods, method)))
    if cors.allow_headers:
        out.append(("access-control-allow-headers", _listed(cors.allow_headers, request_headers)))
    if cors.expose_headers:
        out.append(("access-control-expose-headers", ", ".join(cors.expose_headers)))
    out.append(("access-control-max-age", str(cors.max_age)))
    if cors.allow_credentials:
        out.append(("access-control-allow-credentials", "true"))
    out.append(("vary", "origin"))
    return tuple(out)


def cors_response_headers(cors: Cors, origin: str) -> tuple[Header, ...]:
    """Headers added to the response of an actual request from ``origin``."""
    if not origin_allowed(cors, origin):
        return (("vary", "origin"),)
    out = [("access-control-allow-origin", origin)]
    if cors.allow_credentials:
        out.append(("access-control-allow-credentials", "true"))
    if cors.expose_headers:
        out.append(("access-control-expose-headers", ", ".join(cors.expose_headers)))
    out.append(("vary", "origin"))
    return tuple(out)
