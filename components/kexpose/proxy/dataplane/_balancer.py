"""Choosing an endpoint for each request: round-robin (default) or least-request.

ingress-nginx balances round-robin by default ("bootstrapped with some load balancing policy",
says the Ingress concept page, without naming one). Least-request uses the "power of two
choices": two random endpoints, the one with fewer requests in flight wins; it adapts to slow
endpoints without the herd effect of always picking the global minimum.

Balancer state lives across route tables: when a table is swapped, a backend whose endpoints
did not change keeps its balancer (and so its position and in-flight counts).
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from kexpose.proxy.routes import Backend, Endpoint
from kexpose.proxy.settings import Balance

__all__ = ["Balancer", "refresh_balancers"]


class Balancer:
    __slots__ = ("_inflight", "_least", "_next", "endpoints", "tracks")

    def __init__(self, endpoints: tuple[Endpoint, ...], *, policy: Balance) -> None:
        self.endpoints = endpoints
        self._least = policy == "least_request" and len(endpoints) > 1
        self.tracks = self._least
        """Whether ``started``/``finished`` matter (only least-request counts in-flight)."""
        self._next = random.randrange(len(endpoints)) if endpoints else 0  # noqa: S311 - spreading load, not security
        self._inflight: dict[Endpoint, int] = dict.fromkeys(endpoints, 0)

    def pick(self, tried: tuple[Endpoint, ...] = ()) -> Endpoint | None:
        """The next endpoint, skipping those already ``tried`` for this request."""
        eps = self.endpoints
        n = len(eps)
        if self._least and not tried:
            a, b = random.sample(eps, 2)
            inflight = self._inflight
            return a if inflight[a] <= inflight[b] else b
        for _ in range(n):
            i = self._next
            self._next = i + 1 if i + 1 < n else 0
            ep = eps[i]
            if ep not in tried:
                return ep
        return None

    def started(self, endpoint: Endpoint) -> None:
        if self._least:
            self._inflight[endpoint] = self._inflight.get(endpoint, 0) + 1

    def finished(self, endpoint: Endpoint) -> None:
        if self._least and self._inflight.get(endpoint, 0) > 0:
            self._inflight[endpoint] -= 1


def refresh_balancers(
    old: Mapping[str, Balancer], backends: Mapping[str, Backend], *, policy: Balance
) -> dict[str, Balancer]:
    fresh: dict[str, Balancer] = {}
    for key, backend in backends.items():
        if not backend.endpoints:
            continue
        kept = old.get(key)
        if kept is not None and kept.endpoints == backend.endpoints:
            fresh[key] = kept
        else:
            fresh[key] = Balancer(backend.endpoints, policy=policy)
    return fresh
