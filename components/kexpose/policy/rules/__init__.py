"""The rule table: every exposure rule once, as data the engine, the pack and the CLI look up.

Each row gives the rule's id (public: users silence, configure and grep it), its scope
(R: one object at a time, a CrossGuard ResourceValidationPolicy; S: the whole stack, a
StackValidationPolicy), the kinds an R rule reads, its severity, and its enforcement in each
environment where it is active. An environment missing from ``enforcement`` is one where the
rule is inactive: it reports nothing there (``not_applicable`` in the pack).

Ids, scopes, semantics and active environments are those of ``policy-rules.md``; severity and
enforcement are the "our default" column of ``policy-anchors.md``. Where that column says
"mandatory in prod, advisory in staging" (only ``svc-no-nodeport``), the row says so; every
other rule has one level wherever it is active.

The 16 Gateway API and edge-authentication rules of the second round have no column in
``policy-anchors.md``; each takes the severity and level of its Ingress counterpart (named in
the comment above its row), mandatory wherever it is active: each catches an exposure the
environment forbids, or a reference the implementation would refuse at run time.

Pure: no I/O, no clock, no Pulumi. The evaluation time reaches the rules through ``Context``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from kexpose.environment import ENVIRONMENTS, Environment
from kexpose.policy.rules import (
    auth,
    certificates,
    gateways,
    ingresses,
    nginx,
    references,
    routes,
    services,
)
from kexpose.policy.rules._kube import Context, Finding, Obj, Scope
from kexpose.policy.rules._stack import Stack

__all__ = [
    "RULES",
    "Context",
    "Enforcement",
    "Finding",
    "Obj",
    "ResourceCheck",
    "Rule",
    "Scope",
    "Severity",
    "Stack",
    "StackCheck",
]

Severity = Literal["low", "medium", "high", "critical"]
Enforcement = Literal["mandatory", "advisory"]
ResourceCheck = Callable[[Obj, Context], Iterable[Finding]]
StackCheck = Callable[[Stack, Context], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table."""

    id: str
    scope: Scope
    severity: Severity
    enforcement: Mapping[Environment, Enforcement]
    description: str
    kinds: frozenset[str] = frozenset()
    """R rules: the object kinds the check reads (S rules find their own)."""
    check_resource: ResourceCheck | None = None
    check_stack: StackCheck | None = None
    config_keys: tuple[str, ...] = ()
    """The ``PolicyConfig`` keys the check reads (the pack's per-policy config schema)."""

    @property
    def active(self) -> tuple[Environment, ...]:
        return tuple(e for e in ENVIRONMENTS if e in self.enforcement)

    def is_active(self, environment: Environment) -> bool:
        return environment in self.enforcement


_ALL: Final[tuple[Environment, ...]] = ENVIRONMENTS
_STAGING_PROD: Final[tuple[Environment, ...]] = ("staging", "prod")
_PROD: Final[tuple[Environment, ...]] = ("prod",)


def _levels(envs: tuple[Environment, ...], level: Enforcement) -> Mapping[Environment, Enforcement]:
    return MappingProxyType(dict.fromkeys(envs, level))


def _r(
    rule_id: str,
    kinds: str,
    envs: tuple[Environment, ...],
    severity: Severity,
    level: Enforcement | Mapping[Environment, Enforcement],
    check: ResourceCheck,
    description: str,
    reads: str = "",
) -> Rule:
    enforcement = _levels(envs, level) if isinstance(level, str) else MappingProxyType(dict(level))
    return Rule(
        rule_id,
        "R",
        severity,
        enforcement,
        description,
        frozenset(kinds.split()),
        check_resource=check,
        config_keys=tuple(reads.split()),
    )


def _s(
    rule_id: str,
    envs: tuple[Environment, ...],
    severity: Severity,
    level: Enforcement,
    check: StackCheck,
    description: str,
    reads: str = "",
) -> Rule:
    return Rule(
        rule_id,
        "S",
        severity,
        _levels(envs, level),
        description,
        check_stack=check,
        config_keys=tuple(reads.split()),
    )


_TABLE: Final[tuple[Rule, ...]] = (
    # --- Services -----------------------------------------------------------------------------
    # NodePort opens the port on every node; dev clusters (kind, minikube) legitimately use it.
    _r("svc-no-nodeport", "Service", _STAGING_PROD, "high",
       {"staging": "advisory", "prod": "mandatory"}, services.no_nodeport,
       "Services must not be NodePort."),
    # Opt-in strictness: many cloud load balancers still need node ports, so advisory.
    _r("svc-lb-node-ports", "Service", _PROD, "medium", "advisory", services.lb_node_ports,
       "LoadBalancer Services should not open node ports."),
    _r("svc-no-loadbalancer", "Service", _ALL, "medium", "mandatory", services.no_loadbalancer,
       "Only allow-listed Services may be LoadBalancers.", reads="allowed_loadbalancers"),
    _r("svc-lb-source-ranges", "Service", _PROD, "high", "mandatory", services.lb_source_ranges,
       "Non-public LoadBalancers must restrict their source ranges.",
       reads="public_loadbalancers"),
    _r("svc-no-external-ips", "Service", _ALL, "high", "mandatory", services.no_external_ips,
       "Services must not claim external IPs outside the allow-list (CVE-2020-8554).",
       reads="allowed_external_ips"),
    _r("svc-externalname-no-loopback", "Service", _ALL, "high", "mandatory",
       services.externalname_no_loopback, "ExternalName Services must not point at loopback."),
    # kube-score grades this critical; advisory here because a stack may select pods that
    # another stack deploys.
    _s("svc-selector-matches-workload", _ALL, "medium", "advisory",
       references.selector_matches_workload,
       "Service selectors and named targetPorts must match a workload in the namespace."),
    # --- Ingresses ----------------------------------------------------------------------------
    _r("ing-require-tls", "Ingress", _STAGING_PROD, "high", "mandatory", ingresses.require_tls,
       "Ingresses must terminate TLS with a named Secret.", reads="allow_default_certificate"),
    _r("ing-tls-covers-hosts", "Ingress", _STAGING_PROD, "high", "mandatory",
       ingresses.tls_covers_hosts, "Every Ingress host must be listed in its TLS hosts."),
    _r("ing-host-required", "Ingress", _STAGING_PROD, "high", "mandatory",
       ingresses.host_required, "Every Ingress rule must name a host."),
    _r("ing-no-wildcard-host", "Ingress", _PROD, "medium", "mandatory",
       ingresses.no_wildcard_host, "Ingress rule hosts must not be wildcards."),
    _r("ing-no-default-backend", "Ingress", _STAGING_PROD, "high", "mandatory",
       ingresses.no_default_backend, "Ingresses must not set a default backend."),
    _r("ing-class-allowed", "Ingress", _ALL, "high", "mandatory", ingresses.class_allowed,
       "Ingresses must use an allowed IngressClass, stated once.",
       reads="allowed_ingress_classes"),
    _r("ing-no-deprecated-class-annotation", "Ingress", _ALL, "low", "advisory",
       ingresses.no_deprecated_class_annotation,
       "The kubernetes.io/ingress.class annotation is deprecated."),
    _r("ing-no-deprecated-api", "Ingress", _ALL, "high", "mandatory",
       ingresses.no_deprecated_api, "Ingresses must use networking.k8s.io/v1."),
    _r("ing-no-plain-http", "Ingress", _PROD, "high", "mandatory", ingresses.no_plain_http,
       "Ingresses must not opt out of HTTPS."),
    _s("ing-unique-host-path", _ALL, "high", "mandatory", references.unique_host_path,
       "No two Ingresses of one class may claim the same host and path."),
    _s("ing-backend-service-exists", _ALL, "high", "mandatory",
       references.backend_service_exists,
       "Ingress backends must name a Service and port that exist in the stack."),
    _s("ing-tls-secret-provisioned", _STAGING_PROD, "high", "mandatory",
       references.tls_secret_provisioned,
       "Every Ingress TLS Secret must be provisioned by the stack or by cert-manager."),
    # --- Certificates -------------------------------------------------------------------------
    _r("tls-cert-not-expiring", "Secret", _PROD, "medium", "mandatory",
       certificates.cert_not_expiring,
       "TLS certificates must stay valid for min_cert_days_remaining days.",
       reads="min_cert_days_remaining now"),
    _s("tls-cert-covers-hosts", _STAGING_PROD, "high", "mandatory",
       certificates.cert_covers_hosts,
       "The certificate in an Ingress's TLS Secret must cover its TLS hosts."),
    # --- ingress-nginx ------------------------------------------------------------------------
    _r("nginx-no-snippets", "Ingress ConfigMap", _ALL, "critical", "mandatory",
       nginx.no_snippets, "No ingress-nginx configuration snippets (CVE-2021-25742)."),
    _r("nginx-annotation-injection", "Ingress", _ALL, "critical", "mandatory",
       nginx.annotation_injection,
       "ingress-nginx annotation values must not carry configuration injection."),
    _s("nginx-controller-patched", _ALL, "critical", "mandatory", nginx.controller_patched,
       "The ingress-nginx controller must be a patched release (CVE-2025-1974).",
       reads="nginx_fixed_versions"),
    _s("nginx-admission-not-exposed", _ALL, "critical", "mandatory",
       nginx.admission_not_exposed,
       "The ingress-nginx admission webhook must stay cluster-internal (CVE-2025-1974)."),
    _r("ing-path-safe", "Ingress", _ALL, "high", "mandatory", ingresses.path_safe,
       "Ingress paths must be absolute, plain and away from system paths (CVE-2021-25745)."),
    # --- Gateway API: Gateways ----------------------------------------------------------------
    # as ing-class-allowed
    _r("gw-class-allowed", "Gateway", _ALL, "high", "mandatory", gateways.class_allowed,
       "Gateways must use an allowed GatewayClass.", reads="allowed_gateway_classes"),
    # as ing-require-tls
    _r("gw-https-listener-tls", "Gateway", _STAGING_PROD, "high", "mandatory",
       gateways.https_listener_tls, "HTTPS listeners must terminate TLS with a certificate."),
    # as svc-lb-source-ranges: who may reach the door, in prod.
    _r("gw-allowed-routes-restricted", "Gateway", _PROD, "high", "mandatory",
       gateways.allowed_routes_restricted,
       "Gateway listeners must not accept routes from every namespace."),
    # as ing-no-plain-http
    _s("gw-no-plain-http", _PROD, "high", "mandatory", gateways.no_plain_http,
       "HTTPRoutes on a plain HTTP listener must only redirect to HTTPS."),
    # as ing-tls-secret-provisioned
    _s("gw-tls-secret-provisioned", _STAGING_PROD, "high", "mandatory",
       gateways.tls_secret_provisioned,
       "Every HTTPS listener Secret must be provisioned by the stack or by cert-manager."),
    # as tls-cert-covers-hosts
    _s("gw-tls-cert-covers-hostname", _STAGING_PROD, "high", "mandatory",
       gateways.tls_cert_covers_hostname,
       "An HTTPS listener's certificate must cover its hostname."),
    # --- Gateway API: routes ------------------------------------------------------------------
    # as ing-host-required
    _r("route-hostnames-required", "HTTPRoute GRPCRoute", _STAGING_PROD, "high", "mandatory",
       routes.hostnames_required, "Every route must list its host names."),
    # as ing-no-wildcard-host
    _r("route-no-wildcard-hostname", "HTTPRoute GRPCRoute", _PROD, "medium", "mandatory",
       routes.no_wildcard_hostname, "Route host names must not be wildcards."),
    # as ing-backend-service-exists: the route would attach to nothing.
    _s("route-parent-exists", _ALL, "high", "mandatory", routes.parent_exists,
       "Routes must attach to a Gateway and listener that exist in the stack."),
    # as ing-backend-service-exists
    _s("route-backend-exists", _ALL, "high", "mandatory", routes.backend_exists,
       "Route backends must name a Service and port that exist in the stack."),
    # as ing-backend-service-exists: without a grant the implementation refuses the reference.
    _s("route-cross-namespace-granted", _ALL, "high", "mandatory",
       routes.cross_namespace_granted,
       "References into another namespace must be allowed by a ReferenceGrant."),
    # as ing-unique-host-path
    _s("route-unique-match", _ALL, "high", "mandatory", routes.unique_match,
       "No two HTTPRoutes on one Gateway may claim the same host and match."),
    # --- Edge authentication (edge-auth.md) -----------------------------------------------------
    # Each reads an Ingress's annotations and a kexpose EdgeAuth alike (auth.py's docstring).
    # as ing-require-tls: credentials in clear are worse than content in clear. Scope S, where
    # the specification says R: an HTTPRoute rule's basic auth and plain-HTTP listeners are in
    # its EdgeAuth and Gateways, beside the route (policies/README.md).
    _s("auth-basic-requires-tls", _STAGING_PROD, "high", "mandatory", auth.basic_requires_tls,
       "Basic auth (Ingress or EdgeAuth) must never be served over plain HTTP."),
    # as ing-tls-secret-provisioned, in every environment: the proxy fails closed (503).
    _s("auth-secret-provisioned", _ALL, "high", "mandatory", auth.secret_provisioned,
       "Auth Secrets an Ingress or EdgeAuth names must exist in the stack with the right keys."),
    # as svc-externalname-no-loopback, which it extends to link-local and unspecified.
    _r("auth-url-safe", "Ingress EdgeAuth", _ALL, "high", "mandatory", auth.url_safe,
       "Auth and JWKS URLs must be http(s) and not aim at loopback or metadata addresses."),
    # as ing-require-tls: RFC 8725 §3.8-3.9.
    _r("auth-jwt-audience-required", "Ingress EdgeAuth", _PROD, "high", "mandatory",
       auth.jwt_audience_required, "JWT auth must pin the issuer and the audiences."),
)  # fmt: skip

#: id -> rule, in the specification's order.
RULES: Final[Mapping[str, Rule]] = MappingProxyType({r.id: r for r in _TABLE})
