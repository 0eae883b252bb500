"""gRPC routes of an app: which gRPC services (or methods) of a rule's host go to which port.

A gRPC call is an HTTP/2 POST to ``/<package.Service>/<Method>`` (gRPC over HTTP/2, "Requests"),
so one description renders for either API:
- ``api: gateway``: one GRPCRoute per rule (GRPCMethodMatch ``Exact``, header matches, weighted
  backendRefs; Gateway API standard channel v1.6.3), on the listeners the rule's HTTPRoute would
  use;
- ``api: ingress``: an Ingress path to the same port, ``Prefix /<service>`` for a whole service
  and ``Exact /<service>/<method>`` for one method.
The backend port speaks HTTP/2 without TLS: its ``appProtocol`` is ``kubernetes.io/h2c``
(``kexpose.model.protocol``), which kexpose-proxy and Gateway API implementations read, and with
the Traefik controller its Service also carries Traefik's server-scheme annotation (read per
Service, not per port).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Final

from pydantic import AfterValidator, Field

from kexpose.model.backend import Backend, WeightedBackend
from kexpose.model.base import DNSLabel, Frozen, PortName, PortNumber, Problems
from kexpose.model.protocol import APP_PROTOCOL_H2C
from kexpose.model.route import HeaderMatch

if TYPE_CHECKING:
    from kexpose.model.app import AppSpec
    from kexpose.model.gateway import ApiKind
    from kexpose.model.ingress import IngressSpec, PathType
    from kexpose.model.stack import StackSpec

__all__ = [
    "TRAEFIK_SERVERS_SCHEME",
    "GrpcPath",
    "grpc_api_problems",
    "grpc_port_problems",
    "grpc_stack_problems",
    "h2c_ports",
]

#: Traefik's Kubernetes Ingress provider reads the scheme it speaks to a Service's servers from
#: this Service annotation (Traefik v3 routing reference, "Kubernetes Ingress", service
#: annotations); ``h2c`` is HTTP/2 with prior knowledge.
TRAEFIK_SERVERS_SCHEME: Final = "traefik.ingress.kubernetes.io/service.serversscheme"

# GRPCMethodMatch CEL rules for type Exact (the leading '.' the CRD tolerates is left out: a
# gRPC request path never has it, so the Ingress rendering could not match it).
_SERVICE = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$")
_METHOD = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


def _check_service(value: str) -> str:
    if len(value) > 1024 or not _SERVICE.match(value):
        raise ValueError(
            "not a gRPC service name: dot-separated identifiers of letters, digits and '_' "
            "(e.g. 'helloworld.Greeter'), at most 1024 characters"
        )
    return value


def _check_method(value: str) -> str:
    if len(value) > 1024 or not _METHOD.match(value):
        raise ValueError(
            "not a gRPC method name: one identifier of letters, digits and '_' (e.g. 'SayHello')"
        )
    return value


GrpcServiceName = Annotated[str, AfterValidator(_check_service)]
GrpcMethodName = Annotated[str, AfterValidator(_check_method)]


class GrpcPath(Frozen):
    """A gRPC service (all its methods, or only ``method``) of the rule's host, and where its
    calls go: ``port`` of the app's own Service, or of another app's Service (``to``; in
    ``namespace`` with ``api: gateway`` only). Beyond Ingress (``api: gateway`` only):
    ``headers`` narrow the match, ``backends`` share the calls by ``weight``."""

    service: GrpcServiceName
    method: GrpcMethodName | None = None
    port: PortNumber | PortName
    to: DNSLabel | None = None
    namespace: DNSLabel | None = None
    headers: tuple[HeaderMatch, ...] | None = Field(default=None, min_length=1, max_length=16)
    weight: int | None = Field(default=None, ge=0, le=1_000_000)
    backends: tuple[WeightedBackend, ...] | None = Field(default=None, min_length=1, max_length=15)

    def match_key(self) -> tuple[object, ...]:
        """Equal keys are the same route."""
        return (
            self.service,
            self.method,
            frozenset((h.name.lower(), h.value, h.type) for h in self.headers or ()),
        )

    def own(self) -> Backend:
        """The entry's own backend (``to`` names the Service; ``service`` is the gRPC one)."""
        return Backend(port=self.port, service=self.to, namespace=self.namespace)

    def all_backends(self) -> list[tuple[tuple[int | str, ...], Backend]]:
        out: list[tuple[tuple[int | str, ...], Backend]] = [((), self.own())]
        out += [(("backends", k), b) for k, b in enumerate(self.backends or ())]
        return out

    def ingress_path(self) -> tuple[PathType, str]:
        """The Ingress path that matches the same calls."""
        if self.method is None:
            return "Prefix", f"/{self.service}"
        return "Exact", f"/{self.service}/{self.method}"

    def gateway_field(self, key: str) -> object:
        value = {
            "headers": self.headers,
            "backends": self.backends,
            "weight": self.weight,
            "namespace": self.namespace,
        }[key]
        if isinstance(value, tuple):
            return [v.model_dump(by_alias=True, exclude_defaults=True) for v in value]
        return value


_GATEWAY_ONLY = {
    "headers": "a header match",
    "backends": "traffic split by weight between Services",
    "weight": "traffic split by weight between Services",
    "namespace": "a backend in another namespace",
}


def grpc_api_problems(
    ingress: IngressSpec, api: ApiKind, problems: Problems, at: tuple[str | int, ...]
) -> None:
    """What ``api`` cannot express of the gRPC entries of ``ingress`` (a host with both HTTP
    paths and gRPC entries in different apps: ``grpc_stack_problems``)."""
    for i, rule in enumerate(ingress.rules):
        if not rule.grpc:
            continue
        if api == "gateway" and rule.paths:
            # GRPCRoute (Gateway API spec, GRPCRouteSpec): an HTTPRoute and a GRPCRoute attached
            # to one listener must not share a hostname; the implementation refuses one.
            problems.add(
                (*at, "rules", i, "grpc"),
                f"host {rule.host or '*'} has HTTP paths too; with api 'gateway' an HTTPRoute and "
                "a GRPCRoute may not share a hostname on a listener: give the gRPC services a "
                "rule (host) of their own",
            )
        if api != "ingress":
            continue
        # With api 'ingress' an HTTP path has no other matches (api_problems refuses them).
        http = {(p.path_type, p.path) for p in rule.paths}
        for k, g in enumerate(rule.grpc):
            loc = (*at, "rules", i, "grpc", k)
            for key, what in _GATEWAY_ONLY.items():
                value = g.gateway_field(key)
                if value is not None:
                    problems.add(
                        (*loc, key),
                        f"{what} cannot be expressed with api 'ingress'; set "
                        "kexpose:controller.api to 'gateway' (GRPCRoute), or drop it",
                        value,
                    )
            path_type, path = g.ingress_path()
            if (path_type, path) in http:
                problems.add(
                    (*loc, "service"),
                    f"renders as Ingress path {path} ({path_type}), which an HTTP path of the "
                    "rule already routes; drop one of them",
                    g.service,
                )


def _entries(
    ingress: IngressSpec | None,
) -> list[tuple[tuple[int | str, ...], Backend, str]]:
    """Every gRPC backend with its location in the ingress spec and the name of its field
    that names the Service (``to`` for the entry's own, ``service`` for a weighted one)."""
    return [
        (("rules", i, "grpc", k, *at), b, "service" if at else "to")
        for i, rule in enumerate(ingress.rules if ingress is not None else ())
        for k, g in enumerate(rule.grpc)
        for at, b in g.all_backends()
    ]


def _is_own(app: AppSpec, b: Backend) -> bool:
    return b.service is None and b.namespace in (None, app.namespace)


def h2c_ports(app: AppSpec) -> frozenset[str]:
    """Names of the app's Service ports that speak h2c: declared so, or reached by the app's
    own gRPC entries."""
    out = {p.name for p in app.service.ports if p.app_protocol == APP_PROTOCOL_H2C}
    for _, b, _ in _entries(app.ingress):
        port = app.service.port_ref(b.port) if _is_own(app, b) else None
        if port is not None and port.app_protocol is None:
            out.add(port.name)
    return frozenset(out)


def grpc_port_problems(app: AppSpec, problems: Problems) -> None:
    """The app's own gRPC backend ports exist and declare no other protocol than h2c."""
    for loc, b, _ in _entries(app.ingress):
        if not _is_own(app, b):
            continue
        port = app.service.port_ref(b.port)
        if port is None:
            problems.add(
                ("ingress", *loc, "port"),
                "is not a port of the app's Service; allowed: " + app.service.allowed_refs(),
                b.port,
            )
        elif port.app_protocol not in (None, APP_PROTOCOL_H2C):
            problems.add(
                ("ingress", *loc, "port"),
                f"reaches Service port {port.name!r}, whose appProtocol is "
                f"{port.app_protocol!r}; gRPC needs HTTP/2, so the port must be "
                f"{APP_PROTOCOL_H2C} (or leave appProtocol unset)",
                b.port,
            )


def _shared_hosts(stack: StackSpec, problems: Problems) -> None:
    """A host with gRPC entries in one app and HTTP paths in another (within one app:
    ``grpc_api_problems``); both routes would attach to the same listeners."""
    http: dict[str | None, str] = {}
    for app in stack.apps:
        for rule in app.ingress.rules if app.ingress is not None else ():
            if rule.paths:
                http.setdefault(rule.host, f"{app.namespace}/{app.name}")
    for i, app in enumerate(stack.apps):
        for r, rule in enumerate(app.ingress.rules if app.ingress is not None else ()):
            other = http.get(rule.host)
            if rule.grpc and not rule.paths and other is not None:
                problems.add(
                    ("apps", i, "ingress", "rules", r, "grpc"),
                    f"host {rule.host or '*'} has HTTP paths in app {other}; with api 'gateway' "
                    "an HTTPRoute and a GRPCRoute may not share a hostname on a listener: give "
                    "the gRPC services a host of their own",
                )


def grpc_stack_problems(stack: StackSpec, problems: Problems) -> None:
    """Across apps: gRPC calls to another app reach one of its ports that declares h2c; with
    the Traefik controller (Ingress), h2c is per Service, so a Service with an h2c port may not
    be reached on a port that does not speak it."""
    by_key = {(a.namespace, a.name): a for a in stack.apps}
    h2c = {key: h2c_ports(a) for key, a in by_key.items()}
    ctl = stack.controller
    traefik = ctl is not None and ctl.kind == "traefik" and stack.api == "ingress"
    if stack.api == "gateway":
        _shared_hosts(stack, problems)
    for i, app in enumerate(stack.apps):
        for loc, b, field in _entries(app.ingress):
            if _is_own(app, b):
                continue
            key = (b.namespace or app.namespace, b.service or app.name)
            other = by_key.get(key)
            where = ("apps", i, "ingress", *loc)
            if other is None:
                names = sorted(a.name for a in stack.apps if a.namespace == key[0])
                problems.add(
                    (*where, field),
                    f"is not an app in namespace {key[0]!r}; allowed: "
                    + (", ".join(names) or "none"),
                    key[1],
                )
                continue
            port = other.service.port_ref(b.port)
            if port is None:
                problems.add(
                    (*where, "port"),
                    f"is not a port of service {key[1]!r}; allowed: "
                    + other.service.allowed_refs(),
                    b.port,
                )
            elif port.name not in h2c[key]:
                problems.add(
                    (*where, "port"),
                    f"reaches port {port.name!r} of app {key[0]}/{key[1]}, which does not "
                    f"declare appProtocol {APP_PROTOCOL_H2C}; gRPC needs HTTP/2: set it on "
                    "that port",
                    b.port,
                )
        if not traefik or app.ingress is None:
            continue
        for loc, b in app.ingress.backends():
            key = (b.namespace or app.namespace, b.service or app.name)
            target = by_key.get(key)
            port = target.service.port_ref(b.port) if target is not None else None
            if port is not None and h2c[key] and port.name not in h2c[key]:
                problems.add(
                    ("apps", i, "ingress", *loc, "port"),
                    f"reaches port {port.name!r} of Service {key[1]}, which also has h2c ports "
                    f"({', '.join(sorted(h2c[key]))}); Traefik reads h2c per Service "
                    f"({TRAEFIK_SERVERS_SCHEME}), so it would speak h2c here too: mark the port "
                    f"{APP_PROTOCOL_H2C} if it speaks it, or serve gRPC from an app of its own",
                    b.port,
                )
