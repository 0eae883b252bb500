"""Reading raw Kubernetes JSON defensively, and the per-object view the rules receive.

Objects arrive as plain dicts (offline checker, components) or as pulumi_policy's read-only
proxies (the CrossGuard pack), so everything here speaks ``Mapping``/``Sequence`` and never copies
a whole object: a proxy raises when a value unknown at preview is *touched*, and a rule must touch
only the fields it judges (see ``policy-anchors.md``, "Unknowns at preview").

A malformed manifest (a list where a mapping belongs, a number where a string does) must never
crash a rule: the accessors fall back to empty values, and the offline checker leaves schema
validation to the API server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from kexpose.environment import Environment
from kexpose.policy.config import PolicyConfig

__all__ = [
    "EMPTY",
    "Backend",
    "Context",
    "Finding",
    "Obj",
    "annotation_field",
    "annotations_of",
    "as_int",
    "as_map",
    "as_seq",
    "as_str",
    "backends",
    "data_field",
    "effective_class",
    "has_key",
    "is_false",
    "is_true",
    "labels",
    "spec",
]

EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})

# Go's strconv.ParseBool, which ingress-nginx (annotation and ConfigMap parsing) and ingress-gce
# (kubernetes.io/ingress.allow-http) use: "0" turns ssl-redirect off just as "false" does.
_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})

CLASS_ANNOTATION: Final = "kubernetes.io/ingress.class"


def as_map(value: Any) -> Mapping[str, Any]:
    if type(value) is dict or isinstance(value, Mapping):
        return value
    return EMPTY


def as_seq(value: Any) -> Sequence[Any]:
    if type(value) is list or (isinstance(value, Sequence) and not isinstance(value, str | bytes)):
        return value
    return ()


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    """An integer, also when it arrives as an integral float: Pulumi marshals properties as
    protobuf Struct values, whose only number type is double, so a port 80 reaches the pack as
    80.0."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def is_true(value: Any) -> bool:
    """A YAML boolean, or a string Go's ParseBool reads as true."""
    return value is True or (isinstance(value, str) and value in _TRUE)


def is_false(value: Any) -> bool:
    """A YAML boolean, or a string Go's ParseBool reads as false."""
    return value is False or (isinstance(value, str) and value in _FALSE)


def has_key(mapping: Mapping[str, Any], key: str) -> bool:
    """Key presence without reading the value: a generated certificate is unknown at preview,
    yet the Secret that will hold it is already known to have the key."""
    if type(mapping) is dict:
        return key in mapping
    return any(k == key for k in mapping)


def annotation_field(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def data_field(key: str) -> str:
    return f'data["{key}"]'


@dataclass(frozen=True, slots=True)
class Obj:
    """One Kubernetes object as the rules see it: identity read once, the raw manifest beside it."""

    index: int
    kind: str
    api_version: str
    namespace: str
    name: str
    raw: Mapping[str, Any]

    @property
    def ref(self) -> str:
        """``Kind/namespace/name``, the form every violation names its resource in."""
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def spec(obj: Obj) -> Mapping[str, Any]:
    return as_map(obj.raw.get("spec"))


def annotations_of(obj: Obj) -> Mapping[str, Any]:
    return as_map(as_map(obj.raw.get("metadata")).get("annotations"))


def labels(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_map(as_map(raw.get("metadata")).get("labels"))


def effective_class(obj: Obj) -> str | None:
    """``spec.ingressClassName``, else the deprecated annotation; None when neither is set.

    Kubernetes: "the ingressClassName field ... should be used instead of the annotation", which
    controllers still honour when the field is absent
    (https://kubernetes.io/docs/concepts/services-networking/ingress/#deprecated-annotation).
    """
    field = as_str(spec(obj).get("ingressClassName"))
    if field:
        return field
    return as_str(annotations_of(obj).get(CLASS_ANNOTATION)) or None


@dataclass(frozen=True, slots=True)
class Backend:
    """A Service backend of an Ingress: which Service and port, and where each is written."""

    service: str | None
    port_number: int | None
    port_name: str | None
    service_field: str
    port_field: str


def _backend(raw: Mapping[str, Any], prefix: str) -> Backend | None:
    service = raw.get("service")
    if service is not None:  # networking.k8s.io/v1: {service: {name, port: {number | name}}}
        svc = as_map(service)
        port = as_map(svc.get("port"))
        number = port.get("number")
        if number is not None:
            return Backend(
                as_str(svc.get("name")),
                as_int(number),
                None,
                f"{prefix}.service.name",
                f"{prefix}.service.port.number",
            )
        return Backend(
            as_str(svc.get("name")),
            None,
            as_str(port.get("name")),
            f"{prefix}.service.name",
            f"{prefix}.service.port.name",
        )
    if "serviceName" in raw:  # v1beta1: {serviceName, servicePort: int | string}
        port_value = raw.get("servicePort")
        return Backend(
            as_str(raw.get("serviceName")),
            as_int(port_value),
            as_str(port_value),
            f"{prefix}.serviceName",
            f"{prefix}.servicePort",
        )
    return None  # a `resource` backend (e.g. a storage bucket) names no Service


def backends(obj: Obj) -> Iterator[Backend]:
    """Every Service backend of an Ingress: the default one (v1 and v1beta1) and each path's."""
    s = spec(obj)
    for key in ("defaultBackend", "backend"):
        value = s.get(key)
        if value is not None:
            found = _backend(as_map(value), f"spec.{key}")
            if found is not None:
                yield found
    for i, rule in enumerate(as_seq(s.get("rules"))):
        http = as_map(as_map(rule).get("http"))
        for j, path in enumerate(as_seq(http.get("paths"))):
            found = _backend(
                as_map(as_map(path).get("backend")), f"spec.rules[{i}].http.paths[{j}].backend"
            )
            if found is not None:
                yield found


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a rule may read besides the objects: where it runs, how it is tuned, when."""

    environment: Environment
    config: PolicyConfig
    now: dt.datetime


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a rule found: the object, the field path, what is wrong, and how to fix it.

    ``message`` is a sentence about the field; the engine prefixes the resource and field.
    """

    obj: Obj
    field: str
    message: str
    fix: str


Scope = Literal["R", "S"]
