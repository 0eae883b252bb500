"""Host names as the Gateway API uses them: suffix wildcards, listener/route intersection, and
which of several matching names is the most specific.

Rules (``HTTPRouteSpec.hostnames`` and ``Listener.hostname``, gateway-api v1.6.3
``apis/v1/httproute_types.go`` and ``gateway_types.go``):

- A name is exact (``test.example.com``) or a wildcard, ``*.`` followed by a name. Unlike
  Ingress (``kexpose.hosts``), a Gateway API wildcard is a *suffix* match: ``*.example.com``
  matches ``test.example.com`` and ``foo.test.example.com`` but not ``example.com``.
- A route attaches to a listener only through the names they share: with both set, route names
  that do not match the listener's are ignored, and none matching means the route is not accepted
  there (``NoMatchingListenerHostname``). A listener without a hostname takes every route name;
  a route without hostnames takes the listener's (or matches any host when neither has one).
- Precedence among names that match one request: exact before wildcard, then the longer name
  ("the largest number of characters in a matching non-wildcard hostname", then "in a matching
  hostname"). The same order picks the listener a request belongs to when several listeners of a
  Gateway share a port (listener isolation: the most specific hostname wins).

Matching is case-insensitive; names reaching this module are already lower-case.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ANY_HOST", "hostname_matches", "intersect", "most_specific", "specificity"]

#: The name of a virtual host that matches every request (no hostname on route and listener).
ANY_HOST = ""


def hostname_matches(pattern: str, host: str) -> bool:
    """Whether ``pattern`` (exact, suffix wildcard, or ``ANY_HOST``) matches the exact ``host``."""
    if pattern in (ANY_HOST, host):
        return True
    return pattern.startswith("*.") and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1


def _within(narrow: str, wide: str) -> bool:
    """Whether every host ``narrow`` matches is also matched by ``wide`` (both may be wildcards)."""
    if wide == ANY_HOST or narrow == wide:
        return True
    if not wide.startswith("*."):
        return False
    if narrow.startswith("*."):
        # *.a.example.com lies within *.example.com: its suffix is a longer one.
        return narrow[1:].endswith(wide[1:]) and len(narrow) > len(wide)
    return hostname_matches(wide, narrow)


def intersect(listener: str | None, route: str) -> str | None:
    """The name a route hostname contributes on a listener, or None when they share no host.

    The narrower of the two: ``test.example.com`` on ``*.example.com`` stays itself; ``*.com`` on
    a listener for ``test.example.com`` becomes ``test.example.com``.
    """
    if listener is None or listener == ANY_HOST:
        return route
    if _within(route, listener):
        return route
    if _within(listener, route):
        return listener
    return None


def specificity(name: str) -> tuple[int, int]:
    """Sort key, most specific first: exact names, then wildcards; longer first within each."""
    if name == ANY_HOST:
        return (2, 0)
    return (1 if name.startswith("*.") else 0, -len(name))


def most_specific(names: Iterable[str], host: str) -> str | None:
    """Of ``names``, the most specific one that matches ``host``; None when none does."""
    best: str | None = None
    for name in names:
        if hostname_matches(name, host) and (best is None or specificity(name) < specificity(best)):
            best = name
    return best
