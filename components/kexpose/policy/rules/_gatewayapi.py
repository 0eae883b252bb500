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

Whether a route can attach to a listener is read in two strengths. :func:`can_attach` is the
specification's conservative reading for ``gw-no-plain-http`` (sectionName and port only).
:func:`admits` adds what the Gateway API itself requires of an attachment, for a rule that must
tell a listener that only serves redirects from one that would serve the route: the listener's
``hostname`` and the route's ``hostnames`` share a host (Gateway API wildcards are suffix
matches, ``HTTPRouteSpec.hostnames``), and the listener's ``allowedRoutes`` admit the route's
kind and namespace (``AllowedRoutes``: ``from`` defaults to ``Same``). A namespace selector is
read against the namespace's ``kubernetes.io/metadata.name`` label (the API server sets it on
every Namespace) and the labels of its Namespace object when the stack holds one; a label the
stack cannot tell counts as matching, so an unknown never hides an attachment.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kexpose.policy.rules._kube import Obj, as_int, as_map, as_seq, as_str, spec

__all__ = [
    "GROUP",
    "NAMESPACE_NAME_LABEL",
    "ROUTE_KINDS",
    "Listener",
    "ParentRef",
    "SecretRef",
    "ServiceRef",
    "admits",
    "can_attach",
    "gateway_parents",
    "hostnames",
    "hostnames_meet",
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
#: Set by the API server on every Namespace to its name (Kubernetes 1.22+).
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"


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


def can_attach(parent: ParentRef, listener: Listener) -> bool:
    """The specification's conservative "can attach": ``sectionName`` and ``port`` as written
    (``policy-rules.md``, ``gw-no-plain-http``); hostnames and ``allowedRoutes`` are ignored."""
    if parent.port_set and parent.port != listener.port:
        return False
    return parent.section is None or parent.section == listener.name


def _matches(pattern: str, host: str) -> bool:
    # A Gateway API wildcard is a suffix match: *.example.com matches a.b.example.com too,
    # never example.com itself.
    return pattern == host or (
        pattern.startswith("*.") and host.endswith(pattern[1:]) and len(host) >= len(pattern)
    )


def _meet(a: str, b: str) -> bool:
    if a.startswith("*.") and b.startswith("*."):
        return a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])
    return _matches(a, b) or _matches(b, a)


def hostnames_meet(listener: str | None, route: Sequence[str]) -> bool:
    """Whether a listener's ``hostname`` and a route's ``hostnames`` share a host: either one
    unset (or empty) takes every host; otherwise some pair must meet, lower-cased."""
    if not listener or not route:
        return True
    wanted = listener.lower()
    return any(_meet(wanted, name.lower()) for name in route)


_Known = bool | None


def _requirement(
    labels: Mapping[str, str], complete: bool, key: str, operator: str, values: Sequence[Any]
) -> _Known:
    """One selector requirement against a namespace's labels: True or False, or None when the
    stack cannot tell (``complete`` is False and the label is not known)."""
    present = key in labels
    if not present and not complete:
        return None
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    return None


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str], complete: bool) -> bool:
    """A label selector (matchLabels, matchExpressions); an unknown counts as a match."""
    found: list[_Known] = [
        _requirement(labels, complete, str(k), "In", [v])
        for k, v in as_map(selector.get("matchLabels")).items()
    ]
    for entry in as_seq(selector.get("matchExpressions")):
        item = as_map(entry)
        found.append(
            _requirement(
                labels,
                complete,
                as_str(item.get("key")) or "",
                as_str(item.get("operator")) or "",
                as_seq(item.get("values")),
            )
        )
    return False not in found


def admits(
    gateway: Obj,
    listener: Listener,
    route: Obj,
    *,
    namespace_labels: Mapping[str, Any] | None,
) -> bool:
    """Whether ``listener`` can take ``route`` (see the module doc): hostnames and
    ``allowedRoutes``, besides :func:`can_attach`'s sectionName and port, which the caller
    checks per parentRef. ``namespace_labels``: the labels of the route's Namespace object,
    None when the stack has none."""
    if not hostnames_meet(listener.hostname, [h for _, h in hostnames(route)]):
        return False
    allowed = as_map(listener.raw.get("allowedRoutes"))
    kinds = as_seq(allowed.get("kinds"))
    if kinds and not any(
        as_map(k).get("kind") == route.kind and as_map(k).get("group", GROUP) == GROUP
        for k in kinds
    ):
        return False
    namespaces = as_map(allowed.get("namespaces"))
    origin = as_str(namespaces.get("from")) or "Same"
    if origin == "Same":
        return route.namespace == gateway.namespace
    selector = namespaces.get("selector")
    if origin != "Selector" or selector is None:
        return True  # All, or a value the API server would refuse: assume it attaches
    labels = {str(k): v for k, v in as_map(namespace_labels).items() if isinstance(v, str)}
    labels[NAMESPACE_NAME_LABEL] = route.namespace
    return _selects(as_map(selector), labels, namespace_labels is not None)
