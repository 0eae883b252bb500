"""The backendRefs of one HTTPRoute or GRPCRoute rule: each weighed, resolved and given its own
filters, the same way for both kinds (gateway-api v1.6.3 ``HTTPBackendRef``, ``GRPCBackendRef``).

- ``weight`` is an int32 in 0..1000000, 1 when omitted (the CRDs' validation, which manifests
  read in static mode skip). Anything else (a JSON ``true`` too: Python's ``bool`` is an
  ``int``) makes the route not ``Accepted`` with ``UnsupportedValue``, as every value the proxy
  cannot use does.
- A reference that cannot be resolved, or whose own filters cannot be, keeps its weight as the
  rule's ``invalid_weight``: that share of requests is answered by the rule itself ("the
  proportion of requests that would otherwise have been routed to an invalid backend MUST
  receive an HTTP 500 status code"; a GRPCRoute's: "an ``UNAVAILABLE`` status"), and the
  reason goes to ``ResolvedRefs``.
- A rule without backendRefs, with only weights of 0, or with no usable backend at all is in
  error: every request it matches is answered by the rule (``RuleBackends.error``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, Protocol

from kexpose.proxy.filters import HeaderModifier
from kexpose.proxy.routes._backends import Backend
from kexpose.proxy.routes._gwtable import WeightedBackend
from kexpose.proxy.routes._problem import RouteProblem
from kexpose.proxy.routes._raw import entries

__all__ = [
    "MAX_WEIGHT",
    "BackendFilterReader",
    "BackendFilters",
    "BackendResolution",
    "BackendResolver",
    "RuleBackends",
    "rule_backends",
]

#: ``BackendRef.weight``: "+kubebuilder:validation:Maximum=1000000".
MAX_WEIGHT: Final = 1_000_000

#: (backend, None) when usable, else (None, (reason, message)).
BackendResolution = tuple[Backend | None, tuple[str, str] | None]
#: Resolves one backendRef of the route (the caller knows the route's namespace and grants).
BackendResolver = Callable[[Mapping[str, Any]], BackendResolution]


class BackendFilters(Protocol):
    """What one backendRef's own ``filters`` come to."""

    @property
    def request_headers(self) -> HeaderModifier | None: ...
    @property
    def response_headers(self) -> HeaderModifier | None: ...
    @property
    def error(self) -> str | None:
        """Set when a filter cannot be resolved: the backend is then as good as invalid."""


#: Reads a backendRef's ``filters`` (given the list and where it is, for messages).
BackendFilterReader = Callable[[Sequence[Mapping[str, Any]], str], BackendFilters]


@dataclass(frozen=True, slots=True)
class RuleBackends:
    backends: tuple[WeightedBackend, ...]
    """The usable backends with a positive weight, in order."""
    invalid_weight: int
    """The summed weight of the references that cannot be used."""
    error: str | None
    """Set when no request of the rule can reach a backend."""


def _weight(ref: Mapping[str, Any], at: str) -> int:
    weight = ref.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise RouteProblem(
            "UnsupportedValue",
            f"{at}.weight: {weight!r} is not a whole number from 0 to {MAX_WEIGHT}",
        )
    return weight


def rule_backends(
    refs: Sequence[Mapping[str, Any]],
    where: str,
    *,
    route: str,
    resolve: BackendResolver,
    filters: BackendFilterReader,
    unresolved: list[tuple[str, str]],
    protocol: Literal["h2c"] | None = None,
) -> RuleBackends:
    """The rule's backends; ``unresolved`` gets the reason of each that cannot be resolved.

    ``where`` names the rule in messages, ``route`` (``namespace/name``) labels the backends;
    ``protocol`` overrides how the backends are spoken to (a GRPCRoute's: h2c).
    Raises ``RouteProblem`` for a weight the proxy cannot use.
    """
    backends: list[WeightedBackend] = []
    invalid_weight = 0
    for j, ref in enumerate(refs):
        at = f"{where}.backendRefs[{j}]"
        weight = _weight(ref, at)
        own = filters(entries(ref.get("filters")), at)
        backend, problem = resolve(ref)
        if backend is None:
            assert problem is not None
            unresolved.append(problem)
            invalid_weight += weight
        elif own.error is not None:
            invalid_weight += weight
        elif weight > 0:
            if protocol is not None and backend.protocol != protocol:
                backend = replace(backend, protocol=protocol)
            backends.append(
                WeightedBackend(backend, weight, own.request_headers, own.response_headers, route)
            )
    error = None
    if not refs:
        error = "the rule has no backendRefs"
    elif not backends and not invalid_weight:
        error = "every backendRef of the rule has weight 0"
    elif not backends:
        error = "no backendRef of the rule can be used"
    return RuleBackends(tuple(backends), invalid_weight, error)
