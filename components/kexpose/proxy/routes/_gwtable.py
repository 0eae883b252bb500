"""The Gateway API half of the route table: what each Gateway port serves, and its lookups.

One ``GatewayPort`` per (Gateway, port) with programmed listeners. A request on it picks
(lookups below, all pure):

1. the listener: of the port's listeners whose hostname matches the Host, the most specific
   (``_gwhosts``; listener isolation: a request for ``foo.example.com`` on a Gateway with
   listeners ``*.example.com`` and ``foo.example.com`` belongs to the second only);
2. the virtual host: of that listener's route hostnames matching the Host, the most specific;
3. the rule: the first, in precedence order (``_matches``), whose match the request satisfies.
   No rule: 404.

A rule carries everything the data plane does with a matched request: the weighted backends
(a share of the weight may belong to invalid backends, answered 500 as the spec requires), the
filters, timeouts and retries. Invalid rules are never dropped silently: they answer 500 and
their route's status says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from kexpose.proxy.filters import Cors, EdgeAuth, HeaderModifier, Redirect, Rewrite
from kexpose.proxy.routes._backends import Backend
from kexpose.proxy.routes._certificates import CertificateMap
from kexpose.proxy.routes._frontend import ClientValidation
from kexpose.proxy.routes._gwhosts import ANY_HOST, most_specific
from kexpose.proxy.routes._matches import RequestMatch, RequestView

__all__ = [
    "Cors",
    "GatewayHost",
    "GatewayListener",
    "GatewayPort",
    "GatewayRule",
    "Mirror",
    "Retry",
    "WeightedBackend",
]

Protocol = Literal["HTTP", "HTTPS"]


@dataclass(frozen=True, slots=True)
class WeightedBackend:
    backend: Backend
    weight: int
    request_headers: HeaderModifier | None = None
    response_headers: HeaderModifier | None = None
    ingress: str = ""
    """``namespace/name`` of the HTTPRoute: with ``backend``, what the data plane's metrics
    and access log label a request with (the same two fields as an Ingress ``Route``)."""


@dataclass(frozen=True, slots=True)
class Mirror:
    backend: Backend
    percent: float = 100.0
    """Share of requests mirrored, 0-100 (``percent`` or ``fraction`` in the filter)."""


@dataclass(frozen=True, slots=True)
class Retry:
    codes: tuple[int, ...] = ()
    attempts: int = 1
    """Retries after the first try (``HTTPRouteRetry.attempts``)."""
    backoff: float | None = None
    """Seconds between tries."""


@dataclass(frozen=True, slots=True)
class GatewayRule:
    """One match of one rule of one route, with the action of that rule."""

    route: str
    """``namespace/name`` of the HTTPRoute (the ``ingress`` label of metrics and logs)."""
    rule: int
    """The rule's index in the route."""
    match: RequestMatch
    backends: tuple[WeightedBackend, ...] = ()
    """Backends with a positive weight."""
    invalid_weight: int = 0
    """Weight of the rule's invalid backends: that share of requests is answered by the rule
    (``failure_status``)."""
    error: str | None = None
    """Set: every request is answered by the rule (``failure_status``): an unresolvable filter,
    no valid backend ..."""
    request_headers: HeaderModifier | None = None
    response_headers: HeaderModifier | None = None
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None
    mirrors: tuple[Mirror, ...] = ()
    cors: Cors | None = None
    request_timeout: float | None = None
    backend_timeout: float | None = None
    retry: Retry | None = None
    name: str | None = None
    """``HTTPRouteRule.name`` (``GRPCRouteRule.name``)."""
    grpc: bool = False
    """A GRPCRoute rule: what the rule answers itself (``error``, the ``invalid_weight`` share)
    is a gRPC ``UNAVAILABLE`` status in trailers-only form, not an HTTP 500
    (``failure_status``)."""
    auth: EdgeAuth | None = None
    """Edge authentication from an ``ExtensionRef`` to a kexpose ``EdgeAuth`` (``_auth``)."""

    @property
    def failure_status(self) -> int:
        """The status of what the rule answers itself (``error``, the ``invalid_weight`` share).

        An HTTPRoute rule's is 500: "the proportion of requests that would otherwise have been
        routed to an invalid backend MUST receive an HTTP 500 status code"
        (``HTTPRouteRule.backendRefs``). A GRPCRoute rule's is 503, which the data plane
        answers a gRPC call with as ``UNAVAILABLE`` (14) in a trailers-only response
        (grpc/doc/http-grpc-status-mapping.md), where 500 would read as ``UNKNOWN``: "*all*
        traffic which matches this rule MUST receive an ``UNAVAILABLE`` status", and so must
        an invalid backend's share (``GRPCRouteRule.backendRefs``). An unresolvable filter
        gets "a HTTP error response" (``GRPCRouteFilter``), which names no gRPC status: the
        same ``UNAVAILABLE``, so that one rule fails one way.
        """
        return 503 if self.grpc else 500

    @property
    def total_weight(self) -> int:
        return sum(b.weight for b in self.backends) + self.invalid_weight


@dataclass(frozen=True, slots=True)
class GatewayHost:
    """The rules that apply to one hostname on one listener, in precedence order."""

    name: str
    rules: tuple[GatewayRule, ...]
    needs_headers: bool = False
    """Some rule matches on headers: the data plane must parse them for this host."""
    needs_query: bool = False

    def select(self, request: RequestView) -> GatewayRule | None:
        for rule in self.rules:
            if rule.match.matches(request):
                return rule
        return None


@dataclass(frozen=True, slots=True)
class GatewayListener:
    gateway: str
    """``namespace/name``."""
    name: str
    port: int
    protocol: Protocol
    hostname: str | None
    hosts: Mapping[str, GatewayHost] = field(default_factory=dict)

    def host(self, host: str) -> GatewayHost | None:
        found = self.hosts.get(host)
        if found is not None:
            return found
        name = most_specific(self.hosts, host)
        return self.hosts[name] if name is not None else None


@dataclass(frozen=True, slots=True)
class GatewayPort:
    """What one listening socket of a Gateway serves."""

    gateway: str
    addresses: tuple[str, ...]
    port: int
    protocol: Protocol
    listeners: tuple[GatewayListener, ...]
    certificates: CertificateMap = field(default_factory=CertificateMap)
    """For HTTPS: listener hostnames -> certificate (SNI)."""
    default_certificate: str | None = None
    """Fingerprint of the certificate of a listener without hostname, if any."""
    client_validation: ClientValidation | None = None
    """For HTTPS: how handshakes check client certificates (``spec.tls.frontend``)."""
    by_hostname: Mapping[str, GatewayListener] = field(init=False, repr=False, compare=False)
    """``listeners`` by hostname (``ANY_HOST`` for none), made once: looked up per request."""

    def __post_init__(self) -> None:
        names = {(lst.hostname or ANY_HOST): lst for lst in self.listeners}
        object.__setattr__(self, "by_hostname", names)

    def listener(self, host: str) -> GatewayListener | None:
        """The most specific listener whose hostname matches ``host`` (normalised)."""
        names = self.by_hostname
        found = names.get(host)
        if found is not None:
            return found
        name = most_specific(names, host)
        return names[name] if name is not None else None
