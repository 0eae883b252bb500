"""Traefik ``Middleware`` objects that enforce an app's edge auth when the stack's controller is
Traefik (``kind: traefik``), and the references its routes make to them.

Traefik reads none of the ``kexpose.dev`` annotations nor kexpose's ``EdgeAuth``; its
Kubernetes CRD provider reads ``traefik.io/v1alpha1`` Middlewares instead (Traefik v3.7
routing reference, "Kubernetes CRD", Middleware). Per app, in its namespace:

- ``<app>-allow-list``: ``ipAllowList`` with ``allowSourceRanges`` (403 to other clients);
- ``<app>-auth``: ``basicAuth`` (the htpasswd Secret ``model.auth`` makes from ``users``, or the
  app's own ``secret``) or ``forwardAuth``;
- ``<app>-rule<i>-path<j>-auth``: a path's own ``auth`` (``api: gateway``), in place of the app's.

An Ingress names them in Traefik's ``router.middlewares`` annotation, an HTTPRoute or
GRPCRoute rule in ``ExtensionRef`` filters (group ``traefik.io``, kind ``Middleware``),
allow-list first, then the auth, as edge-auth.md orders them ("Where it applies": source
ranges, then authentication).
Settings Traefik cannot express are refused with the stack (``model.auth.traefik_auth_problems``),
so what is built here carries the whole of the app's auth. A reference to a Middleware Traefik
could not load (its Secret missing, say) makes Traefik drop the route: it fails closed.

The objects hold settings and a Secret's name only, never a credential.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from kexpose.manifests.common import Manifest, metadata
from kexpose.model import AppSpec, ControllerSpec
from kexpose.model.auth import AuthSpec, auth_secret_name, path_edge_auth_name

__all__ = [
    "DEFAULT_REALM",
    "FORWARD_AUTH_MAX_RESPONSE_BYTES",
    "MIDDLEWARE_API_VERSION",
    "ROUTER_MIDDLEWARES",
    "TraefikRef",
    "allow_list_name",
    "grpc_middleware_filters",
    "ingress_middleware_annotations",
    "middleware_filters",
    "middleware_ref",
    "middlewares",
    "path_middlewares",
    "traefik_ref",
]

MIDDLEWARE_API_VERSION: Final = "traefik.io/v1alpha1"
MIDDLEWARE_GROUP: Final = "traefik.io"
#: Traefik's Ingress provider reads the router's middlewares from this annotation, as a comma
#: list of provider-qualified names (Traefik v3.7 routing reference, "Kubernetes Ingress",
#: annotations).
ROUTER_MIDDLEWARES: Final = "traefik.ingress.kubernetes.io/router.middlewares"
#: The CRD provider's name, the qualifier of the Middlewares it builds.
CRD_PROVIDER: Final = "kubernetescrd"
#: The realm edge-auth.md names by default ("Where it applies"); Traefik's own is "traefik".
DEFAULT_REALM: Final = "kexpose"
#: edge-auth.md, "Basic": the backend learns who authenticated in this header, and any the
#: client sent is removed first (Traefik's basicAuth ``headerField`` deletes, then sets it).
USER_HEADER: Final = "X-Forwarded-User"
#: A bound on the forward-auth answer Traefik reads into memory (it warns that without one an
#: auth service could exhaust it); auth answers are small, 1 MiB leaves room for an error page.
FORWARD_AUTH_MAX_RESPONSE_BYTES: Final = 1 << 20

# Traefik's static configuration keys are case-insensitive on its command line.
_TRUSTED_IPS = re.compile(r"^--entrypoints\.[^.=]+\.forwardedheaders\.trustedips=(.*)$", re.I)


@dataclass(frozen=True, slots=True)
class TraefikRef:
    """The stack's Traefik as its apps' Middlewares need it: the proxies whose
    ``X-Forwarded-For`` its entry points trust (``forwardedHeaders.trustedIPs``)."""

    trusted_ips: tuple[str, ...] = ()


def traefik_ref(controller: ControllerSpec) -> TraefikRef:
    """What the controller's arguments say about trusted proxies (``extraArgs`` only: kexpose
    itself makes Traefik trust no forwarded header)."""
    trusted: list[str] = []
    for arg in controller.extra_args:
        found = _TRUSTED_IPS.match(arg)
        if found is not None:
            trusted += [c.strip() for c in found.group(1).split(",") if c.strip()]
    return TraefikRef(tuple(dict.fromkeys(trusted)))


def allow_list_name(app: str) -> str:
    return f"{app}-allow-list"


def _auth_name(app: str) -> str:
    return f"{app}-auth"


def _path_auth_name(app: str, rule: int, path: int) -> str:
    return f"{path_edge_auth_name(app, rule, path)}-auth"


def path_middlewares(app: AppSpec, rule: int, path: int) -> list[str]:
    """The Middlewares guarding one path of the app, in order: the allow-list, then the path's
    own auth or else the app's."""
    assert app.ingress is not None
    out = [allow_list_name(app.name)] if app.allow_source_ranges else []
    if app.ingress.rules[rule].paths[path].auth is not None:
        out.append(_path_auth_name(app.name, rule, path))
    elif app.auth is not None:
        out.append(_auth_name(app.name))
    return out


def _app_middlewares(app: AppSpec) -> list[str]:
    """The Middlewares guarding the app as a whole (all paths of its Ingress)."""
    out = [allow_list_name(app.name)] if app.allow_source_ranges else []
    return [*out, _auth_name(app.name)] if app.auth is not None else out


def middleware_ref(namespace: str, name: str) -> str:
    """How a route names a Middleware: ``<namespace>_<name>@kubernetescrd``. The controller
    runs the CRD provider with ``safeNaming`` (kexpose.manifests.controller), under which the
    name joins namespace and name with ``_``, a character no Kubernetes name holds, so two
    Middlewares never share a name (the legacy ``<namespace>-<name>`` can: ``a`` + ``b-c`` and
    ``a-b`` + ``c``) (Traefik v3.7 Kubernetes CRD provider reference, "safeNaming")."""
    return f"{namespace}_{name}@{CRD_PROVIDER}"


def ingress_middleware_annotations(app: AppSpec) -> dict[str, str]:
    """The Ingress annotation naming the app's Middlewares (none when it has no auth)."""
    names = _app_middlewares(app)
    if not names:
        return {}
    return {ROUTER_MIDDLEWARES: ",".join(middleware_ref(app.namespace, n) for n in names)}


def _filter(name: str) -> dict[str, Any]:
    return {
        "type": "ExtensionRef",
        "extensionRef": {"group": MIDDLEWARE_GROUP, "kind": "Middleware", "name": name},
    }


def middleware_filters(app: AppSpec, rule: int, path: int) -> list[dict[str, Any]]:
    """The HTTPRoute rule filters naming the path's Middlewares (local references), which
    Traefik's Gateway provider resolves through its CRD provider."""
    return [_filter(name) for name in path_middlewares(app, rule, path)]


def grpc_middleware_filters(app: AppSpec) -> list[dict[str, Any]]:
    """The GRPCRoute rule filters naming the app's Middlewares: a gRPC entry declares no auth
    of its own, and the app's covers every route of it (edge-auth.md, "Where it applies")."""
    return [_filter(name) for name in _app_middlewares(app)]


def _auth_spec(app: AppSpec, auth: AuthSpec) -> dict[str, Any]:
    if auth.type == "basic":
        # One data key of htpasswd lines, or a kubernetes.io/basic-auth Secret: both Secret
        # shapes Traefik's CRD provider reads, and the ones edge-auth.md names ("Basic").
        # The Authorization header goes on unchanged (removeHeader false), as the spec says.
        return {
            "basicAuth": {
                "secret": auth.secret or auth_secret_name(app.name),
                "realm": auth.realm or DEFAULT_REALM,
                "headerField": USER_HEADER,
                "removeHeader": False,
            }
        }
    if auth.type == "forward":
        assert auth.url is not None
        forward: dict[str, Any] = {
            "address": auth.url,
            # Never pass on X-Forwarded-* the client sent: Traefik sets its own, from the
            # connection, unless the entry point trusts the sender (forwardedHeaders).
            "trustForwardHeader": False,
            "maxResponseBodySize": FORWARD_AUTH_MAX_RESPONSE_BYTES,
        }
        if auth.response_headers:
            # Traefik removes these from the request first, also when the answer lacks them
            # (edge-auth.md, "Forward auth": answer 2xx).
            forward["authResponseHeaders"] = list(auth.response_headers)
        return {"forwardAuth": forward}
    # model.auth.traefik_auth_problems refuses jwt with the stack: never reached from a plan.
    raise ValueError(f"app {app.name}: auth type {auth.type!r} has no Traefik middleware")


def _allow_list_spec(ranges: Sequence[str], traefik: TraefikRef) -> dict[str, Any]:
    allow: dict[str, Any] = {"sourceRange": list(ranges)}
    if traefik.trusted_ips:
        # edge-auth.md, "Source ranges": behind trusted proxies the client is the right-most
        # address of X-Forwarded-For outside them, which is what Traefik's excludedIPs strategy
        # picks. Traefik deletes X-Forwarded-For from untrusted peers before any middleware,
        # so a client cannot choose its address this way; one reaching Traefik directly (not
        # through a trusted proxy) has no address to pick and is refused: closed, not open.
        allow["ipStrategy"] = {"excludedIPs": list(traefik.trusted_ips)}
    # Without ipStrategy Traefik takes the TCP peer, as the spec does when no proxy is trusted
    # (the default): a client's own X-Forwarded-For is never believed. 403 is the default
    # rejectStatusCode, the spec's answer.
    return {"ipAllowList": allow}


def middlewares(app: AppSpec, traefik: TraefikRef, *, gateway: bool) -> list[Manifest]:
    """The app's Middlewares that its routes name: with an Ingress (its annotation covers every
    path) the allow-list and the app's auth; with the Gateway API (``gateway``) those some
    HTTPRoute rule names, a path's own ``auth`` included, and the app's when it has GRPCRoutes."""
    if app.ingress is None:
        return []
    grpc = any(rule.grpc for rule in app.ingress.rules)
    used = _app_middlewares(app) if not gateway or grpc else []
    for i, rule in enumerate(app.ingress.rules if gateway else ()):
        for j, _ in enumerate(rule.paths):
            used += path_middlewares(app, i, j)
    wanted = dict.fromkeys(used)
    specs: dict[str, dict[str, Any]] = {}
    if app.allow_source_ranges:
        specs[allow_list_name(app.name)] = _allow_list_spec(app.allow_source_ranges, traefik)
    if app.auth is not None and _auth_name(app.name) in wanted:
        specs[_auth_name(app.name)] = _auth_spec(app, app.auth)
    for i, rule in enumerate(app.ingress.rules):
        for j, p in enumerate(rule.paths):
            if p.auth is not None and _path_auth_name(app.name, i, j) in wanted:
                specs[_path_auth_name(app.name, i, j)] = _auth_spec(app, p.auth)
    return [
        {
            "apiVersion": MIDDLEWARE_API_VERSION,
            "kind": "Middleware",
            "metadata": metadata(name, app.namespace, labels=app.labels),
            "spec": specs[name],
        }
        for name in wanted
    ]
