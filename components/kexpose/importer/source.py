"""Reading what a cluster's exposure is made of: Ingresses of every version, and Services.

Ingress was served as ``extensions/v1beta1`` (removed in Kubernetes 1.22),
``networking.k8s.io/v1beta1`` (removed in 1.22) and ``networking.k8s.io/v1``. The readers bring
all three to one shape (Kubernetes API reference, "Ingress v1" and the 1.22 deprecation guide,
https://kubernetes.io/docs/reference/using-api/deprecation-guide/#ingress-v122):

- v1beta1 backends are ``serviceName``/``servicePort`` (a number or a port name); v1 backends
  are ``service.name`` and ``service.port.number`` or ``service.port.name``;
- v1beta1's default backend is ``spec.backend``; v1's is ``spec.defaultBackend``;
- v1beta1 ``pathType`` was optional and defaulted to ``ImplementationSpecific``; v1 requires it;
- the class is ``spec.ingressClassName``, or else the deprecated ``kubernetes.io/ingress.class``
  annotation (which v1beta1-era manifests use).

Pure: objects (already parsed YAML) in, frozen dataclasses out. Anything unusable raises
:class:`InputError` naming the file, the object, the field, the value given and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from kexpose.errors import InputError
from kexpose.hosts import host_error

__all__ = [
    "INGRESS_VERSIONS",
    "LEGACY_CLASS_ANNOTATION",
    "BackendRef",
    "HostRule",
    "Origin",
    "PathRule",
    "Source",
    "SourceIngress",
    "SourcePort",
    "SourceService",
    "TlsEntry",
    "read_objects",
]

INGRESS_VERSIONS: Final = (
    "extensions/v1beta1",
    "networking.k8s.io/v1beta1",
    "networking.k8s.io/v1",
)
LEGACY_CLASS_ANNOTATION: Final = "kubernetes.io/ingress.class"
PathType = Literal["Exact", "Prefix", "ImplementationSpecific"]
_PATH_TYPES: Final = ("Exact", "Prefix", "ImplementationSpecific")
# The API server refuses these in Exact and Prefix paths (networking validation,
# validateIngressHTTPIngressPath); such an Ingress cannot exist, so it is bad input.
_FORBIDDEN_IN_PATH: Final = ("//", "/./", "/../", "%2f", "%2F")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an object was read: a file (``<stdin>``, a cluster) and its 1-based line."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass(frozen=True, slots=True)
class BackendRef:
    """A Service backend: a Service port number or name (never the targetPort)."""

    service: str
    port: int | str
    field: str
    """Where it is written, e.g. ``spec.rules[0].http.paths[1].backend``."""


@dataclass(frozen=True, slots=True)
class PathRule:
    path: str
    path_type: PathType
    backend: BackendRef | None
    """None for a ``resource`` backend (not a Service)."""
    field: str


@dataclass(frozen=True, slots=True)
class HostRule:
    host: str | None
    paths: tuple[PathRule, ...]
    field: str


@dataclass(frozen=True, slots=True)
class TlsEntry:
    hosts: tuple[str, ...]
    secret_name: str | None
    field: str


@dataclass(frozen=True, slots=True)
class SourceIngress:
    namespace: str
    name: str
    api_version: str
    class_field: str | None
    annotations: Mapping[str, str]
    rules: tuple[HostRule, ...]
    default_backend: BackendRef | None
    tls: tuple[TlsEntry, ...]
    origin: Origin

    @property
    def ref(self) -> str:
        return f"Ingress/{self.namespace}/{self.name}"

    @property
    def class_name(self) -> str | None:
        """The effective class: the field, else the legacy annotation."""
        return self.class_field or self.annotations.get(LEGACY_CLASS_ANNOTATION) or None

    def backends(self) -> list[BackendRef]:
        out = [p.backend for r in self.rules for p in r.paths if p.backend is not None]
        if self.default_backend is not None:
            out.append(self.default_backend)
        return out

    def hosts(self) -> tuple[str, ...]:
        return tuple(r.host for r in self.rules if r.host is not None)


@dataclass(frozen=True, slots=True)
class SourcePort:
    name: str | None
    port: int
    target_port: int | str | None
    protocol: str
    node_port: int | None


@dataclass(frozen=True, slots=True)
class SourceService:
    namespace: str
    name: str
    type: str
    selector: Mapping[str, str] | None
    ports: tuple[SourcePort, ...]
    origin: Origin

    @property
    def ref(self) -> str:
        return f"Service/{self.namespace}/{self.name}"

    def port_for(self, ref: int | str) -> SourcePort | None:
        """The port an Ingress backend names: by ``port`` number or by port name."""
        if isinstance(ref, int):
            return next((p for p in self.ports if p.port == ref), None)
        return next((p for p in self.ports if p.name == ref), None)


@dataclass(frozen=True, slots=True)
class Source:
    """Everything read: Ingresses and Services in input order; other kinds are counted."""

    ingresses: tuple[SourceIngress, ...]
    services: Mapping[tuple[str, str], SourceService]
    ignored: int


class _Reader:
    """Reads one object; every complaint names the file, the object and the field."""

    def __init__(self, obj: Mapping[str, Any], origin: Origin) -> None:
        self.obj = obj
        self.origin = origin
        meta = obj.get("metadata") or {}
        self.name = str(meta.get("name") or "")
        self.namespace = str(meta.get("namespace") or "default")
        self.label = f"{obj.get('kind')}/{self.namespace}/{self.name}"

    def fail(self, field: str, given: object, allowed: str) -> InputError:
        return InputError(
            f"{self.origin}: {self.label} {field}: {given!r} is not usable; {allowed}",
            file=self.origin.file,
            line=self.origin.line,
        )

    def mapping(self, value: object, field: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(field, value, "expected a mapping")
        return value

    def sequence(self, value: object, field: str) -> Sequence[Any]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(field, value, "expected a list")
        return value

    def string(self, value: object, field: str, *, required: bool = True) -> str | None:
        if value is None or value == "":
            if required:
                raise self.fail(field, value, "a non-empty string is required")
            return None
        if not isinstance(value, str):
            raise self.fail(field, value, "expected a string")
        return value

    def port_ref(self, value: object, field: str) -> int | str:
        # IntOrString: a number is a Service port, a string a port name; "80" as a string is a
        # number (the API server's intstr parses it so).
        if isinstance(value, bool) or value is None or value == "":
            raise self.fail(field, value, "a Service port number (1-65535) or name is required")
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            number = int(value)
            if not 1 <= number <= 65535:
                raise self.fail(field, value, "a port number is 1-65535")
            return number
        if isinstance(value, str):
            return value
        raise self.fail(field, value, "a Service port number (1-65535) or name is required")


def _backend(r: _Reader, raw: object, field: str, *, v1: bool) -> BackendRef | None:
    b = r.mapping(raw, field)
    if v1:
        if b.get("resource") is not None:
            return None
        svc = r.mapping(b.get("service"), f"{field}.service")
        if not svc:
            raise r.fail(f"{field}.service", b.get("service"), "a service or resource backend")
        name = r.string(svc.get("name"), f"{field}.service.name")
        port = r.mapping(svc.get("port"), f"{field}.service.port")
        if ("number" in port) == ("name" in port):
            raise r.fail(
                f"{field}.service.port", dict(port), "give exactly one of 'number' or 'name'"
            )
        key = "number" if "number" in port else "name"
        ref = r.port_ref(port[key], f"{field}.service.port.{key}")
        assert name is not None
        return BackendRef(name, ref, field)
    if b.get("resource") is not None:
        return None
    name = r.string(b.get("serviceName"), f"{field}.serviceName")
    assert name is not None
    return BackendRef(name, r.port_ref(b.get("servicePort"), f"{field}.servicePort"), field)


def _ingress(obj: Mapping[str, Any], origin: Origin) -> SourceIngress:
    r = _Reader(obj, origin)
    version = obj.get("apiVersion")
    if version not in INGRESS_VERSIONS:
        raise r.fail("apiVersion", version, "allowed: " + ", ".join(INGRESS_VERSIONS))
    v1 = version == "networking.k8s.io/v1"
    meta = r.mapping(obj.get("metadata"), "metadata")
    annotations = {
        str(k): str(v)
        for k, v in r.mapping(meta.get("annotations"), "metadata.annotations").items()
    }
    spec = r.mapping(obj.get("spec"), "spec")
    default_field = "spec.defaultBackend" if v1 else "spec.backend"
    raw_default = spec.get("defaultBackend" if v1 else "backend")
    default = _backend(r, raw_default, default_field, v1=v1) if raw_default is not None else None
    rules: list[HostRule] = []
    for i, raw_rule in enumerate(r.sequence(spec.get("rules"), "spec.rules")):
        field = f"spec.rules[{i}]"
        rule = r.mapping(raw_rule, field)
        host = r.string(rule.get("host"), f"{field}.host", required=False)
        if host is not None:
            why = host_error(host)
            if why is not None:
                raise r.fail(f"{field}.host", host, f"the host {why}")
        http = r.mapping(rule.get("http"), f"{field}.http")
        paths: list[PathRule] = []
        for j, raw_path in enumerate(r.sequence(http.get("paths"), f"{field}.http.paths")):
            pfield = f"{field}.http.paths[{j}]"
            p = r.mapping(raw_path, pfield)
            path_type = p.get("pathType")
            if path_type is None and not v1:
                # networking.k8s.io/v1beta1 defaulted it so; extensions/v1beta1 had no field.
                path_type = "ImplementationSpecific"
            if path_type not in _PATH_TYPES:
                raise r.fail(f"{pfield}.pathType", path_type, "allowed: " + ", ".join(_PATH_TYPES))
            path = r.string(p.get("path"), f"{pfield}.path", required=False) or "/"
            if not path.startswith("/"):
                raise r.fail(f"{pfield}.path", path, "a path must start with '/'")
            if path_type != "ImplementationSpecific" and (
                any(bad in path for bad in _FORBIDDEN_IN_PATH) or path.endswith(("/..", "/."))
            ):
                raise r.fail(
                    f"{pfield}.path",
                    path,
                    f"pathType {path_type} refuses '//', '/./', '/../' and '%2f'",
                )
            backend = _backend(r, p.get("backend"), f"{pfield}.backend", v1=v1)
            paths.append(PathRule(path, path_type, backend, pfield))
        rules.append(HostRule(host, tuple(paths), field))
    tls: list[TlsEntry] = []
    for k, raw_tls in enumerate(r.sequence(spec.get("tls"), "spec.tls")):
        tfield = f"spec.tls[{k}]"
        entry = r.mapping(raw_tls, tfield)
        hosts: list[str] = []
        for n, h in enumerate(r.sequence(entry.get("hosts"), f"{tfield}.hosts")):
            why = host_error(h) if isinstance(h, str) else "is not a string"
            if why is not None:
                raise r.fail(f"{tfield}.hosts[{n}]", h, f"the host {why}")
            hosts.append(h)
        secret = r.string(entry.get("secretName"), f"{tfield}.secretName", required=False)
        tls.append(TlsEntry(tuple(hosts), secret, tfield))
    if not rules and default is None and raw_default is None:
        raise r.fail("spec", dict(spec), "an Ingress needs rules or a default backend")
    class_field = r.string(spec.get("ingressClassName"), "spec.ingressClassName", required=False)
    return SourceIngress(
        namespace=r.namespace,
        name=r.name,
        api_version=str(version),
        class_field=class_field,
        annotations=annotations,
        rules=tuple(rules),
        default_backend=default,
        tls=tuple(tls),
        origin=origin,
    )


def _service(obj: Mapping[str, Any], origin: Origin) -> SourceService:
    r = _Reader(obj, origin)
    spec = r.mapping(obj.get("spec"), "spec")
    ports: list[SourcePort] = []
    for i, raw in enumerate(r.sequence(spec.get("ports"), "spec.ports")):
        field = f"spec.ports[{i}]"
        p = r.mapping(raw, field)
        number = p.get("port")
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
            raise r.fail(f"{field}.port", number, "a port number 1-65535 is required")
        target = p.get("targetPort")
        if target is not None and not isinstance(target, int | str):
            raise r.fail(f"{field}.targetPort", target, "a port number or name")
        node_port = p.get("nodePort")
        ports.append(
            SourcePort(
                name=r.string(p.get("name"), f"{field}.name", required=False),
                port=number,
                target_port=int(target) if isinstance(target, str) and target.isdigit() else target,
                protocol=str(p.get("protocol") or "TCP"),
                node_port=node_port if isinstance(node_port, int) else None,
            )
        )
    selector = spec.get("selector")
    return SourceService(
        namespace=r.namespace,
        name=r.name,
        type=str(spec.get("type") or "ClusterIP"),
        selector=(
            {str(k): str(v) for k, v in r.mapping(selector, "spec.selector").items()}
            if selector
            else None
        ),
        ports=tuple(ports),
        origin=origin,
    )


def read_objects(objects: Sequence[tuple[Mapping[str, Any], Origin]]) -> Source:
    """The Ingresses and Services among ``objects`` (each with where it was read).

    Other kinds (Deployments, Secrets, ...) are counted and left alone: a Secret's data is never
    looked at. Raises :class:`InputError` for an Ingress or Service that cannot be used.
    """
    ingresses: list[SourceIngress] = []
    services: dict[tuple[str, str], SourceService] = {}
    ignored = 0
    seen: dict[str, Origin] = {}
    for obj, origin in objects:
        kind = obj.get("kind")
        if kind == "Ingress":
            ing = _ingress(obj, origin)
            if ing.ref in seen:
                raise InputError(
                    f"{origin}: {ing.ref} is given twice (first at {seen[ing.ref]}); an object "
                    "may appear once",
                    file=origin.file,
                    line=origin.line,
                )
            seen[ing.ref] = origin
            ingresses.append(ing)
        elif kind == "Service" and obj.get("apiVersion") == "v1":
            svc = _service(obj, origin)
            services[svc.namespace, svc.name] = svc
        else:
            ignored += 1
    return Source(tuple(ingresses), services, ignored)
