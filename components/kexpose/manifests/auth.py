"""The objects of an app's edge auth (``model.auth``) beyond Ingress annotations.

- The Secret of its basic-auth users: an htpasswd file of bcrypt hashes, made at deployment from
  Pulumi secret config (a secret Output, so Deferred here); offline (preview, render, check) it
  is a placeholder line, never a password or a hash of one.
- With the Gateway API, its ``EdgeAuth`` (``kexpose.dev/v1alpha1``), which every rule of the
  app's HTTPRoutes names in an ``ExtensionRef`` filter (edge-auth.md, "Gateway API"), and the
  CustomResourceDefinition that serves it. The object holds settings and Secret names only,
  never a credential.
"""

from __future__ import annotations

from typing import Any, Final

from kexpose.manifests.common import MANAGED_BY, Manifest, metadata, plain
from kexpose.manifests.gateway import PATCH_FORCE
from kexpose.manifests.middleware import middleware_filters
from kexpose.model import AppSpec, Deferred
from kexpose.model.auth import (
    EDGE_AUTH_API_VERSION,
    EDGE_AUTH_GROUP,
    EDGE_AUTH_KIND,
    AuthSpec,
    auth_secret_name,
    edge_auth_fields,
    edge_auth_name,
    path_edge_auth_name,
)

__all__ = [
    "EDGE_AUTH_FIELDS",
    "HTPASSWD_PLACEHOLDER",
    "auth_filters",
    "basic_auth_secret",
    "edge_auth_crd",
    "edge_auth_filter",
    "edge_auths",
    "grpc_edge_auth",
    "has_edge_auth",
    "path_edge_auth",
]

#: The settings an ``EdgeAuth`` spec may hold, with what each means (edge-auth.md): the
#: annotations' names without ``kexpose.dev/`` and ``auth-``.
EDGE_AUTH_FIELDS: Final = {
    "type": "basic, forward or jwt",
    "realm": "the realm named in WWW-Authenticate (default kexpose)",
    "exempt-paths": "comma-separated path prefixes that skip authentication",
    "secret": "basic: the htpasswd or kubernetes.io/basic-auth Secret (name or namespace/name)",
    "url": "forward: the auth service's absolute http(s) URL",
    "response-headers": "forward: comma-separated headers copied from the auth answer",
    "signin": "forward: where a 401 is redirected to",
    "timeout": "forward: seconds to wait for the auth service (default 5)",
    "cache-seconds": "forward: seconds a 2xx answer is cached per Authorization and Cookie",
    "jwks-url": "jwt: the JWK Set's URL",
    "jwks-secret": "jwt: a Secret with key jwks.json (name or namespace/name)",
    "jwt-issuer": "jwt: the iss a token must carry",
    "jwt-audiences": "jwt: comma-separated; aud must contain one of them",
    "jwt-claim-headers": "jwt: claim:Header pairs, comma-separated",
    "allow-source-ranges": "comma-separated CIDRs; other clients get 403",
}

#: What the ``auth`` key holds where the passwords are not at hand (a comment line, which the
#: proxy skips: nobody can log in with it).
HTPASSWD_PLACEHOLDER: Final = "# bcrypt hashes of the users' passwords, made at deployment\n"


def basic_auth_secret(app: AppSpec, htpasswd: str | Deferred | None) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(auth_secret_name(app.name), app.namespace, labels=app.labels),
        "type": "Opaque",
        "stringData": {"auth": plain(htpasswd if htpasswd is not None else HTPASSWD_PLACEHOLDER)},
    }


def has_edge_auth(app: AppSpec) -> bool:
    """Whether the app as a whole asks for edge auth or a source allow-list."""
    return app.auth is not None or bool(app.allow_source_ranges)


def path_edge_auth(app: AppSpec, rule: int, path: int) -> str | None:
    """The name of the ``EdgeAuth`` a path's HTTPRoute rule names: its own when it declares
    ``auth:`` (in place of the app's, with the app's source ranges), else the app's."""
    assert app.ingress is not None
    if app.ingress.rules[rule].paths[path].auth is not None:
        return path_edge_auth_name(app.name, rule, path)
    return edge_auth_name(app.name) if has_edge_auth(app) else None


def edge_auths(app: AppSpec) -> list[Manifest]:
    """The app's ``EdgeAuth`` objects: the app's (when a path uses it) and one per path with its
    own ``auth:``; the same settings Ingress annotations would carry."""
    if app.ingress is None:
        return []
    found: list[tuple[str, AuthSpec | None]] = []
    for i, rule in enumerate(app.ingress.rules):
        for j, p in enumerate(rule.paths):
            name = path_edge_auth(app, i, j)
            if name is not None and all(name != n for n, _ in found):
                found.append((name, p.auth if p.auth is not None else app.auth))
    app_name = grpc_edge_auth(app)
    if app_name is not None and all(app_name != n for n, _ in found):
        found.append((app_name, app.auth))  # only the app's gRPC routes name it
    return [
        {
            "apiVersion": EDGE_AUTH_API_VERSION,
            "kind": EDGE_AUTH_KIND,
            "metadata": metadata(name, app.namespace, labels=app.labels),
            "spec": edge_auth_fields(app.name, auth, app.allow_source_ranges),
        }
        for name, auth in found
    ]


def grpc_edge_auth(app: AppSpec) -> str | None:
    """The ``EdgeAuth`` every GRPCRoute rule of the app names: the app's, when it asks for
    auth or source ranges and has gRPC entries. A gRPC entry declares no auth of its own; the
    app's covers every route of it (edge-auth.md, "Where it applies"), so a GRPCRoute without
    it would serve the app's gRPC services unauthenticated."""
    if app.ingress is None or not has_edge_auth(app):
        return None
    if not any(rule.grpc for rule in app.ingress.rules):
        return None
    return edge_auth_name(app.name)


def edge_auth_filter(name: str) -> dict[str, Any]:
    """The HTTPRoute rule filter naming an ``EdgeAuth`` (a local reference)."""
    return {
        "type": "ExtensionRef",
        "extensionRef": {"group": EDGE_AUTH_GROUP, "kind": EDGE_AUTH_KIND, "name": name},
    }


def auth_filters(app: AppSpec, rule: int, path: int, *, traefik: bool) -> list[dict[str, Any]]:
    """The filters that put a path's auth first on its HTTPRoute rule: ExtensionRefs to the
    Traefik Middlewares guarding it when the stack's Traefik serves the routes, else one to
    its ``EdgeAuth``."""
    if traefik:
        return middleware_filters(app, rule, path)
    name = path_edge_auth(app, rule, path)
    return [edge_auth_filter(name)] if name is not None else []


def edge_auth_crd() -> Manifest:
    """The CustomResourceDefinition of ``EdgeAuth`` (written by hand: it is small and ours).

    Every setting is a string, as an annotation is. The spec keeps unknown fields
    (``x-kubernetes-preserve-unknown-fields``) instead of letting the API server prune them:
    a misspelt setting (``allow-source-range``) pruned away would silently weaken auth, while
    kexpose-proxy answers 503 on a rule whose EdgeAuth has a field it does not know
    (edge-auth.md, "Bad configuration": fail closed).
    """
    plural = "edgeauths"
    settings: dict[str, dict[str, Any]] = {
        name: {"type": "string", "description": what} for name, what in EDGE_AUTH_FIELDS.items()
    }
    settings["type"]["enum"] = ["basic", "forward", "jwt"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{EDGE_AUTH_GROUP}",
            "labels": dict(MANAGED_BY),
            # Adopted when there already (another stack's kexpose controller) and retained on
            # destroy, as the Gateway API CRDs are (manifests/gateway.py crd_manifests).
            "annotations": {PATCH_FORCE: "true"},
        },
        "spec": {
            "group": EDGE_AUTH_GROUP,
            "names": {
                "kind": EDGE_AUTH_KIND,
                "listKind": f"{EDGE_AUTH_KIND}List",
                "plural": plural,
                "singular": "edgeauth",
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": EDGE_AUTH_API_VERSION.rpartition("/")[2],
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": [
                        {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (
                                "Edge authentication for the HTTPRoute rules whose ExtensionRef "
                                "filter names this object (kexpose-proxy)."
                            ),
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": {
                                    "type": "object",
                                    "properties": settings,
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }
