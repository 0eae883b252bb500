"""Host names as Ingress uses them: validation, normalisation and one-label wildcard matching.

Shared by the exposure model (validation), the policy rules (TLS coverage) and the proxy (routing
and SNI), so that all three agree on what ``*.example.com`` covers.

Rules, from the Ingress API reference (IngressRule.host,
https://kubernetes.io/docs/reference/kubernetes-api/service-resources/ingress-v1/):
- a host is a fully qualified domain name as defined by RFC 3986 / RFC 1123 labels, without a
  port and never an IP address;
- a wildcard host is ``*.`` followed by such a name; ``*`` stands for exactly one DNS label, so
  ``*.foo.com`` matches ``bar.foo.com`` but neither ``foo.com`` nor ``baz.bar.foo.com``;
- matching is case-insensitive (RFC 4343).
"""

from __future__ import annotations

import ipaddress
import re

__all__ = [
    "covers",
    "host_error",
    "is_wildcard",
    "normalize_host",
    "wildcard_of",
]

# One RFC 1123 label: letters, digits and inner hyphens, 1-63 characters. Kubernetes validates
# Ingress hosts as lower-case DNS-1123 subdomains (IsDNS1123Subdomain), so upper case is refused
# in the model and folded everywhere else.
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_MAX_HOST = 253


def normalize_host(host: str) -> str:
    """Fold a Host header or SNI name to the form routes are keyed by.

    Lower-cases it, drops a ``:port`` suffix (also from a bracketed IPv6 literal) and one trailing
    dot, as ingress-nginx does.
    """
    h = host.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[: end + 1] if end != -1 else h
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    if h.endswith("."):
        h = h[:-1]
    return h


def is_wildcard(host: str) -> bool:
    return host.startswith("*.")


def wildcard_of(host: str) -> str | None:
    """The one-label wildcard that would cover ``host`` (``a.b.c`` -> ``*.b.c``), if any."""
    _, dot, rest = host.partition(".")
    return f"*.{rest}" if dot and rest else None


def covers(pattern: str, host: str) -> bool:
    """Whether ``pattern`` (exact or ``*.``-wildcard) covers ``host``.

    ``host`` may itself be a wildcard: ``*.a.com`` covers ``*.a.com`` (the same set), but
    nothing else covers a wildcard.
    """
    p = pattern.lower().rstrip(".")
    h = host.lower().rstrip(".")
    if p == h:
        return True
    if is_wildcard(p) and not is_wildcard(h):
        return wildcard_of(h) == p
    return False


def host_error(host: str) -> str | None:
    """Why ``host`` is not a valid Ingress host, or None when it is.

    Valid: a lower-case RFC 1123 DNS name of at most 253 characters, optionally with one leading
    ``*.`` label; not an IP address; no port.
    """
    if not host:
        return "is empty"
    if len(host) > _MAX_HOST:
        return f"is {len(host)} characters long (at most {_MAX_HOST})"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return "is an IP address (Ingress hosts must be DNS names)"
    if ":" in host:
        return "contains ':' (a port is not allowed in an Ingress host)"
    name = host[2:] if is_wildcard(host) else host
    if "*" in name:
        return "has '*' other than as the whole first label ('*.example.com')"
    labels = name.split(".")
    for label in labels:
        if not _LABEL.match(label):
            return (
                f"has the label {label!r}, which is not an RFC 1123 label "
                "(lower-case letters, digits and '-', 1-63 characters, not starting or "
                "ending with '-')"
            )
    if is_wildcard(host) and len(labels) < 2:
        return "is a wildcard over a single label ('*.com'); use at least '*.example.com'"
    return None
