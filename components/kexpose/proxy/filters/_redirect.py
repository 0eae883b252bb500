"""``RequestRedirect`` and ``URLRewrite`` (``HTTPRequestRedirectFilter``, ``HTTPURLRewriteFilter``).

Redirect (the spec's field docs):
- ``scheme`` unset keeps the request's; ``hostname`` unset keeps the request's Host (without its
  port); ``path`` unset keeps the path; the query string is kept.
- ``port`` unset: the well-known port of ``scheme`` when the filter sets one (http 80, https
  443), else the listener's port. The port is left out of ``Location`` when it is the scheme's
  well-known port ("Implementations SHOULD NOT add the port number ... http and port 80, https
  and port 443").
- ``statusCode`` defaults to 302.
Rewrite: ``hostname`` replaces the Host sent to the backend; ``path`` as for redirects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from kexpose.proxy.filters._paths import PathModifier, replace_path

__all__ = ["Redirect", "Rewrite", "redirect_location"]

_WELL_KNOWN: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Redirect:
    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    path: PathModifier | None = None
    status: int = 302


@dataclass(frozen=True, slots=True)
class Rewrite:
    hostname: str | None = None
    path: PathModifier | None = None


def redirect_location(
    redirect: Redirect,
    *,
    scheme: str,
    host: str,
    listener_port: int,
    path: str,
    query: str,
    matched_prefix: str | None,
) -> str:
    """The ``Location`` of a redirect for a request (``host`` without port, ``query`` without
    the ``?``)."""
    new_scheme = redirect.scheme or scheme
    if redirect.port is not None:
        port = redirect.port
    elif redirect.scheme is not None:
        port = _WELL_KNOWN.get(redirect.scheme, listener_port)
    else:
        port = listener_port
    authority = redirect.hostname or host
    if ":" in authority and not authority.startswith("["):
        authority = f"[{authority}]"  # an IPv6 literal (RFC 3986 §3.2.2)
    if _WELL_KNOWN.get(new_scheme) != port:
        authority += f":{port}"
    new_path = path if redirect.path is None else replace_path(path, redirect.path, matched_prefix)
    return f"{new_scheme}://{authority}{new_path}" + (f"?{query}" if query else "")
