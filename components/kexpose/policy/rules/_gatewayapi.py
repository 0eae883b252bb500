"""Reading Gateway API objects: which objects count, and their references with defaults applied.

The common definitions of ``policy-rules.md`` ("Gateway API and edge-authentication rules"),
written once so that every rule reads a reference the same way:

- a route is an ``HTTPRoute`` or ``GRPCRoute`` of group ``gateway.networking.k8s.io``, any
  version (a ``Gateway`` of another group, e.g. Istio's ``networking.istio.io`` one, is not ours);
- a parentRef with ``group`` omitted means ``gateway.networking.k8s.io``, with ``kind`` omitted
  ``Gateway``, with ``namespace`` omitted the route's namespace; only Gateway parents are read;
- a backendRef with ``group`` omitted or ``""`` and ``kind`` omitted or ``Service`` is a Service
  ref (namespace: the route's); only ``spec.rules[].backendRefs`` are read;
- a listener certificateRef with ``group`` omitted or ``""`` and ``kind`` omitted or ``Secret``
  is a Secret ref (namespace: the Gateway's).

The defaults are those of the Gateway API v1 CRDs (ParentReference, BackendObjectReference,
SecretObjectReference: https://gateway-api.sigs.k8s.io/reference/spec/).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kexpose.policy.rules._kube import Obj, as_int, as_map, as_seq, as_str, spec

__all__ = [
    "GROUP",
    "ROUTE_KINDS",
    "Listener",
    "ParentRef",
    "SecretRef",
    "ServiceRef",
    "gateway_parents",
    "hostnames",
    "in_group",
    "is_gateway",
    "is_route",
    "listeners",
    "secret_refs",
    "service_refs",
]

GROUP: Final = "gateway.networking.k8s.io"
ROUTE_KINDS: Final = frozenset({"HTTPRoute", "GRPCRoute"})
_GROUP_PREFIX: Final = GROUP + "/"


def in_group(obj: Obj) -> bool:
    return obj.api_version.startswith(_GROUP_PREFIX)


def is_gateway(obj: Obj) -> bool:
    return obj.kind == "Gateway" and in_group(obj)


def is_route(obj: Obj) -> bool:
    return obj.kind in ROUTE_KINDS and in_group(obj)


def hostnames(route: Obj) -> list[tuple[int, str]]:
    """(index, hostname) of each string entry of ``spec.hostnames``."""
    return [
        (i, h) for i, h in enumerate(as_seq(spec(route).get("hostnames"))) if isinstance(h, str)
    ]


@dataclass(frozen=True, slots=True)
class Listener:
    """One entry of a Gateway's ``spec.listeners``."""

    index: int
    name: str | None
    protocol: str | None
    port: int | None
    hostname: str | None
    raw: Mapping[str, Any]

    @property
    def field(self) -> str:
        return f"spec.listeners[{self.index}]"


def listeners(gateway: Obj) -> list[Listener]:
    found: list[Listener] = []
    for i, entry in enumerate(as_seq(spec(gateway).get("listeners"))):
        item = as_map(entry)
        found.append(
            Listener(
                i,
                as_str(item.get("name")),
                as_str(item.get("protocol")),
                as_int(item.get("port")),
                as_str(item.get("hostname")) or None,
                item,
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class ParentRef:
    """A route's parentRef to a Gateway, defaults applied."""

    field: str
    namespace: str
    name: str | None
    section: str | None
    port_set: bool
    """``port`` is written; ``port`` then holds it, or None when it is not a number."""
    port: int | None

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.namespace, self.name)


def gateway_parents(route: Obj) -> Iterator[ParentRef]:
    """The route's parentRefs of group ``gateway.networking.k8s.io`` and kind ``Gateway``."""
    for i, entry in enumerate(as_seq(spec(route).get("parentRefs"))):
        ref = as_map(entry)
        group = ref.get("group", GROUP)
        kind = ref.get("kind", "Gateway")
        if group != GROUP or kind != "Gateway":
            continue  # a ListenerSet, a Service (GAMMA mesh), another vendor's parent
        port = ref.get("port")
        yield ParentRef(
            f"spec.parentRefs[{i}]",
            as_str(ref.get("namespace")) or route.namespace,
            as_str(ref.get("name")) or None,
            as_str(ref.get("sectionName")),
            port is not None,
            as_int(port),
        )


@dataclass(frozen=True, slots=True)
class ServiceRef:
    """A route rule's backendRef to a Service, defaults applied."""

    field: str
    namespace: str
    name: str | None
    port_set: bool
    port: int | None

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.namespace, self.name)


def service_refs(route: Obj) -> Iterator[ServiceRef]:
    for j, rule in enumerate(as_seq(spec(route).get("rules"))):
        for k, entry in enumerate(as_seq(as_map(rule).get("backendRefs"))):
            ref = as_map(entry)
            if ref.get("group") not in (None, "") or ref.get("kind") not in (None, "Service"):
                continue  # another kind of backend (e.g. a ServiceImport) is not judged here
            port = ref.get("port")
            yield ServiceRef(
                f"spec.rules[{j}].backendRefs[{k}]",
                as_str(ref.get("namespace")) or route.namespace,
                as_str(ref.get("name")) or None,
                port is not None,
                as_int(port),
            )


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A listener's ``tls.certificateRefs`` entry naming a Secret, defaults applied."""

    field: str
    namespace: str
    name: str | None

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.namespace, self.name)


def secret_refs(gateway: Obj, listener: Listener) -> Iterator[SecretRef]:
    tls = as_map(listener.raw.get("tls"))
    for j, entry in enumerate(as_seq(tls.get("certificateRefs"))):
        ref = as_map(entry)
        if ref.get("group") not in (None, "") or ref.get("kind") not in (None, "Secret"):
            continue
        yield SecretRef(
            f"{listener.field}.tls.certificateRefs[{j}]",
            as_str(ref.get("namespace")) or gateway.namespace,
            as_str(ref.get("name")) or None,
        )
