"""Gateway API objects in, the Gateway half of the route table and every status value out.

Which objects are ours: GatewayClasses whose ``controllerName`` is ours, the Gateways of those
classes, and the HTTPRoutes and GRPCRoutes (and their parentRefs) that point at those Gateways.
A route's parentRef to a Gateway that is not ours gets no status from us.

Listeners (``Listener``, ``ListenerStatus``; gateway-api v1.6.3 ``apis/v1/gateway_types.go``):

- ``HTTP`` and ``HTTPS`` (TLS mode ``Terminate``) are served; any other protocol is
  ``Accepted=False/UnsupportedProtocol``, TLS ``Passthrough`` ``Accepted=False/UnsupportedValue``.
- Listeners sharing a port must share a protocol (else all of them ``Conflicted=True/
  ProtocolConflict``) and differ in hostname (else ``Conflicted=True/HostnameConflict``); a
  conflicted listener serves nothing.
- ``certificateRefs`` name core Secrets (``group: ""``, ``kind: Secret``); another group or kind,
  a missing or unusable Secret is ``ResolvedRefs=False/InvalidCertificateRef``, a Secret in
  another namespace without a ReferenceGrant ``RefNotPermitted``; such a listener is not
  ``Programmed`` (``Invalid``) and serves nothing.
- ``allowedRoutes.kinds`` may only name HTTPRoute and GRPCRoute here; any other kind is dropped
  from ``supportedKinds`` and sets ``ResolvedRefs=False/InvalidRouteKinds``. Without kinds, an
  HTTP or HTTPS listener takes both (the protocol's route kinds: "HTTP | HTTPRoute, GRPCRoute").
- ``attachedRoutes`` counts the routes attached to the listener (each route once).

ListenerSets (``_listenerset``) add listeners to Gateways that allow them: built here like a
Gateway's own (certificate references from the ListenerSet's namespace, granted to kind
``ListenerSet``), merged after them into the Gateway's ports, and reached by routes only through
a parentRef of kind ``ListenerSet``.

The Gateway is ``Accepted`` (reason ``ListenersNotValid`` when some listener is not) when at least
one listener is valid or it has none, and ``Programmed`` when it also has an address. Addresses
come from the control plane (``addresses``), which knows how this deployment gets them.

Routes: ``_httproute`` and ``_grpcroute`` translate the rules; here a route is attached. For
each parentRef to one of our Gateways: the listeners named by ``sectionName``/``port`` (none:
``NoMatchingParent``), those whose ``allowedRoutes`` admit the route's namespace and kind (none:
``NotAllowedByListeners``), those sharing a hostname with it (none:
``NoMatchingListenerHostname``). ``ResolvedRefs`` reports the first unresolved reference.

Cross-serving (``GRPCRouteSpec.hostnames``): when an HTTPRoute and a GRPCRoute would attach to
one listener with intersecting hostnames, exactly one of them is accepted there: the older
(``creationTimestamp``), then the first by ``namespace/name``. The other is not attached to that
listener; when that leaves it no listener of the parentRef, it is ``Accepted=False/
NotAllowedByListeners`` there, its message naming the route it lost to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from kexpose.proxy.routes._auth import extension_resolver
from kexpose.proxy.routes._backends import Backend, resolve_backend
from kexpose.proxy.routes._certificates import Certificate, CertificateMap, certificate_from_secret
from kexpose.proxy.routes._frontend import (
    ClientValidation,
    FrontendCheck,
    frontend_validation,
    insecure_fallback,
)
from kexpose.proxy.routes._grants import Grants
from kexpose.proxy.routes._grpcroute import translate_grpc_rules
from kexpose.proxy.routes._gwhosts import ANY_HOST, intersect, specificity
from kexpose.proxy.routes._gwstatus import (
    ClassStatus,
    Condition,
    GatewayStatus,
    ListenerSetStatus,
    ListenerStatus,
    ParentStatus,
    RouteStatus,
    condition,
)
from kexpose.proxy.routes._gwtable import GatewayHost, GatewayListener, GatewayPort, GatewayRule
from kexpose.proxy.routes._httproute import translate_rules
from kexpose.proxy.routes._kube import EndpointSlice, Secret, Service
from kexpose.proxy.routes._listenerset import (
    LISTENER_SET_KIND,
    Attachment,
    attachments,
    claim_ports,
    entry_programmed,
    set_conditions,
)
from kexpose.proxy.routes._objects import Key
from kexpose.proxy.routes._problem import RouteProblem
from kexpose.proxy.routes._raw import entries, mapping
from kexpose.proxy.routes._selectors import selector_matches

__all__ = [
    "GATEWAY_GROUP",
    "SUPPORTED_FEATURES",
    "GatewayTable",
    "build_gateway_table",
    "gateways_of",
    "our_classes",
]

GATEWAY_GROUP: Final = "gateway.networking.k8s.io"
#: The route kinds an HTTP or HTTPS listener takes when ``allowedRoutes.kinds`` names none.
_DEFAULT_KINDS: Final = ((GATEWAY_GROUP, "HTTPRoute"), (GATEWAY_GROUP, "GRPCRoute"))
_ROUTE_KINDS: Final = frozenset(_DEFAULT_KINDS)
_PROTOCOLS: Final = frozenset({"HTTP", "HTTPS"})
RouteKind = Literal["HTTPRoute", "GRPCRoute"]
#: The conformance features (gateway-api v1.6.3 ``pkg/features``) this implementation claims in
#: its GatewayClass status: the Core ones, and the Extended ones the data plane implements.
#: Retries are served, but ``retry`` is an experimental-channel field that the standard CRDs
#: prune. AllowInsecureFallback client validation is served (no client certificate is asked
#: for), but its test checks that a certificate is requested and any one accepted, which
#: Python's ``ssl`` cannot do (no verify callback: a certificate that is asked for is
#: verified). h2c backends (``appProtocol: kubernetes.io/h2c``) and the 421 of a coalesced
#: HTTP/2 connection are served and pass the suite's tests (whose clients speak HTTP/2), as do
#: GRPCRoutes (the GATEWAY-GRPC profile) over h2c and HTTP/2 with TLS.
#: ``ListenerSet`` (``_listenerset``) is claimed for the 12 tests it covers in GATEWAY-HTTP;
#: ListenerSetAllowedRoutesSupportedKinds also needs TLSRoute.
SUPPORTED_FEATURES: Final = (
    "GRPCRoute",
    "GRPCRouteNamedRouteRule",
    "Gateway",
    "GatewayAddressEmpty",
    "GatewayFrontendClientCertificateValidation",
    "GatewayHTTPListenerIsolation",
    "GatewayHTTPSListenerDetectMisdirectedRequests",
    "GatewayPort8080",
    "GatewayStaticAddresses",
    "HTTPRoute",
    "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode",
    "HTTPRoute308RedirectStatusCode",
    "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendProtocolWebSocket",
    "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteBackendTimeout",
    "HTTPRouteCORS",
    "HTTPRouteDestinationPortMatching",
    "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteParentRefPort",
    "HTTPRoutePathRedirect",
    "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestMultipleMirrors",
    "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteSchemeRedirect",
    "ListenerSet",
    "ReferenceGrant",
)


@dataclass(frozen=True, slots=True)
class GatewayTable:
    ports: tuple[GatewayPort, ...] = ()
    classes: tuple[ClassStatus, ...] = ()
    gateways: tuple[GatewayStatus, ...] = ()
    routes: tuple[RouteStatus, ...] = ()
    backends: Mapping[str, Backend] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    listener_sets: tuple[ListenerSetStatus, ...] = ()


def _generation(obj: Mapping[str, Any]) -> int:
    value = mapping(obj.get("metadata")).get("generation")
    return value if isinstance(value, int) else 0


def _name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = mapping(obj.get("metadata"))
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def _created(obj: Mapping[str, Any]) -> str:
    value = mapping(obj.get("metadata")).get("creationTimestamp")
    if isinstance(value, datetime):
        return value.isoformat()
    return value if isinstance(value, str) else ""


@dataclass(slots=True)
class _Listener:
    gateway: Key
    spec: Mapping[str, Any]
    name: str
    port: int
    protocol: str
    hostname: str | None
    kinds: tuple[tuple[str, str], ...]
    conditions: dict[str, Condition] = field(default_factory=dict)
    certificates: list[Certificate] = field(default_factory=list)
    client_validation: ClientValidation | None = None
    """``spec.tls.frontend`` for this HTTPS listener's port (``_frontend``)."""
    routes: dict[str, list[tuple[tuple[Any, ...], GatewayRule]]] = field(default_factory=dict)
    """Effective hostname -> (precedence key, rule) of the rules attached under it."""
    attached: set[str] = field(default_factory=set)
    owner_kind: str = "Gateway"
    """``Gateway``, or ``ListenerSet`` for a ListenerSet's listener (then ``gateway`` is the
    ListenerSet's key: its namespace is the one certificate references and ``Same`` mean)."""

    @property
    def attachable(self) -> bool:
        """Routes attach (and count in ``attachedRoutes``) to an accepted listener that is not
        in conflict, even while its references are unresolved (GatewayWithAttachedRoutes:
        "AttachedRoutes set even when Gateway has unresolved refs"); it serves only when
        ``usable``."""
        accepted = self.conditions.get("Accepted")
        conflicted = self.conditions.get("Conflicted")
        return (accepted is not None and accepted.status == "True") and (
            conflicted is None or conflicted.status == "False"
        )

    @property
    def usable(self) -> bool:
        # Accepted and resolved, and not in conflict (a positive-polarity "Conflicted").
        return all(
            c.status == ("False" if c.type == "Conflicted" else "True")
            for c in self.conditions.values()
            if c.type in ("Accepted", "ResolvedRefs", "Conflicted")
        )


@dataclass(slots=True)
class _Build:
    controller: str
    services: Mapping[Key, Service]
    slices: Mapping[Key, list[EndpointSlice]]
    secrets: Mapping[Key, Secret]
    grants: Grants
    namespaces: Mapping[str, Mapping[str, str]]
    config_maps: Mapping[Key, Mapping[str, Any]] = field(default_factory=dict)
    edge_auths: Mapping[Key, Mapping[str, Any]] = field(default_factory=dict)
    backends: dict[str, Backend] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    # --- backends ----------------------------------------------------------------------------

    def resolver(
        self, namespace: str, route_kind: str = "HTTPRoute"
    ) -> Callable[[Mapping[str, Any]], Any]:
        def resolve(ref: Mapping[str, Any]) -> tuple[Backend | None, tuple[str, str] | None]:
            group = str(ref.get("group") or "")
            kind = str(ref.get("kind") or "Service")
            name = str(ref.get("name") or "")
            target_ns = str(ref.get("namespace") or namespace)
            label = f"{kind} {target_ns}/{name}"
            if (group, kind) != ("", "Service"):
                return None, ("InvalidKind", f"backendRef {group}/{label}: only core Services")
            if not self.grants.allows(
                from_group=GATEWAY_GROUP,
                from_kind=route_kind,
                from_namespace=namespace,
                to_group="",
                to_kind="Service",
                to_namespace=target_ns,
                to_name=name,
            ):
                return None, (
                    "RefNotPermitted",
                    f"backendRef {label}: no ReferenceGrant in {target_ns} allows it",
                )
            service = self.services.get((target_ns, name))
            if service is None:
                return None, ("BackendNotFound", f"backendRef {label} not found")
            port = ref.get("port")
            if not isinstance(port, int):
                return None, ("UnsupportedValue", f"backendRef {label}: port is required")
            found = resolve_backend(
                target_ns,
                {"name": name, "port": {"number": port}},
                services=self.services,
                slices=self.slices,
            )
            return self.backends.setdefault(found.key, found), None

        return resolve

    # --- listeners ---------------------------------------------------------------------------

    def listener(
        self, gateway: Key, spec: Mapping[str, Any], index: int, *, owner_kind: str = "Gateway"
    ) -> _Listener:
        name = str(spec.get("name") or f"listener-{index}")
        port = spec.get("port")
        protocol = str(spec.get("protocol") or "")
        hostname = spec.get("hostname")
        hostname = hostname.lower() if isinstance(hostname, str) and hostname else None
        listener = _Listener(
            gateway, spec, name, port if isinstance(port, int) else 0, protocol, hostname, ()
        )
        listener.owner_kind = owner_kind
        # Route kinds (allowedRoutes.kinds; default: what the protocol serves).
        wanted = entries(mapping(spec.get("allowedRoutes")).get("kinds"))
        kinds: list[tuple[str, str]] = []
        bad_kinds: list[tuple[str, str]] = []
        for k in wanted:
            pair = (str(k.get("group", GATEWAY_GROUP) or ""), str(k.get("kind") or ""))
            (kinds if pair in _ROUTE_KINDS else bad_kinds).append(pair)
        if not wanted:
            kinds = list(_DEFAULT_KINDS) if protocol in _PROTOCOLS else []
        listener.kinds = tuple(kinds)
        accepted = condition("Accepted", True, "Accepted")
        resolved = condition("ResolvedRefs", True, "ResolvedRefs")
        if protocol not in _PROTOCOLS:
            accepted = condition(
                "Accepted", False, "UnsupportedProtocol", f"protocol {protocol!r} is not served"
            )
        elif not isinstance(port, int) or not 0 < port < 65536:
            accepted = condition("Accepted", False, "UnsupportedValue", f"port {port!r}")
        if bad_kinds:
            resolved = condition(
                "ResolvedRefs",
                False,
                "InvalidRouteKinds",
                "unsupported route kinds: " + ", ".join(f"{g}/{k}" for g, k in bad_kinds),
            )
        if protocol == "HTTPS" and accepted.status == "True":
            tls = mapping(spec.get("tls"))
            if (tls.get("mode") or "Terminate") != "Terminate":
                accepted = condition(
                    "Accepted", False, "UnsupportedValue", "only TLS mode Terminate is served"
                )
            elif resolved.status == "True":
                resolved = self.certificates(listener, tls)
        listener.conditions = {"Accepted": accepted, "ResolvedRefs": resolved}
        return listener

    def certificates(self, listener: _Listener, tls: Mapping[str, Any]) -> Condition:
        refs = entries(tls.get("certificateRefs"))
        if not refs:
            return condition("ResolvedRefs", False, "InvalidCertificateRef", "no certificateRefs")
        namespace = listener.gateway[0]
        for ref in refs:
            group, kind = str(ref.get("group") or ""), str(ref.get("kind") or "Secret")
            name = str(ref.get("name") or "")
            secret_ns = str(ref.get("namespace") or namespace)
            label = f"{secret_ns}/{name}"
            if (group, kind) != ("", "Secret"):
                return condition(
                    "ResolvedRefs",
                    False,
                    "InvalidCertificateRef",
                    f"certificateRef {group}/{kind} {label}: only core Secrets",
                )
            if not self.grants.allows(
                from_group=GATEWAY_GROUP,
                from_kind=listener.owner_kind,
                from_namespace=namespace,
                to_group="",
                to_kind="Secret",
                to_namespace=secret_ns,
                to_name=name,
            ):
                return condition(
                    "ResolvedRefs",
                    False,
                    "RefNotPermitted",
                    f"certificateRef Secret {label}: no ReferenceGrant in {secret_ns} allows it",
                )
            secret = self.secrets.get((secret_ns, name))
            made = (
                certificate_from_secret(secret, label=label)
                if secret is not None
                else f"Secret {label} not found"
            )
            if isinstance(made, str):
                return condition("ResolvedRefs", False, "InvalidCertificateRef", made)
            listener.certificates.append(made)
        return condition("ResolvedRefs", True, "ResolvedRefs")

    def frontend(
        self, gateway: Key, spec: Mapping[str, Any], listeners: Sequence[_Listener]
    ) -> None:
        """Client certificate validation (``_frontend``) on the accepted HTTPS listeners: the
        port's validation, or the conditions that keep the listener from being served."""
        checks: dict[int, FrontendCheck] = {}
        for lst in listeners:
            accepted = lst.conditions.get("Accepted")
            if lst.protocol != "HTTPS" or accepted is None or accepted.status != "True":
                continue
            check = checks.get(lst.port)
            if check is None:
                check = checks[lst.port] = frontend_validation(
                    spec,
                    lst.port,
                    namespace=gateway[0],
                    config_maps=self.config_maps,
                    grants=self.grants,
                )
            if check.resolved is not None and lst.conditions["ResolvedRefs"].status == "True":
                lst.conditions["ResolvedRefs"] = check.resolved
            if check.accepted is not None:
                lst.conditions["Accepted"] = check.accepted
            lst.client_validation = check.validation

    @staticmethod
    def conflicts(listeners: Sequence[_Listener]) -> None:
        by_port: dict[int, list[_Listener]] = {}
        for lst in listeners:
            by_port.setdefault(lst.port, []).append(lst)
        for group in by_port.values():
            protocols = {lst.protocol for lst in group}
            for lst in group:
                same = [o for o in group if o is not lst and o.hostname == lst.hostname]
                if len(protocols) > 1:
                    c = condition("Conflicted", True, "ProtocolConflict", "port shared")
                elif same:
                    c = condition("Conflicted", True, "HostnameConflict", "hostname shared")
                else:
                    c = condition("Conflicted", False, "NoConflicts")
                lst.conditions["Conflicted"] = c

    def admits(
        self, listener: _Listener, gateway_ns: str, route_ns: str, kind: str = "HTTPRoute"
    ) -> bool:
        allowed = mapping(listener.spec.get("allowedRoutes"))
        spec = mapping(allowed.get("namespaces"))
        source = spec.get("from") or "Same"
        if (GATEWAY_GROUP, kind) not in listener.kinds:
            return False
        if source == "All":
            return True
        if source == "Same":
            return route_ns == gateway_ns
        if source == "Selector":
            return selector_matches(
                mapping(spec.get("selector")), self.namespaces.get(route_ns, {})
            )
        return False


def our_classes(
    classes: Mapping[str, Mapping[str, Any]], controller: str
) -> dict[str, Mapping[str, Any]]:
    """The GatewayClasses whose ``controllerName`` is ``controller``."""
    return {
        name: cls
        for name, cls in classes.items()
        if mapping(cls.get("spec")).get("controllerName") == controller
    }


def gateways_of(
    classes: Mapping[str, object], gateways: Mapping[Key, Mapping[str, Any]]
) -> dict[Key, Mapping[str, Any]]:
    """The Gateways of ``classes``."""
    return {
        key: gw
        for key, gw in gateways.items()
        if mapping(gw.get("spec")).get("gatewayClassName") in classes
    }


def build_gateway_table(
    *,
    controller: str,
    classes: Mapping[str, Mapping[str, Any]],
    gateways: Mapping[Key, Mapping[str, Any]],
    routes: Mapping[Key, Mapping[str, Any]],
    grpc_routes: Mapping[Key, Mapping[str, Any]] | None = None,
    grants: Sequence[Mapping[str, Any]],
    services: Mapping[Key, Service],
    slices: Mapping[Key, list[EndpointSlice]],
    secrets: Mapping[Key, Secret],
    namespaces: Mapping[str, Mapping[str, str]],
    addresses: Mapping[Key, tuple[str, ...]],
    address_problems: Mapping[Key, tuple[str, str]] | None = None,
    supported_features: tuple[str, ...] = SUPPORTED_FEATURES,
    config_maps: Mapping[Key, Mapping[str, Any]] | None = None,
    edge_auths: Mapping[Key, Mapping[str, Any]] | None = None,
    listener_sets: Mapping[Key, Mapping[str, Any]] | None = None,
) -> GatewayTable:
    """The Gateway half of the route table, and the status of every object of ours."""
    build = _Build(
        controller,
        services,
        slices,
        secrets,
        Grants(grants),
        namespaces,
        config_maps=config_maps or {},
        edge_auths=edge_auths or {},
    )
    ours = our_classes(classes, controller)
    class_status = tuple(
        ClassStatus(
            name,
            _generation(cls),
            (
                condition("Accepted", True, "Accepted"),
                condition("SupportedVersion", True, "SupportedVersion"),
            ),
            supported_features,
        )
        for name, cls in sorted(ours.items())
    )
    our_gateways = dict(sorted(gateways_of(ours, gateways).items()))
    listeners: dict[Key, list[_Listener]] = {}
    for key, gw in our_gateways.items():
        specs = entries(mapping(gw.get("spec")).get("listeners"))
        made = [build.listener(key, spec, i) for i, spec in enumerate(specs)]
        build.frontend(key, gw, made)
        build.conflicts(made)
        listeners[key] = made
    sets = _listener_sets(build, our_gateways, listeners, listener_sets or {}, address_problems)
    parents: dict[tuple[str, Key], list[_Listener]] = {
        **{("Gateway", key): made for key, made in listeners.items()},
        **{(LISTENER_SET_KIND, a.key): made for a, made, _ in sets},
    }

    plans: list[_Plan] = []
    by_kind: tuple[tuple[RouteKind, Mapping[Key, Mapping[str, Any]]], ...] = (
        ("HTTPRoute", routes),
        ("GRPCRoute", grpc_routes or {}),
    )
    for kind, objects in by_kind:
        for key, route in sorted(objects.items()):
            plan = _plan_route(build, kind, key, route, parents)
            if plan is not None:
                plans.append(plan)
    _settle_cross_serving(plans)
    route_status = [_commit_route(plan) for plan in plans]

    ports: list[GatewayPort] = []
    gateway_status: list[GatewayStatus] = []
    set_status: list[ListenerSetStatus] = []
    for key, gw in our_gateways.items():
        label = f"{key[0]}/{key[1]}"
        made = listeners[key]
        addrs = addresses.get(key, ())
        listener_status = []
        for lst in made:
            programmed = lst.usable and bool(addrs)
            reason = "Programmed" if programmed else ("Invalid" if not lst.usable else "Pending")
            conds = (*lst.conditions.values(), condition("Programmed", programmed, reason))
            listener_status.append(
                ListenerStatus(lst.name, lst.kinds, len(lst.attached), tuple(conds))
            )
        valid = [lst for lst in made if lst.usable]
        all_valid = len(valid) == len(made)
        # The merged listeners (``_listenerset``): the Gateway's, then its ListenerSets' in
        # precedence order; a ListenerSet with no valid listener is not accepted.
        served = list(valid)
        attached_sets = 0
        for attachment, set_made, parent_accepted in sets:
            if attachment.gateway != key:
                continue
            set_valid = [lst for lst in set_made if lst.usable]
            set_status.append(
                _set_status(attachment, set_made, parent_accepted, len(set_valid), bool(addrs))
            )
            if set_valid:
                attached_sets += 1
                served.extend(set_valid)
        reason, why = (address_problems or {}).get(
            key, ("AddressNotAssigned", "no address assigned yet")
        )
        if reason == "UnsupportedAddress":
            accepted = condition("Accepted", False, reason, why)
        else:
            accepted = condition(
                "Accepted",
                bool(valid) or not made,
                "Accepted" if all_valid else "ListenersNotValid",
                "" if all_valid else "some listeners are not valid; see the listener conditions",
            )
        if addrs and accepted.status == "True":
            gateway_programmed = condition("Programmed", True, "Programmed")
        elif addrs:
            gateway_programmed = condition("Programmed", False, "Invalid", accepted.message)
        else:
            gateway_programmed = condition("Programmed", False, reason, why)
        gateway_conditions: tuple[Condition, ...] = (accepted, gateway_programmed)
        if insecure_fallback(gw):
            gateway_conditions += (
                condition(
                    "InsecureFrontendValidationMode",
                    True,
                    "ConfigurationChanged",
                    "a listener accepts clients whose certificate fails validation "
                    "(AllowInsecureFallback)",
                ),
            )
        gateway_status.append(
            GatewayStatus(
                key[0],
                key[1],
                _generation(gw),
                addrs,
                gateway_conditions,
                tuple(listener_status),
                attached_sets,
            )
        )
        if addrs:
            ports.extend(_ports(label, addrs, served))
    return GatewayTable(
        ports=tuple(ports),
        classes=class_status,
        gateways=tuple(gateway_status),
        routes=tuple(route_status),
        backends=dict(build.backends),
        problems=tuple(build.problems),
        listener_sets=tuple(set_status),
    )


def _listener_sets(
    build: _Build,
    gateways: Mapping[Key, Mapping[str, Any]],
    listeners: Mapping[Key, list[_Listener]],
    listener_sets: Mapping[Key, Mapping[str, Any]],
    address_problems: Mapping[Key, tuple[str, str]] | None,
) -> list[tuple[Attachment, list[_Listener], bool]]:
    """The ListenerSets of our Gateways in precedence order (``_listenerset``), each with its
    listeners (none when it is not allowed or its Gateway is not accepted) and whether its
    Gateway is accepted; conflicts across the merged listeners are resolved here."""
    out: list[tuple[Attachment, list[_Listener], bool]] = []
    by_gateway: dict[Key, list[list[_Listener]]] = {}
    for attachment in attachments(gateways, listener_sets, build.namespaces):
        own = listeners[attachment.gateway]
        # The Gateway's own ``Accepted`` (computed with its status below), decided early:
        # refused addresses, or listeners of which none is valid.
        problem = (address_problems or {}).get(attachment.gateway)
        refused = problem is not None and problem[0] == "UnsupportedAddress"
        parent_accepted = not refused and (not own or any(lst.usable for lst in own))
        made: list[_Listener] = []
        if attachment.admission == "Allowed" and parent_accepted:
            specs = entries(mapping(attachment.obj.get("spec")).get("listeners"))
            made = [
                build.listener(attachment.key, spec, i, owner_kind=LISTENER_SET_KIND)
                for i, spec in enumerate(specs)
            ]
            build.frontend(attachment.gateway, gateways[attachment.gateway], made)
            by_gateway.setdefault(attachment.gateway, []).append(made)
        out.append((attachment, made, parent_accepted))
    for gateway, sets in by_gateway.items():
        claim_ports(listeners[gateway], sets)
    return out


def _set_status(
    attachment: Attachment,
    made: Sequence[_Listener],
    parent_accepted: bool,
    valid: int,
    addressed: bool,
) -> ListenerSetStatus:
    entries_status = tuple(
        ListenerStatus(
            lst.name,
            lst.kinds,
            len(lst.attached),
            (*lst.conditions.values(), entry_programmed(lst.conditions, lst.usable, addressed)),
        )
        for lst in made
    )
    conditions = set_conditions(
        attachment,
        parent_accepted=parent_accepted,
        valid=valid,
        total=len(made),
        addressed=addressed,
    )
    return ListenerSetStatus(
        attachment.key[0],
        attachment.key[1],
        _generation(attachment.obj),
        conditions,
        entries_status,
    )


@dataclass(slots=True)
class _Parent:
    """One parentRef of ours of a route: its conditions and the listeners it attaches to."""

    ref: Mapping[str, Any]
    accepted: Condition
    resolved: Condition
    attached: list[tuple[_Listener, list[str]]]
    """(listener, the effective hostnames under it, most specific first)."""


@dataclass(slots=True)
class _Plan:
    """Where one route would attach, before cross-serving is settled."""

    kind: RouteKind
    namespace: str
    name: str
    generation: int
    created: str
    rules: list[tuple[tuple[Any, ...], GatewayRule]]
    """(match precedence, rule) of each entry of the translated route."""
    parents: list[_Parent]

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


def _plan_route(
    build: _Build,
    kind: RouteKind,
    key: Key,
    route: Mapping[str, Any],
    parent_listeners: Mapping[tuple[str, Key], list[_Listener]],
) -> _Plan | None:
    namespace, name = key
    label = f"{namespace}/{name}"
    spec = mapping(route.get("spec"))
    parents: list[_Parent] = []
    rules: list[tuple[tuple[Any, ...], GatewayRule]] = []
    unresolved: list[tuple[str, str]] = []
    problem: RouteProblem | None = None
    try:
        # Both kinds' ExtensionRef filters may name an EdgeAuth (edge-auth.md, "Gateway API").
        extensions = extension_resolver(
            namespace, build.edge_auths, secrets=build.secrets, notes=build.problems
        )
        if kind == "GRPCRoute":
            grpc = translate_grpc_rules(route, label, build.resolver(namespace, kind), extensions)
            rules = list(zip(grpc.ranks, grpc.rules, strict=True))
            unresolved = grpc.unresolved
        else:
            http = translate_rules(route, label, build.resolver(namespace, kind), extensions)
            rules = [(rule.match.rank(), rule) for rule in http.rules]
            unresolved = http.unresolved
    except RouteProblem as exc:
        problem = exc
        build.problems.append(f"{kind} {label}: {exc.message}")
    raw_hosts = spec.get("hostnames") or []
    hostnames = (
        [h.lower() for h in raw_hosts if isinstance(h, str)] if isinstance(raw_hosts, list) else []
    )
    for ref in entries(spec.get("parentRefs")):
        group = ref.get("group", GATEWAY_GROUP)
        parent_kind = ref.get("kind", "Gateway")
        parent_key = (str(ref.get("namespace") or namespace), str(ref.get("name") or ""))
        # A Gateway's own listeners, or a ListenerSet's (``_listenerset``): a Gateway parentRef
        # never reaches the listeners its ListenerSets add.
        parent = (
            parent_listeners.get((str(parent_kind), parent_key)) if group == GATEWAY_GROUP else None
        )
        if parent is None:
            continue  # not a parent of ours: another controller reports on it
        candidates = [
            lst
            for lst in parent
            if (ref.get("sectionName") is None or ref.get("sectionName") == lst.name)
            and (ref.get("port") is None or ref.get("port") == lst.port)
        ]
        accepted: Condition
        attached: list[tuple[_Listener, list[str]]] = []
        if problem is not None:
            accepted = condition("Accepted", False, problem.reason, problem.message)
        elif not candidates:
            accepted = condition(
                "Accepted", False, "NoMatchingParent", "no listener matches sectionName/port"
            )
        else:
            allowed = [
                lst
                for lst in candidates
                if lst.attachable and build.admits(lst, parent_key[0], namespace, kind)
            ]
            for lst in allowed:
                names = [n for h in hostnames if (n := intersect(lst.hostname, h)) is not None]
                if not hostnames:
                    names = [lst.hostname or ANY_HOST]
                if names:
                    attached.append((lst, sorted(set(names), key=specificity)))
            if not allowed:
                accepted = condition(
                    "Accepted", False, "NotAllowedByListeners", "no listener admits this route"
                )
            elif not attached:
                accepted = condition(
                    "Accepted",
                    False,
                    "NoMatchingListenerHostname",
                    "no listener hostname intersects the route's hostnames",
                )
            else:
                accepted = condition("Accepted", True, "Accepted")
        if unresolved:
            reason, message = unresolved[0]
            resolved = condition("ResolvedRefs", False, reason, message)
        else:
            resolved = condition("ResolvedRefs", True, "ResolvedRefs")
        parents.append(_Parent(dict(ref), accepted, resolved, attached))
    if not parents:
        return None
    return _Plan(kind, namespace, name, _generation(route), _created(route), rules, parents)


def _overlap(ours: Sequence[str], theirs: Sequence[str]) -> bool:
    """Whether two routes' effective hostnames on one listener share a host."""
    return any(intersect(a, b) is not None for a in ours for b in theirs)


def _settle_cross_serving(plans: Sequence[_Plan]) -> None:
    """Detach, listener by listener, the routes that lose to a route of the other kind."""
    on: dict[int, list[tuple[_Plan, _Parent, list[str]]]] = {}
    for plan in plans:
        for parent in plan.parents:
            for lst, names in parent.attached:
                on.setdefault(id(lst), []).append((plan, parent, names))
    for entries_ in on.values():
        kinds = {plan.kind for plan, _, _ in entries_}
        if len(kinds) < 2:
            continue
        kept: list[tuple[_Plan, list[str]]] = []
        for plan, parent, names in sorted(entries_, key=lambda e: (e[0].created, e[0].label)):
            winner = next(
                (
                    other
                    for other, other_names in kept
                    if other.kind != plan.kind and _overlap(names, other_names)
                ),
                None,
            )
            if winner is None:
                kept.append((plan, names))
                continue
            parent.attached = [(lst, n) for lst, n in parent.attached if n is not names]
            if not parent.attached and parent.accepted.status == "True":
                parent.accepted = condition(
                    "Accepted",
                    False,
                    "NotAllowedByListeners",
                    f"{winner.kind} {winner.label} already serves these hostnames on the "
                    "listener (cross-serving: the older route is accepted)",
                )


def _commit_route(plan: _Plan) -> RouteStatus:
    """Attach the route's rules to its listeners; its status."""
    for parent in plan.parents:
        for lst, names in parent.attached:
            lst.attached.add(f"{plan.kind} {plan.label}")
            for host in names:
                bucket = lst.routes.setdefault(host, [])
                for index, (rank, rule) in enumerate(plan.rules):
                    key = (*rank, plan.created, plan.label, rule.rule, index)
                    bucket.append((key, rule))
    return RouteStatus(
        plan.kind,
        plan.namespace,
        plan.name,
        plan.generation,
        tuple(ParentStatus(p.ref, (p.accepted, p.resolved)) for p in plan.parents),
    )


def _ports(label: str, addrs: tuple[str, ...], valid: Sequence[_Listener]) -> list[GatewayPort]:
    by_port: dict[int, list[_Listener]] = {}
    for lst in valid:
        by_port.setdefault(lst.port, []).append(lst)
    out = []
    for port, group in sorted(by_port.items()):
        built = []
        certs: dict[str, Certificate] = {}
        default_cert = None
        validation = next((v for v in (lst.client_validation for lst in group) if v), None)
        for lst in sorted(group, key=lambda item: specificity(item.hostname or ANY_HOST)):
            hosts = {}
            for host, keyed in lst.routes.items():
                ordered = [rule for _, rule in sorted(keyed, key=lambda e: e[0])]
                hosts[host] = GatewayHost(
                    host,
                    tuple(ordered),
                    any(r.match.needs_headers for r in ordered),
                    any(r.match.needs_query for r in ordered),
                )
            built.append(
                GatewayListener(label, lst.name, port, lst.protocol, lst.hostname, hosts)  # type: ignore[arg-type]
            )
            if lst.certificates:
                if lst.hostname:
                    certs.setdefault(lst.hostname, lst.certificates[0])
                elif default_cert is None:
                    default_cert = lst.certificates[0].fingerprint
                    certs.setdefault(ANY_HOST, lst.certificates[0])
        out.append(
            GatewayPort(
                label,
                addrs,
                port,
                group[0].protocol,  # type: ignore[arg-type]
                tuple(built),
                CertificateMap(certs),
                default_cert,
                validation,
            )
        )
    return out
