"""The route table: objects in, an immutable table out, and the lookup the data plane runs.

Building (``build_table``) follows ingress-nginx's server construction wherever the Ingress API
leaves the behaviour open (the module docstrings of ``_paths``, ``_ownership``, ``_backends``
and ``_certificates`` give the rules they own):

- Hosts. Each rule host gets a virtual host. The first Ingress (in precedence order) with a rule
  for a host creates it, and *its* ``defaultBackend`` answers that host's unmatched paths; a host
  never falls back to a wildcard or the catch-all once it is matched by name ("requests are
  first evaluated for a host match", concept page; ingress-nginx keeps to the matched server).
  ``*.foo.com`` covers exactly one label. An exact host is tried before a wildcard.
- The catch-all virtual host holds host-less rules. Its default is the ``defaultBackend`` of the
  first Ingress that has *no rules at all* (an Ingress with rules scopes its default backend to
  its own hosts); failing that, nothing: 404.
- Paths of all owned Ingresses on one host merge; a duplicate path keeps the older Ingress.
  Resource backends are not served (the path is skipped and reported).
- TLS. A rule host has TLS when an owned Ingress lists it (or a wildcard covering it) in
  ``tls.hosts``, or has a ``tls`` entry without ``hosts`` whose certificate verifies the host.
  Plain HTTP to such a host is redirected to HTTPS (308, ingress-nginx's ``ssl-redirect``),
  unless the Ingress that created the host says ``kexpose.dev/ssl-redirect: "false"``. A
  missing Secret still turns TLS on; the handshake then gets the default certificate.

Lookup (``RouteTable.route``): Host (already normalised) -> virtual host -> path match ->
route, else the virtual host's default route, else None (404). A route whose backend has no
endpoint is answered 503 by the data plane.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, cast

from kexpose.hosts import host_error, is_wildcard, wildcard_of
from kexpose.proxy.filters import EdgeAuth
from kexpose.proxy.routes._addresses import Network, assign_addresses
from kexpose.proxy.routes._auth import auth_from_annotations
from kexpose.proxy.routes._backends import Backend, index_slices, resolve_backend
from kexpose.proxy.routes._certificates import (
    Certificate,
    CertificateMap,
    certificate_covers,
    certificate_from_secret,
)
from kexpose.proxy.routes._gateway import (
    GatewayTable,
    build_gateway_table,
    gateways_of,
    our_classes,
)
from kexpose.proxy.routes._gwtable import GatewayPort
from kexpose.proxy.routes._kube import EndpointSlice, Ingress, IngressBackend
from kexpose.proxy.routes._objects import Key, ObjectSet, key_of
from kexpose.proxy.routes._ownership import Claim, is_owned, precedence_order
from kexpose.proxy.routes._paths import PATH_TYPES, PathMatcher, PathType
from kexpose.proxy.routes._shape import shown

__all__ = ["SSL_REDIRECT_ANNOTATION", "Route", "RouteTable", "VirtualHost", "build_table"]

#: Per-Ingress opt-out of the HTTP -> HTTPS redirect (the name ingress-nginx uses, in our
#: domain, since we do not read ``nginx.ingress.kubernetes.io`` annotations).
SSL_REDIRECT_ANNOTATION: Final = "kexpose.dev/ssl-redirect"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a matched request goes."""

    ingress: str
    """``namespace/name`` of the Ingress that contributed it (the ``ingress`` metrics label)."""
    backend: Backend
    path: str
    """The path as written in the Ingress; ``""`` for a default backend."""
    path_type: PathType | None
    """None for a default backend."""
    auth: EdgeAuth | None = None
    """The Ingress's edge authentication (``_auth``), applied before the backend."""


@dataclass(frozen=True, slots=True)
class VirtualHost:
    host: str
    paths: PathMatcher[Route]
    default: Route | None = None
    tls: bool = False
    """Plain-HTTP requests get a 308 to HTTPS."""

    def route(self, path: str) -> Route | None:
        found = self.paths.match(path)
        return found if found is not None else self.default


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Everything the data plane needs, immutable; swapped whole when objects change."""

    hosts: Mapping[str, VirtualHost] = field(default_factory=dict)
    wildcards: Mapping[str, VirtualHost] = field(default_factory=dict)
    fallback: VirtualHost = field(default_factory=lambda: VirtualHost("", PathMatcher()))
    certificates: CertificateMap = field(default_factory=CertificateMap)
    backends: Mapping[str, Backend] = field(default_factory=dict)
    owned: tuple[Key, ...] = ()
    """The Ingresses we serve, ``(namespace, name)``; the status writer updates these."""
    problems: tuple[str, ...] = ()
    """What was skipped and why, for the log."""
    gateway: GatewayTable = field(default_factory=GatewayTable)
    """The Gateway API half: what each Gateway port serves, and every status value."""
    gateway_ports: Mapping[tuple[str, int], GatewayPort] = field(default_factory=dict)
    """``(gateway namespace/name, port)`` -> what that listening socket serves."""

    def virtual_host(self, host: str) -> VirtualHost:
        """The virtual host for a normalised Host name: exact, then ``*.`` wildcard, then all."""
        found = self.hosts.get(host)
        if found is not None:
            return found
        if self.wildcards:
            wildcard = wildcard_of(host)
            if wildcard is not None:
                found = self.wildcards.get(wildcard)
                if found is not None:
                    return found
        return self.fallback

    def route(self, host: str, path: str) -> Route | None:
        return self.virtual_host(host).route(path)

    def certificate(self, server_name: str | None) -> Certificate | None:
        return self.certificates.lookup(server_name)


@dataclass(slots=True)
class _HostBuilder:
    paths: PathMatcher[Route] = field(default_factory=PathMatcher)
    default: Route | None = None
    redirect: bool = True


@dataclass(slots=True)
class _Builder:
    objects: ObjectSet
    slices: dict[Key, list[EndpointSlice]] = field(default_factory=dict)
    hosts: dict[str, _HostBuilder] = field(default_factory=dict)
    fallback: _HostBuilder = field(default_factory=_HostBuilder)
    backends: dict[str, Backend] = field(default_factory=dict)
    certificates: dict[str, Certificate] = field(default_factory=dict)
    tls_names: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def backend(self, namespace: str, ref: IngressBackend, where: str) -> Backend | None:
        service = ref.get("service")
        if service is None:
            kind = (ref.get("resource") or {}).get("kind", "resource")
            self.problems.append(f"{where}: {kind} backends are not served; path skipped")
            return None
        found = resolve_backend(
            namespace,
            service,
            services=self.objects.services,
            slices=self.slices,
        )
        if found.problem:
            self.problems.append(f"{where}: {found.problem} (503)")
        return self.backends.setdefault(found.key, found)

    def add_ingress(self, ingress: Ingress) -> None:
        namespace, name = key_of(ingress)
        label = f"{namespace}/{name}"
        spec = ingress.get("spec") or {}
        annotations = (ingress.get("metadata") or {}).get("annotations") or {}
        redirect = annotations.get(SSL_REDIRECT_ANNOTATION, "true").lower() != "false"
        auth = auth_from_annotations(
            annotations,
            namespace=namespace,
            source=f"Ingress {label}",
            secrets=self.objects.secrets,
            notes=self.problems,
        )
        default: Route | None = None
        if spec.get("defaultBackend") is not None:  # null is unset (``_shape``)
            backend = self.backend(namespace, spec["defaultBackend"], f"Ingress {label}")
            if backend is not None:
                default = Route(label, backend, "", None, auth)
        rules = spec.get("rules") or []
        if not rules and default is not None and self.fallback.default is None:
            self.fallback.default = default
        rule_hosts: list[str] = []
        for i, rule in enumerate(rules):
            where = f"Ingress {label} rules[{i}]"
            host = (rule.get("host") or "").lower()
            if host:
                problem = host_error(host)
                if problem:
                    self.problems.append(
                        f"{where}: host {shown(host, typed=False)} {problem}; rule skipped"
                    )
                    continue
                target = self.hosts.get(host)
                if target is None:
                    target = self.hosts[host] = _HostBuilder(default=default, redirect=redirect)
                rule_hosts.append(host)
            else:
                target = self.fallback
            for j, path_rule in enumerate((rule.get("http") or {}).get("paths") or []):
                at = f"{where}.http.paths[{j}]"
                self.add_path(target, path_rule, namespace, label, at, auth)
        self.add_tls(ingress, namespace, label, rule_hosts)

    def add_path(
        self,
        target: _HostBuilder,
        rule: Mapping[str, object],
        namespace: str,
        label: str,
        where: str,
        auth: EdgeAuth | None = None,
    ) -> None:
        path_type = rule.get("pathType")
        path = rule.get("path") or ""
        if path_type not in PATH_TYPES or not isinstance(path, str):
            self.problems.append(
                f"{where}: pathType {path_type!r} is not one of {', '.join(PATH_TYPES)}; "
                "path skipped"
            )
            return
        if path_type != "ImplementationSpecific" and not path.startswith("/"):
            self.problems.append(f"{where}: path {path!r} must start with '/'; path skipped")
            return
        backend = self.backend(namespace, cast("IngressBackend", rule.get("backend") or {}), where)
        if backend is None:
            return
        if not target.paths.add(path, path_type, Route(label, backend, path, path_type, auth)):
            self.problems.append(
                f"{where}: {path_type} {path!r} is already routed by an older "
                "Ingress; this one is ignored"
            )

    def add_tls(self, ingress: Ingress, namespace: str, label: str, rule_hosts: list[str]) -> None:
        for i, tls in enumerate((ingress.get("spec") or {}).get("tls") or []):
            cert: Certificate | None = None
            secret_name = tls.get("secretName")
            if secret_name:
                secret = self.objects.secrets.get((namespace, secret_name))
                if secret is None:
                    self.problems.append(
                        f"Ingress {label} tls[{i}]: Secret "
                        f"{namespace}/{secret_name} not found; default "
                        "certificate served"
                    )
                else:
                    made = certificate_from_secret(secret, label=f"{namespace}/{secret_name}")
                    if isinstance(made, str):
                        self.problems.append(
                            f"Ingress {label} tls[{i}]: {made}; default certificate served"
                        )
                    else:
                        cert = made
            hosts = [h.lower() for h in tls.get("hosts") or [] if isinstance(h, str)]
            if not hosts and cert is not None:
                # "defaults to the wildcard host setting" (API reference); ingress-nginx uses
                # the Secret for each rule host its certificate verifies.
                hosts = [h for h in rule_hosts if certificate_covers(cert, h)]
            for host in hosts:
                self.tls_names.add(host)
                if cert is not None:
                    self.certificates.setdefault(host, cert)

    def has_tls(self, host: str) -> bool:
        if host in self.tls_names:
            return True
        if is_wildcard(host):
            return False
        wildcard = wildcard_of(host)
        return wildcard is not None and wildcard in self.tls_names

    def freeze(self, owned: tuple[Key, ...]) -> RouteTable:
        exact: dict[str, VirtualHost] = {}
        wild: dict[str, VirtualHost] = {}
        for host, b in self.hosts.items():
            vh = VirtualHost(host, b.paths, b.default, b.redirect and self.has_tls(host))
            (wild if is_wildcard(host) else exact)[host] = vh
        return RouteTable(
            hosts=exact,
            wildcards=wild,
            fallback=VirtualHost("", self.fallback.paths, self.fallback.default, False),
            certificates=CertificateMap(dict(self.certificates)),
            backends=dict(self.backends),
            owned=owned,
            problems=tuple(self.problems),
        )


def build_table(objects: ObjectSet, *, claim: Claim) -> RouteTable:
    """The route table for ``objects``, serving only the Ingresses ``claim`` makes ours, and,
    when ``claim`` names a Gateway controller, its Gateways (addresses from its pool)."""
    ours = [i for i in objects.ingresses.values() if is_owned(i, objects.classes, claim)]
    slices = index_slices(objects)
    builder = _Builder(objects, slices=slices)
    ordered = precedence_order(ours)
    for ingress in ordered:
        builder.add_ingress(ingress)
    table = builder.freeze(tuple(key_of(i) for i in ordered))
    if claim.gateway_controller is None:
        return table
    gateway = _gateways(objects, claim.gateway_controller, slices, claim.gateway_pool)
    return replace(
        table,
        gateway=gateway,
        gateway_ports={(p.gateway, p.port): p for p in gateway.ports},
        backends={**table.backends, **gateway.backends},
        problems=table.problems + gateway.problems,
    )


def _gateways(
    objects: ObjectSet,
    controller: str,
    slices: Mapping[Key, list[EndpointSlice]],
    pool: Network | None,
) -> GatewayTable:
    classes = cast("Mapping[str, Mapping[str, Any]]", objects.gateway_classes)
    gateways = cast("Mapping[Key, Mapping[str, Any]]", objects.gateways)
    ours = gateways_of(our_classes(classes, controller), gateways)
    addresses, address_problems = assign_addresses(ours, pool)
    namespaces: dict[str, Mapping[str, str]] = {}
    for name, ns in objects.namespaces.items():
        meta = cast("Mapping[str, Any]", ns).get("metadata")
        labels = meta.get("labels") if isinstance(meta, Mapping) else None
        namespaces[name] = labels if isinstance(labels, Mapping) else {}
    return build_gateway_table(
        controller=controller,
        classes=classes,
        gateways=gateways,
        routes=cast("Mapping[Key, Mapping[str, Any]]", objects.http_routes),
        grpc_routes=cast("Mapping[Key, Mapping[str, Any]]", objects.grpc_routes),
        grants=[cast("Mapping[str, Any]", g) for g in objects.reference_grants.values()],
        services=objects.services,
        slices=slices,
        secrets=objects.secrets,
        namespaces=namespaces,
        config_maps=cast("Mapping[Key, Mapping[str, Any]]", objects.config_maps),
        listener_sets=cast("Mapping[Key, Mapping[str, Any]]", objects.listener_sets),
        addresses=addresses,
        address_problems=address_problems,
        edge_auths=cast("Mapping[Key, Mapping[str, Any]]", objects.edge_auths),
    )
