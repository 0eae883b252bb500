"""Builders for the Kubernetes objects the policy tests feed the rules, and a realistic stack.

The realistic stack mirrors what the project's components render: an app (Deployment, ClusterIP
Service, Ingress with TLS, a kubernetes.io/tls Secret with a certificate generated for this test
run), the controller's LoadBalancer Service ``kexpose-system/kexpose-controller`` and Deployment,
and the IngressClass ``kexpose``. Certificates are generated per run, never committed.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from kexpose.certs import KeyPair, self_signed
from kexpose.environment import Environment
from kexpose.policy import PolicyConfig, Violation, evaluate

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
NS = "shop"


def service(
    name: str = "web",
    ns: str = NS,
    *,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations is not None:
        meta["annotations"] = annotations
    if labels is not None:
        meta["labels"] = labels
    spec.setdefault("ports", [{"name": "http", "port": 80, "targetPort": "http"}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def lb(name: str = "web", ns: str = NS, **spec: Any) -> dict[str, Any]:
    return service(name, ns, type="LoadBalancer", **spec)


def ingress(
    name: str = "web",
    ns: str = NS,
    *,
    annotations: dict[str, str] | None = None,
    api_version: str = "networking.k8s.io/v1",
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": api_version, "kind": "Ingress", "metadata": meta, "spec": spec}


def backend(service_name: str = "web", port: int | str = 80) -> dict[str, Any]:
    key = "number" if isinstance(port, int) else "name"
    return {"service": {"name": service_name, "port": {key: port}}}


def http(
    *paths: tuple[str, str], service_name: str = "web", port: int | str = 80
) -> dict[str, Any]:
    return {
        "paths": [
            {"path": p, "pathType": t, "backend": backend(service_name, port)} for p, t in paths
        ]
    }


def rule(host: str | None, *paths: tuple[str, str], **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"http": http(*(paths or (("/", "Prefix"),)), **kw)}
    if host is not None:
        r["host"] = host
    return r


def good_ingress(
    name: str = "web",
    ns: str = NS,
    host: str = "shop.example.com",
    tls_name: str = "web-tls",
    klass: str = "kexpose",
    **kw: Any,
) -> dict[str, Any]:
    return ingress(
        name,
        ns,
        ingressClassName=klass,
        tls=[{"hosts": [host], "secretName": tls_name}],
        rules=[rule(host)],
        **kw,
    )


@lru_cache(maxsize=32)
def key_pair(hosts: tuple[str, ...], days: int = 365, start: dt.datetime = NOW) -> KeyPair:
    """Generated per run: no key material lives in the repository."""
    return self_signed(hosts, days=days, now=start)


def cert_pem(hosts: tuple[str, ...], days: int = 365, start: dt.datetime = NOW) -> str:
    return key_pair(hosts, days, start).cert_pem


def tls_secret(
    name: str = "web-tls",
    ns: str = NS,
    hosts: Sequence[str] = ("shop.example.com",),
    *,
    days: int = 365,
    pem: str | None = None,
    kind: str = "kubernetes.io/tls",
    string_data: bool = False,
) -> dict[str, Any]:
    text = pem if pem is not None else cert_pem(tuple(hosts), days)
    key = key_pair(tuple(hosts), days).key_pem
    if string_data:
        payload: dict[str, Any] = {"stringData": {"tls.crt": text, "tls.key": key}}
    else:
        payload = {
            "data": {
                "tls.crt": base64.b64encode(text.encode()).decode(),
                "tls.key": base64.b64encode(key.encode()).decode(),
            }
        }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": kind,
        **payload,
    }


def deployment(
    name: str = "web",
    ns: str = NS,
    *,
    labels: dict[str, str] | None = None,
    ports: Sequence[dict[str, Any]] = ({"name": "http", "containerPort": 8080},),
    image: str = "registry.example.com/shop/web:1.4.2",
    kind: str = "Deployment",
) -> dict[str, Any]:
    pod_labels = labels if labels is not None else {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": [{"name": name, "image": image, "ports": list(ports)}]},
            },
        },
    }


def configmap(name: str, ns: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


def app(name: str = "web", ns: str = NS, host: str = "shop.example.com") -> list[dict[str, Any]]:
    """One exposed app as the components render it: Deployment, Service, Ingress, TLS Secret."""
    return [
        deployment(name, ns),
        service(name, ns, selector={"app": name}),
        good_ingress(name, ns, host=host, tls_name=f"{name}-tls"),
        tls_secret(f"{name}-tls", ns, (host,)),
    ]


def controller() -> list[dict[str, Any]]:
    """The project's ingress controller: LoadBalancer Service, Deployment, IngressClass."""
    ns = "kexpose-system"
    selector = {"app.kubernetes.io/name": "kexpose-controller"}
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "kexpose"},
            "spec": {"controller": "kexpose.dev/ingress-controller"},
        },
        deployment(
            "kexpose-controller",
            ns,
            labels=selector,
            ports=(
                {"name": "http", "containerPort": 8080},
                {"name": "https", "containerPort": 8443},
            ),
            image="ghcr.io/kexpose/kexpose-proxy:0.1.0",
        ),
        service(
            "kexpose-controller",
            ns,
            type="LoadBalancer",
            selector=selector,
            allocateLoadBalancerNodePorts=False,
            ports=[
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "https", "port": 443, "targetPort": "https"},
            ],
        ),
    ]


def realistic_stack() -> list[dict[str, Any]]:
    return [
        *controller(),
        *app("web", "shop", "shop.example.com"),
        *app("api", "shop", "api.shop.example.com"),
    ]


def check(
    objects: Sequence[dict[str, Any]],
    env: Environment = "prod",
    *,
    rule_id: str | None = None,
    config: PolicyConfig | None = None,
    **overrides: Any,
) -> list[Violation]:
    """Evaluate (spec defaults plus ``overrides``, clock at NOW), optionally one rule's results."""
    base = config if config is not None else PolicyConfig()
    cfg = PolicyConfig.model_validate({**base.model_dump(), "now": NOW, **overrides})
    found = evaluate(objects, environment=env, config=cfg)
    return [v for v in found if rule_id is None or v.rule == rule_id]


def found_at(
    objects: Sequence[dict[str, Any]], env: Environment, rule_id: str, **overrides: Any
) -> list[tuple[str, str]]:
    """(resource, field) of each violation of ``rule_id`` (see :func:`check`)."""
    return [(v.resource, v.field) for v in check(objects, env, rule_id=rule_id, **overrides)]


def fields(violations: Sequence[Violation]) -> list[str]:
    return [v.field for v in violations]


def mandatory_violations(
    objects: Sequence[dict[str, Any]], environment: Environment
) -> list[Violation]:
    """What keeps a rendered stack from passing its own environment: call this on the shipped
    stacks' rendered objects (project defaults, the real clock)."""
    found = evaluate(objects, environment=environment, config=PolicyConfig.project())
    return [v for v in found if v.enforcement == "mandatory"]


# --- Gateway API ------------------------------------------------------------------------------

GW_API = "gateway.networking.k8s.io/v1"
GRANT_API = "gateway.networking.k8s.io/v1beta1"
EDGE_NS = "kexpose-system"


def listener(
    name: str = "https",
    protocol: str = "HTTPS",
    port: int = 443,
    hostname: str | None = "shop.example.com",
    *,
    certificate: str | None = "web-tls",
    certificate_ns: str | None = None,
    tls: dict[str, Any] | None = None,
    allowed_from: str | None = "Same",
) -> dict[str, Any]:
    """A listener; an HTTPS one terminates TLS with the Secret ``certificate`` (in
    ``certificate_ns``, else the Gateway's namespace) unless ``tls`` says otherwise."""
    item: dict[str, Any] = {"name": name, "protocol": protocol, "port": port}
    if hostname is not None:
        item["hostname"] = hostname
    if tls is not None:
        item["tls"] = tls
    elif protocol == "HTTPS" and certificate is not None:
        ref: dict[str, Any] = {"kind": "Secret", "group": "", "name": certificate}
        if certificate_ns is not None:
            ref["namespace"] = certificate_ns
        item["tls"] = {"mode": "Terminate", "certificateRefs": [ref]}
    if allowed_from is not None:
        item["allowedRoutes"] = {"namespaces": {"from": allowed_from}}
    return item


def gateway(
    name: str = "edge",
    ns: str = EDGE_NS,
    *listeners: dict[str, Any],
    klass: str | None = "kexpose",
    annotations: dict[str, str] | None = None,
    api_version: str = GW_API,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations is not None:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {"listeners": list(listeners) or [listener()]}
    if klass is not None:
        spec["gatewayClassName"] = klass
    return {"apiVersion": api_version, "kind": "Gateway", "metadata": meta, "spec": spec}


def gateway_class(name: str = "kexpose") -> dict[str, Any]:
    return {
        "apiVersion": GW_API,
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": "kexpose.dev/gateway-controller"},
    }


def parent(
    name: str = "edge",
    ns: str | None = EDGE_NS,
    section: str | None = "https",
    port: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, **extra}
    if ns is not None:
        ref["namespace"] = ns
    if section is not None:
        ref["sectionName"] = section
    if port is not None:
        ref["port"] = port
    return ref


def backend_ref(name: str = "web", port: int | None = 80, **extra: Any) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, **extra}
    if port is not None:
        ref["port"] = port
    return ref


def route_rule(
    *backends: dict[str, Any],
    matches: list[dict[str, Any]] | None = None,
    filters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if matches is not None:
        item["matches"] = matches
    if filters is not None:
        item["filters"] = filters
    item["backendRefs"] = list(backends) if backends else [backend_ref()]
    return item


REDIRECT_TO_HTTPS: dict[str, Any] = {
    "type": "RequestRedirect",
    "requestRedirect": {"scheme": "https", "statusCode": 308},
}


def http_route(
    name: str = "web",
    ns: str = NS,
    *,
    hostnames: Sequence[str] | None = ("shop.example.com",),
    parents: Sequence[dict[str, Any]] | None = None,
    rules: Sequence[dict[str, Any]] | None = None,
    kind: str = "HTTPRoute",
    api_version: str = GW_API,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": list(parents) if parents is not None else [parent()]}
    if hostnames is not None:
        spec["hostnames"] = list(hostnames)
    spec["rules"] = (
        list(rules)
        if rules is not None
        else [route_rule(matches=[{"path": {"type": "PathPrefix", "value": "/"}}])]
    )
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def redirect_route(
    name: str = "https-redirect",
    ns: str = EDGE_NS,
    *,
    hostnames: Sequence[str] = ("shop.example.com",),
    parents: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An HTTPRoute that only redirects to HTTPS, on the plain HTTP listener."""
    return http_route(
        name,
        ns,
        hostnames=hostnames,
        parents=parents if parents is not None else [parent("edge-http", section="http")],
        rules=[{"filters": [REDIRECT_TO_HTTPS]}],
    )


def reference_grant(
    ns: str,
    *,
    from_kind: str = "HTTPRoute",
    from_ns: str = NS,
    to_kind: str = "Service",
    to_name: str | None = None,
    name: str = "allow",
    api_version: str = GRANT_API,
) -> dict[str, Any]:
    to: dict[str, Any] = {"group": "", "kind": to_kind}
    if to_name is not None:
        to["name"] = to_name
    return {
        "apiVersion": api_version,
        "kind": "ReferenceGrant",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "from": [
                {"group": "gateway.networking.k8s.io", "kind": from_kind, "namespace": from_ns}
            ],
            "to": [to],
        },
    }


def gateway_stack() -> list[dict[str, Any]]:
    """A Gateway API exposure as the components render it in prod.

    The platform's Gateway ``kexpose-system/edge`` has one HTTPS listener per app host, routes
    admitted from namespaces labelled for it, and certificates: one in the Gateway's namespace,
    one in the app's (granted by a ReferenceGrant). Plain HTTP lives on a Gateway of its own,
    ``edge-http``, whose only route redirects to HTTPS; route-unique-match ignores sectionName,
    so a redirect route on the app routes' Gateway would claim their host and path. The app
    route splits ``/api`` to a Service in another namespace, granted there.
    """
    selector = {"from": "Selector", "selector": {"matchLabels": {"kexpose.dev/exposed": "true"}}}
    edge = gateway(
        "edge",
        EDGE_NS,
        listener("https", hostname="shop.example.com", certificate="shop-tls"),
        listener(
            "https-api",
            hostname="api.shop.example.com",
            certificate="api-tls",
            certificate_ns=NS,
        ),
    )
    for item in edge["spec"]["listeners"]:
        item["allowedRoutes"] = {"namespaces": selector}
    web = http_route(
        "web",
        NS,
        hostnames=("shop.example.com",),
        parents=[parent("edge", section="https")],
        rules=[
            route_rule(matches=[{"path": {"type": "PathPrefix", "value": "/"}}]),
            route_rule(
                backend_ref("orders", 8080, namespace="orders"),
                matches=[{"path": {"type": "PathPrefix", "value": "/orders"}}],
            ),
        ],
    )
    api = http_route(
        "api",
        NS,
        hostnames=("api.shop.example.com",),
        parents=[parent("edge", section="https-api")],
        rules=[
            route_rule(
                backend_ref("api", 80, weight=90),
                backend_ref("api-canary", 80, weight=10),
                matches=[
                    {"path": {"type": "PathPrefix", "value": "/"}},
                    {"headers": [{"name": "X-Canary", "value": "always"}]},
                ],
            )
        ],
    )
    return [
        gateway_class(),
        edge,
        gateway("edge-http", EDGE_NS, listener("http", "HTTP", 80, hostname=None)),
        redirect_route(hostnames=("shop.example.com", "api.shop.example.com")),
        tls_secret("shop-tls", EDGE_NS, ("shop.example.com",)),
        tls_secret("api-tls", NS, ("api.shop.example.com",)),
        reference_grant(NS, from_kind="Gateway", from_ns=EDGE_NS, to_kind="Secret"),
        web,
        api,
        deployment("web", NS),
        service("web", NS, selector={"app": "web"}),
        deployment("api", NS),
        service("api", NS, selector={"app": "api"}),
        deployment("api-canary", NS),
        service("api-canary", NS, selector={"app": "api-canary"}),
        deployment("orders", "orders"),
        service(
            "orders",
            "orders",
            selector={"app": "orders"},
            ports=[{"name": "http", "port": 8080, "targetPort": "http"}],
        ),
        reference_grant("orders", name="allow-shop-routes", to_name="orders"),
    ]


# --- Edge authentication ----------------------------------------------------------------------


def auth_ingress(
    name: str = "admin",
    ns: str = NS,
    host: str = "admin.shop.example.com",
    *,
    annotations: dict[str, str],
    tls: bool = True,
) -> dict[str, Any]:
    """An Ingress with auth annotations, served over TLS unless ``tls=False``."""
    spec: dict[str, Any] = {"ingressClassName": "kexpose", "rules": [rule(host, service_name=name)]}
    if tls:
        spec["tls"] = [{"hosts": [host], "secretName": f"{name}-tls"}]
    return ingress(name, ns, annotations=annotations, **spec)


def basic_auth_secret(
    name: str = "admin-users", ns: str = NS, *, htpasswd: str | None = None
) -> dict[str, Any]:
    """An htpasswd Secret (``auth`` key); the hash is a placeholder: no rule verifies it."""
    line = htpasswd if htpasswd is not None else "ops:$2y$10$" + "x" * 53
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": "Opaque",
        "data": {"auth": base64.b64encode(line.encode()).decode()} if line else {"auth": ""},
    }


def jwks_secret(name: str = "admin-jwks", ns: str = NS) -> dict[str, Any]:
    jwks = '{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "placeholder"}]}'
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": "Opaque",
        "stringData": {"jwks.json": jwks},
    }


def auth_stack() -> list[dict[str, Any]]:
    """Two apps behind edge auth, as the components render them: a basic-auth admin Ingress
    with its htpasswd Secret, and a JWT-protected API Ingress with a pinned issuer and audience
    and a JWKS Secret; both over TLS with their certificates."""
    admin_host, api_host = "admin.shop.example.com", "jwt.shop.example.com"
    return [
        deployment("admin", NS),
        service("admin", NS, selector={"app": "admin"}),
        auth_ingress(
            "admin",
            host=admin_host,
            annotations={
                "kexpose.dev/auth-type": "basic",
                "kexpose.dev/auth-secret": "admin-users",
                "kexpose.dev/auth-realm": "shop admin",
            },
        ),
        basic_auth_secret(),
        tls_secret("admin-tls", NS, (admin_host,)),
        deployment("jwt", NS),
        service("jwt", NS, selector={"app": "jwt"}),
        auth_ingress(
            "jwt",
            host=api_host,
            annotations={
                "kexpose.dev/auth-type": "jwt",
                "kexpose.dev/auth-jwks-secret": "shop/admin-jwks",
                "kexpose.dev/auth-jwt-issuer": "https://id.example.com/",
                "kexpose.dev/auth-jwt-audiences": "shop-api",
            },
        ),
        jwks_secret(),
        tls_secret("jwt-tls", NS, (api_host,)),
    ]


# --- Edge authentication through the Gateway API ----------------------------------------------

EDGE_AUTH_API = "kexpose.dev/v1alpha1"


def edge_auth(name: str = "admin", ns: str = NS, **settings: Any) -> dict[str, Any]:
    """A kexpose ``EdgeAuth``; ``settings`` are its spec fields, ``_`` written ``-``."""
    return {
        "apiVersion": EDGE_AUTH_API,
        "kind": "EdgeAuth",
        "metadata": {"name": name, "namespace": ns},
        "spec": {k.replace("_", "-"): v for k, v in settings.items()},
    }


def auth_filter(name: str, *, group: str = "kexpose.dev", kind: str = "EdgeAuth") -> dict[str, Any]:
    return {"type": "ExtensionRef", "extensionRef": {"group": group, "kind": kind, "name": name}}


def auth_route(
    name: str = "admin",
    ns: str = NS,
    *,
    hostnames: Sequence[str] | None = ("admin.shop.example.com",),
    parents: Sequence[dict[str, Any]] | None = None,
    filters: Sequence[dict[str, Any]] | None = None,
    kind: str = "HTTPRoute",
) -> dict[str, Any]:
    """A route whose one rule names EdgeAuth ``name`` (or carries ``filters``), attached to the
    HTTPS listener ``https-<first hostname>`` of ``kexpose-system/kexpose`` unless told."""
    host = hostnames[0] if hostnames else "admin.shop.example.com"
    return http_route(
        name,
        ns,
        hostnames=hostnames,
        parents=parents if parents is not None else [parent("kexpose", section=f"https-{host}")],
        rules=[
            route_rule(
                backend_ref(name, 80),
                matches=[{"path": {"type": "PathPrefix", "value": "/"}}],
                filters=list(filters) if filters is not None else [auth_filter(name)],
            )
        ],
        kind=kind,
    )


def edge_auth_stack() -> list[dict[str, Any]]:
    """:func:`auth_stack` as ``api: gateway`` renders it: kexpose's Gateway with a plain HTTP
    listener that admits its own namespace only (where its one route redirects to HTTPS) and an
    HTTPS listener per host; the apps' HTTPRoutes attach to the HTTPS listeners by sectionName
    and name their EdgeAuth (basic for ``admin``, JWT for ``jwt``) in an ExtensionRef."""
    admin_host, api_host = "admin.shop.example.com", "jwt.shop.example.com"
    selector = {
        "from": "Selector",
        "selector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [NS]}
            ]
        },
    }
    https = [
        listener(f"https-{h}", hostname=h, certificate=f"{n}-tls", certificate_ns=NS)
        for n, h in (("admin", admin_host), ("jwt", api_host))
    ]
    for item in https:
        item["allowedRoutes"] = {"namespaces": selector}
    redirect = http_route(
        "kexpose-https-redirect",
        EDGE_NS,
        hostnames=(admin_host, api_host),
        parents=[parent("kexpose", ns=None, section="http")],
        rules=[
            {
                "matches": [{"path": {"type": "RegularExpression", "value": "/.*"}}],
                "filters": [REDIRECT_TO_HTTPS],
            }
        ],
    )
    return [
        gateway_class(),
        gateway("kexpose", EDGE_NS, listener("http", "HTTP", 80, hostname=None), *https),
        redirect,
        reference_grant(NS, from_kind="Gateway", from_ns=EDGE_NS, to_kind="Secret"),
        deployment("admin", NS),
        service("admin", NS, selector={"app": "admin"}),
        edge_auth("admin", type="basic", secret="admin-users", realm="shop admin"),
        auth_route("admin", hostnames=(admin_host,)),
        basic_auth_secret(),
        tls_secret("admin-tls", NS, (admin_host,)),
        deployment("jwt", NS),
        service("jwt", NS, selector={"app": "jwt"}),
        edge_auth(
            "jwt",
            type="jwt",
            jwks_secret="shop/admin-jwks",
            jwt_issuer="https://id.example.com/",
            jwt_audiences="shop-api",
        ),
        auth_route("jwt", hostnames=(api_host,)),
        jwks_secret(),
        tls_secret("jwt-tls", NS, (api_host,)),
    ]
