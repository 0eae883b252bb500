"""Edge-authentication rules: what an Ingress's ``kexpose.dev/auth-*`` annotations, or a kexpose
``EdgeAuth`` object, ask for.

The annotations and what kexpose-proxy does with them are specified in ``edge-auth.md``; these
rules (``policy-rules.md``) catch before deployment what the proxy could only answer at run
time: basic credentials that would cross plain HTTP, a Secret the proxy would not find (it then
fails closed with 503), an auth or JWKS URL aimed at the proxy's own host or the cloud metadata
endpoint (server-side request forgery), and JWTs accepted for any issuer and audience.

The policy specification words them for Ingress annotations. An HTTPRoute carries the same
settings in an ``EdgeAuth`` (group ``kexpose.dev``) that a rule's ``ExtensionRef`` filter
names, with the annotation names less ``kexpose.dev/auth-`` as its ``spec`` fields
(edge-auth.md, "Gateway API"), and the proxy authenticates that rule exactly as an Ingress
path. Each rule's rationale holds word for word, so each rule reads both forms through one
:class:`AuthSettings` view, in one function per check; otherwise the same stack would pass
with ``api: gateway`` what it fails with ``api: ingress`` (``policies/README.md``).

What ``auth-basic-requires-tls`` reads on the Gateway API side: a route rule (HTTPRoute or
GRPCRoute) whose ``ExtensionRef`` names a basic ``EdgeAuth`` in the route's namespace (a local
reference) and whose route can attach to a ``protocol: HTTP`` listener of a Gateway in the stack:
a parentRef's ``sectionName`` and ``port`` allow it, the hostnames meet and the listener's
``allowedRoutes`` admit the route (``_gatewayapi.admits``). kexpose's own Gateways keep their HTTP
listener to the redirect route of their own namespace and attach app routes to the HTTPS
listeners by ``sectionName``, so they pass. A ``RequestRedirect`` on the rule itself does not
help: kexpose-proxy authenticates a rule before it applies its filters (the 401 challenge comes
first), and clients that send credentials unasked (``curl -u``, gRPC metadata) send them on the
first, plain request. A parent Gateway or ``EdgeAuth`` not in the stack is not judged here
(``route-parent-exists`` reports the Gateway; an unresolvable ``ExtensionRef`` answers 500).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from kexpose.hosts import covers
from kexpose.policy.rules._address import address_of, is_localhost_name
from kexpose.policy.rules._gatewayapi import admits, can_attach, gateway_parents, listeners
from kexpose.policy.rules._kube import (
    Context,
    Finding,
    Obj,
    annotation_field,
    annotations_of,
    as_map,
    as_seq,
    as_str,
    has_key,
    spec,
)
from kexpose.policy.rules._stack import EDGE_AUTH_GROUP, EDGE_AUTH_KIND, Stack

__all__ = [
    "AUTH_SECRET",
    "AUTH_TYPE",
    "AUTH_URL",
    "JWKS_SECRET",
    "JWKS_URL",
    "JWT_AUDIENCES",
    "JWT_ISSUER",
    "AuthSettings",
    "auth_settings",
    "basic_requires_tls",
    "jwt_audience_required",
    "secret_provisioned",
    "url_safe",
]

AUTH_TYPE: Final = "kexpose.dev/auth-type"
AUTH_SECRET: Final = "kexpose.dev/auth-secret"  # noqa: S105 - an annotation name, not a secret
AUTH_URL: Final = "kexpose.dev/auth-url"
JWKS_SECRET: Final = "kexpose.dev/auth-jwks-secret"  # noqa: S105 - an annotation name
JWKS_URL: Final = "kexpose.dev/auth-jwks-url"
JWT_ISSUER: Final = "kexpose.dev/auth-jwt-issuer"
JWT_AUDIENCES: Final = "kexpose.dev/auth-jwt-audiences"
_ANNOTATION_PREFIX: Final = "kexpose.dev/auth-"
#: ingress-nginx's own basic-auth switch: the same credentials, the same plain-HTTP risk.
NGINX_AUTH_TYPE: Final = "nginx.ingress.kubernetes.io/auth-type"
BASIC_AUTH_TYPE: Final = "kubernetes.io/basic-auth"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The edge-auth settings of one object, by their ``EdgeAuth`` field names (``type``,
    ``secret``, ``jwks-url``...): an Ingress's ``kexpose.dev/auth-<name>`` annotations or an
    ``EdgeAuth``'s ``spec.<name>``."""

    obj: Obj
    values: Mapping[str, Any]
    edge: bool
    """An ``EdgeAuth`` (else an Ingress)."""

    def get(self, name: str) -> str | None:
        """The value as kexpose-proxy reads it: stripped; a number as its text (an
        ``EdgeAuth`` field may be one); None when absent or of another type."""
        value = self.values.get(self.key(name))
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return None

    def key(self, name: str) -> str:
        return name if self.edge else _ANNOTATION_PREFIX + name

    def field(self, name: str) -> str:
        """The field path violations name."""
        return f"spec.{name}" if self.edge else annotation_field(self.key(name))

    def setting(self, name: str) -> str:
        """The setting as a user writes it: ``spec.<name>`` or the annotation's name."""
        return f"spec.{name}" if self.edge else self.key(name)

    @property
    def served(self) -> str:
        """What the settings protect, for messages."""
        if self.edge:
            return "every route rule whose ExtensionRef names this EdgeAuth"
        return "every path of this Ingress"


def auth_settings(obj: Obj) -> AuthSettings | None:
    """The settings of an Ingress or of a kexpose ``EdgeAuth``; None for any other object."""
    if obj.kind == "Ingress":
        return AuthSettings(obj, annotations_of(obj), edge=False)
    if obj.kind == EDGE_AUTH_KIND and obj.api_version.startswith(EDGE_AUTH_GROUP + "/"):
        return AuthSettings(obj, spec(obj), edge=True)
    return None


# --- auth-basic-requires-tls ------------------------------------------------------------------

_CLEAR: Final = "basic credentials (RFC 7617: only base64, not encrypted)"


def _ingress_basic_requires_tls(obj: Obj) -> Iterator[Finding]:
    notes = annotations_of(obj)
    settings = AuthSettings(obj, notes, edge=False)
    nginx = as_str(notes.get(NGINX_AUTH_TYPE))
    if "basic" not in (settings.get("type"), nginx.strip() if nginx else None):
        return
    patterns = [
        h
        for entry in as_seq(spec(obj).get("tls"))
        for h in as_seq(as_map(entry).get("hosts"))
        if isinstance(h, str)
    ]
    fix = "Serve every host of this Ingress over TLS (list it in spec.tls[].hosts)."
    for i, rule in enumerate(as_seq(spec(obj).get("rules"))):
        host = as_map(rule).get("host")
        if not isinstance(host, str) or not host:
            yield Finding(
                obj,
                f"spec.rules[{i}].host",
                f"is missing, so this rule also answers on plain HTTP and {_CLEAR} would cross "
                "the network in clear.",
                fix,
            )
        elif not any(covers(p, host) for p in patterns):
            yield Finding(
                obj,
                f"spec.rules[{i}].host",
                f"{host!r} is not covered by spec.tls[].hosts, so its {_CLEAR} would cross "
                "plain HTTP.",
                fix,
            )


def _plain_listeners(stack: Stack, route: Obj) -> list[str]:
    """The plain-HTTP listeners of Gateways in the stack that can take ``route``."""
    found: list[str] = []
    namespace_labels = stack.namespace_labels.get(route.namespace)
    for parent in gateway_parents(route):
        gateway = stack.gateways.get((parent.namespace, parent.name or ""))
        if gateway is None:
            continue  # route-parent-exists reports it; nothing here to attach to
        found.extend(
            f"{gateway.ref} listener {listener.name!r} (port {listener.port})"
            for listener in listeners(gateway)
            if listener.protocol == "HTTP"
            and can_attach(parent, listener)
            and admits(gateway, listener, route, namespace_labels=namespace_labels)
        )
    return list(dict.fromkeys(found))


def _basic_edge_auths(stack: Stack, route: Obj) -> Iterator[tuple[str, str]]:
    """(field, EdgeAuth ref) of each rule filter of ``route`` naming a basic ``EdgeAuth``."""
    for j, rule in enumerate(as_seq(spec(route).get("rules"))):
        for k, entry in enumerate(as_seq(as_map(rule).get("filters"))):
            item = as_map(entry)
            ref = as_map(item.get("extensionRef"))
            name = as_str(ref.get("name"))
            if (
                item.get("type") != "ExtensionRef"
                or ref.get("group") != EDGE_AUTH_GROUP
                or ref.get("kind") != EDGE_AUTH_KIND
                or not name
            ):
                continue
            # A LocalObjectReference: the EdgeAuth lives in the route's namespace.
            edge = stack.edge_auths.get((route.namespace, name))
            if edge is None:
                continue  # the proxy cannot resolve the filter and answers 500
            settings = auth_settings(edge)
            if settings is not None and settings.get("type") == "basic":
                yield f"spec.rules[{j}].filters[{k}].extensionRef.name", edge.ref


def basic_requires_tls(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for ingress in stack.ingresses:
        yield from _ingress_basic_requires_tls(ingress)
    for route in stack.routes:
        named = list(_basic_edge_auths(stack, route))
        if not named:
            continue
        plain = _plain_listeners(stack, route)
        if not plain:
            continue
        shown = ", ".join(plain)
        for field, edge in named:
            yield Finding(
                route,
                field,
                f"names {edge}, which asks for basic auth, yet the route can attach to the "
                f"plain HTTP {shown}: its {_CLEAR} would cross plain HTTP (kexpose-proxy "
                "authenticates before it redirects).",
                "Attach the route to HTTPS listeners only (parentRefs[].sectionName naming "
                "them), or keep the HTTP listener from taking it (its hostname or "
                "allowedRoutes).",
            )


# --- auth-secret-provisioned ------------------------------------------------------------------


def _secret_key(value: str, namespace: str) -> tuple[str, str] | None:
    """``name`` (in ``namespace``) or ``namespace/name`` (edge-auth.md); None when neither."""
    parts = value.split("/")
    if len(parts) == 1 and parts[0]:
        return (namespace, parts[0])
    if len(parts) == 2 and all(parts):
        return (parts[0], parts[1])
    return None


def _has(secret: Obj, key: str, *, non_empty: bool = False) -> bool:
    for section in ("data", "stringData"):
        values = as_map(secret.raw.get(section))
        if non_empty:
            if values.get(key):
                return True
        elif has_key(values, key):
            return True
    return False


def _basic_problem(secret: Obj) -> str | None:
    if _has(secret, "auth", non_empty=True):
        return None  # an htpasswd file
    if (
        secret.raw.get("type") == BASIC_AUTH_TYPE
        and _has(secret, "username")
        and _has(secret, "password")
    ):
        return None
    return (
        f"has neither a non-empty 'auth' key (an htpasswd file) nor type {BASIC_AUTH_TYPE!r} "
        "with 'username' and 'password'"
    )


def _jwks_problem(secret: Obj) -> str | None:
    return None if _has(secret, "jwks.json") else "has no 'jwks.json' key (a JWK Set)"


def _referenced(
    stack: Stack, settings: AuthSettings, name: str, check: Callable[[Obj], str | None]
) -> Iterator[Finding]:
    text = settings.get(name) or ""
    found = _secret_key(text, settings.obj.namespace)
    if found is None:
        reason = f"{text!r} is not 'name' or 'namespace/name'"
    elif (secret := stack.secrets.get(found)) is None:
        reason = f"there is no Secret {found[1]!r} in namespace {found[0]!r} in this stack"
    elif (problem := check(secret)) is not None:
        reason = f"Secret {found[0]}/{found[1]} {problem}"
    else:
        return
    yield Finding(
        settings.obj,
        settings.field(name),
        f"cannot give the proxy its keys: {reason}; it would answer 503 on {settings.served} "
        "(fail closed).",
        "Provision the Secret in the stack with the keys edge-auth.md names, and name it here.",
    )


def secret_provisioned(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for obj in (*stack.ingresses, *stack.edge_auths.values()):
        settings = auth_settings(obj)
        assert settings is not None  # an Ingress or an EdgeAuth
        kind = settings.get("type")
        if kind == "basic":
            if not settings.get("secret"):
                yield Finding(
                    obj,
                    settings.field("secret"),
                    "is missing, so basic auth has no users: the proxy would answer 503 on "
                    f"{settings.served} (fail closed).",
                    "Name the Secret holding the htpasswd file ('auth' key) or a "
                    f"{BASIC_AUTH_TYPE} Secret.",
                )
                continue
            yield from _referenced(stack, settings, "secret", _basic_problem)
        elif kind == "jwt" and settings.get("jwks-secret"):
            # Only a JWKS URL: nothing in the stack to check.
            yield from _referenced(stack, settings, "jwks-secret", _jwks_problem)


# --- auth-url-safe ----------------------------------------------------------------------------


def _url_problem(text: str) -> str | None:
    """Why kexpose-proxy must not call ``text`` for auth or keys, or None when it may."""
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "is not an absolute http or https URL"
    if not host:
        return "has no host"
    host = host.rstrip(".")
    if is_localhost_name(host):
        return f"points at {host!r}, the proxy's own host"
    address = address_of(host)
    if address is None:
        return None
    if address.is_loopback:
        return f"points at {address}, a loopback address: the proxy's own host"
    if address.is_link_local:
        return (
            f"points at {address}, a link-local address (169.254.169.254 is the cloud metadata "
            "endpoint, which hands out credentials)"
        )
    if address.is_unspecified:
        return f"points at {address}, the unspecified address, which reaches the proxy's own host"
    return None


def url_safe(obj: Obj, ctx: Context) -> Iterator[Finding]:
    settings = auth_settings(obj)
    if settings is None:
        return
    for name in ("url", "jwks-url"):
        value = settings.get(name)
        if value is None:
            continue
        problem = _url_problem(value)
        if problem is not None:
            yield Finding(
                obj,
                settings.field(name),
                f"{value!r} {problem}; the proxy calls this URL for every request it "
                "authenticates (server-side request forgery).",
                "Point it at the auth service's or identity provider's own http(s) address.",
            )


# --- auth-jwt-audience-required ---------------------------------------------------------------


def _given(settings: AuthSettings, name: str) -> bool:
    # The audiences are comma-separated: " , " lists none.
    value = settings.get(name) or ""
    if name == "jwt-audiences":
        return any(item.strip() for item in value.split(","))
    return bool(value)


def jwt_audience_required(obj: Obj, ctx: Context) -> Iterator[Finding]:
    settings = auth_settings(obj)
    if settings is None or settings.get("type") != "jwt":
        return
    for name, claim in (("jwt-issuer", "iss"), ("jwt-audiences", "aud")):
        if not _given(settings, name):
            yield Finding(
                obj,
                settings.field(name),
                f"is missing or empty, so a token's {claim!r} claim is not checked: a token "
                "issued for another service would be accepted here (RFC 8725 §3.8-3.9).",
                f"Set {settings.setting(name)} to the expected {claim!r} value.",
            )
