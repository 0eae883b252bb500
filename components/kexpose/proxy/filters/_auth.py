"""A route's edge authentication: the allow-list, the exempt paths and one mechanism.

Order (edge-auth.md, "Where it applies"): the source-range allow-list first (403), then
authentication (401/403/500), then the backend. A configuration the route core could not
accept keeps ``problem`` set: every request is answered 503, never let through. A CORS
preflight that an HTTPRoute rule's CORS filter takes skips the mechanism alone (browsers send
it without credentials; the filter answers it and the backend never sees it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from kexpose.proxy.filters._basic import BasicAuth
from kexpose.proxy.filters._forward import ForwardAuth
from kexpose.proxy.filters._jwt import JwtAuth
from kexpose.proxy.filters._sources import Network

__all__ = ["DEFAULT_REALM", "EdgeAuth", "Mechanism"]

#: ``kexpose.dev/auth-realm`` when unset.
DEFAULT_REALM: Final = "kexpose"

Mechanism = BasicAuth | ForwardAuth | JwtAuth


@dataclass(frozen=True, slots=True)
class EdgeAuth:
    source: str
    """Where the settings come from (``Ingress ns/name``), for the log."""
    ranges: tuple[Network, ...] = ()
    """Allowed client networks; empty: every client."""
    exempt: tuple[str, ...] = ()
    """Path prefixes that skip authentication, without a trailing ``/``."""
    mechanism: Mechanism | None = None
    problem: str = ""
    """Set: the configuration is invalid and every request is answered 503 (fail closed)."""
