"""Gateway rules: a Gateway's class, its listeners' TLS, who may attach, and plain HTTP.

Field semantics from the Gateway API v1 reference (https://gateway-api.sigs.k8s.io/reference/
spec/#gateway): ``tls.mode`` defaults to ``Terminate``; ``allowedRoutes.namespaces.from``
defaults to ``Same``; a listener of ``protocol: HTTP`` serves plain text. Rule semantics from
``policy-rules.md`` ("Gateway API and edge-authentication rules"); the Ingress counterparts are
``ing-class-allowed``, ``ing-require-tls``, ``ing-no-plain-http``, ``ing-tls-secret-provisioned``
and ``tls-cert-covers-hosts``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from kexpose.hosts import covers
from kexpose.policy.rules._gatewayapi import (
    can_attach,
    gateway_parents,
    is_gateway,
    listeners,
    secret_refs,
)
from kexpose.policy.rules._kube import (
    Context,
    Finding,
    Obj,
    annotations_of,
    as_map,
    as_seq,
    as_str,
    spec,
)
from kexpose.policy.rules._stack import Stack
from kexpose.policy.rules.certificates import TLS_TYPE, read_secret
from kexpose.policy.rules.references import ISSUER_ANNOTATIONS, tls_secret_problem

__all__ = [
    "allowed_routes_restricted",
    "class_allowed",
    "https_listener_tls",
    "no_plain_http",
    "tls_cert_covers_hostname",
    "tls_secret_provisioned",
]

_TERMINATE: Final = "Terminate"


def class_allowed(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if not is_gateway(obj):
        return
    allowed = ctx.config.allowed_gateway_classes
    listed = ", ".join(allowed) or "none"
    name = as_str(spec(obj).get("gatewayClassName"))
    if name in allowed:
        return
    said = "is not set" if not name else f"is {name!r}, which is not allowed"
    yield Finding(
        obj,
        "spec.gatewayClassName",
        f"{said} (allowed_gateway_classes: {listed}); another controller would program this "
        "Gateway.",
        f"Set spec.gatewayClassName to one of: {listed}.",
    )


def https_listener_tls(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if not is_gateway(obj):
        return
    for listener in listeners(obj):
        if listener.protocol != "HTTPS":
            continue  # a TLS listener may pass through; HTTP is gw-no-plain-http's business
        tls = listener.raw.get("tls")
        if tls is None:
            yield Finding(
                obj,
                f"{listener.field}.tls",
                f"is missing on HTTPS listener {listener.name!r}, so it has no certificate to "
                "terminate TLS with.",
                "Add tls.certificateRefs naming the kubernetes.io/tls Secret for its hostname.",
            )
            continue
        item = as_map(tls)
        mode = as_str(item.get("mode")) or _TERMINATE  # Terminate is the CRD's default
        if mode == _TERMINATE and not as_seq(item.get("certificateRefs")):
            yield Finding(
                obj,
                f"{listener.field}.tls.certificateRefs",
                f"is missing or empty on HTTPS listener {listener.name!r}, which terminates "
                "TLS (mode Terminate), so it has no certificate.",
                "Name the kubernetes.io/tls Secret holding the listener's certificate.",
            )


def allowed_routes_restricted(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if not is_gateway(obj):
        return
    for listener in listeners(obj):
        namespaces = as_map(as_map(listener.raw.get("allowedRoutes")).get("namespaces"))
        if namespaces.get("from") == "All":
            yield Finding(
                obj,
                f"{listener.field}.allowedRoutes.namespaces.from",
                f"is 'All' on listener {listener.name!r}: a route in any namespace of the "
                "cluster can attach to it and claim its host names.",
                "Use 'Same' (the default) or 'Selector' with a label selector naming the "
                "app namespaces.",
            )


def _redirects_to_https(rule: Mapping[str, Any]) -> bool:
    for entry in as_seq(rule.get("filters")):
        f = as_map(entry)
        if (
            f.get("type") == "RequestRedirect"
            and as_map(f.get("requestRedirect")).get("scheme") == "https"
        ):
            return True
    return False


#: kexpose's opt-out of the HTTPS redirect (``kexpose.model.PLAIN_HTTP_ANNOTATION``).
_OPT_OUT: Final = "kexpose.dev/ssl-redirect"


def no_plain_http(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for route in stack.routes:
        if route.kind != "HTTPRoute":
            continue
        rules = as_seq(spec(route).get("rules"))
        if not rules:
            continue  # a route with no rules is not flagged (policy-rules.md)
        plain: list[str] = []
        for parent in gateway_parents(route):
            gateway = stack.gateways.get((parent.namespace, parent.name or ""))
            if gateway is None:
                continue
            plain.extend(
                f"{gateway.ref} listener {listener.name!r} (port {listener.port})"
                for listener in listeners(gateway)
                if listener.protocol == "HTTP" and can_attach(parent, listener)
            )
        if not plain:
            continue
        shown = ", ".join(dict.fromkeys(plain))
        # kexpose renders an app's explicit opt-out (kexpose.dev/ssl-redirect: "false", carried
        # onto its HTTPRoutes) as this attachment: name it, as ing-no-plain-http does.
        opt_out = annotations_of(route).get(_OPT_OUT)
        said = (
            f" It opts out of HTTPS: {_OPT_OUT} is {opt_out!r}."
            if isinstance(opt_out, str) and opt_out.lower() == "false"
            else ""
        )
        for j, rule in enumerate(rules):
            if _redirects_to_https(as_map(rule)):
                continue
            yield Finding(
                route,
                f"spec.rules[{j}].filters",
                f"has no RequestRedirect filter with scheme 'https', yet the route can attach "
                f"to the plain HTTP {shown}: this rule would serve the app without TLS.{said}",
                "Attach the route to the HTTPS listener only (parentRefs[].sectionName), or "
                "give this rule a RequestRedirect filter with scheme: https"
                + (f"; remove {_OPT_OUT}." if said else "."),
            )


def _issuer_annotated(gateway: Obj) -> bool:
    # cert-manager's gateway-shim creates every listener Secret of an annotated Gateway.
    notes = annotations_of(gateway)
    return any(notes.get(a) for a in ISSUER_ANNOTATIONS)


def tls_secret_provisioned(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for gateway in stack.gateway_list:
        if _issuer_annotated(gateway):
            continue
        for listener in listeners(gateway):
            if listener.protocol != "HTTPS":
                continue
            for ref in secret_refs(gateway, listener):
                if ref.name is None:
                    reason = "the ref names no Secret"
                elif (ref.namespace, ref.name) in stack.certificate_secrets:
                    continue
                elif (secret := stack.secrets.get((ref.namespace, ref.name))) is not None:
                    problem = tls_secret_problem(secret)
                    if problem is None:
                        continue
                    reason = f"Secret {ref.namespace}/{ref.name} {problem}"
                else:
                    reason = f"no Secret {ref.name!r} exists in namespace {ref.namespace!r}"
                yield Finding(
                    gateway,
                    f"{ref.field}.name",
                    f"of HTTPS listener {listener.name!r} is not provisioned by this stack: "
                    f"{reason}, and no cert-manager Certificate or issuer annotation "
                    "produces it.",
                    f"Add a {TLS_TYPE} Secret with tls.crt and tls.key in namespace "
                    f"{ref.namespace!r}, a cert-manager Certificate with this secretName, or a "
                    "cert-manager.io/cluster-issuer annotation on the Gateway.",
                )


def tls_cert_covers_hostname(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for gateway in stack.gateway_list:
        for listener in listeners(gateway):
            if listener.protocol != "HTTPS" or listener.hostname is None:
                continue  # no hostname: the listener serves whatever its certificate says
            read: list[tuple[str, tuple[str, ...]]] = []
            for ref in secret_refs(gateway, listener):
                secret = stack.secrets.get((ref.namespace, ref.name or ""))
                cert = read_secret(secret) if secret is not None else None
                if cert is not None and cert.info is not None:
                    read.append((f"{ref.namespace}/{ref.name}", cert.info.dns_names))
            if not read:
                continue  # only certificates in the stack can be read
            # covers(): a wildcard hostname is covered only by that same wildcard SAN.
            if any(covers(san, listener.hostname) for _, sans in read for san in sans):
                continue
            listed = "; ".join(f"{n}: {', '.join(sans) or 'no DNS names'}" for n, sans in read)
            yield Finding(
                gateway,
                f"{listener.field}.hostname",
                f"{listener.hostname!r} of HTTPS listener {listener.name!r} is covered by no "
                f"DNS SAN of its certificates ({listed}); clients would reject the connection.",
                f"Issue a certificate whose SANs include {listener.hostname!r}.",
            )
