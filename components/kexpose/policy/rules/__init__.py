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

Pure: no I/O, no clock, no Pulumi. The evaluation time reaches the rules through ``Context``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from kexpose.environment import ENVIRONMENTS, Environment
from kexpose.policy.rules import certificates, ingresses, nginx, references, services
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
)  # fmt: skip

#: id -> rule, in the specification's order.
RULES: Final[Mapping[str, Rule]] = MappingProxyType({r.id: r for r in _TABLE})
