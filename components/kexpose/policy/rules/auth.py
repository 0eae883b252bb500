"""Edge-authentication rules: what an Ingress's ``kexpose.dev/auth-*`` annotations ask for.

The annotations and what kexpose-proxy does with them are specified in ``edge-auth.md``; these
rules (``policy-rules.md``) catch before deployment what the proxy could only answer at run
time: basic credentials that would cross plain HTTP, a Secret the proxy would not find (it then
fails closed with 503), an auth or JWKS URL aimed at the proxy's own host or the cloud metadata
endpoint (server-side request forgery), and JWTs accepted for any issuer and audience.

The policy specification applies them to Ingresses; an HTTPRoute carries the same settings in an
``ExtensionRef`` resource, which these rules do not read (see ``policies/README.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from kexpose.hosts import covers
from kexpose.policy.rules._address import address_of, is_localhost_name
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
from kexpose.policy.rules._stack import Stack

__all__ = [
    "AUTH_SECRET",
    "AUTH_TYPE",
    "AUTH_URL",
    "JWKS_SECRET",
    "JWKS_URL",
    "JWT_AUDIENCES",
    "JWT_ISSUER",
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
#: ingress-nginx's own basic-auth switch: the same credentials, the same plain-HTTP risk.
NGINX_AUTH_TYPE: Final = "nginx.ingress.kubernetes.io/auth-type"
BASIC_AUTH_TYPE: Final = "kubernetes.io/basic-auth"


def basic_requires_tls(obj: Obj, ctx: Context) -> Iterator[Finding]:
    notes = annotations_of(obj)
    if "basic" not in (notes.get(AUTH_TYPE), notes.get(NGINX_AUTH_TYPE)):
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
                "is missing, so this rule also answers on plain HTTP and basic credentials "
                "(RFC 7617: only base64, not encrypted) would cross the network in clear.",
                fix,
            )
        elif not any(covers(p, host) for p in patterns):
            yield Finding(
                obj,
                f"spec.rules[{i}].host",
                f"{host!r} is not covered by spec.tls[].hosts, so its basic credentials (RFC "
                "7617: only base64, not encrypted) would cross plain HTTP.",
                fix,
            )


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
    stack: Stack, ingress: Obj, key: str, value: Any, check: Callable[[Obj], str | None]
) -> Iterator[Finding]:
    text = as_str(value) or ""
    found = _secret_key(text, ingress.namespace)
    if found is None:
        reason = f"{text!r} is not 'name' or 'namespace/name'"
    elif (secret := stack.secrets.get(found)) is None:
        reason = f"there is no Secret {found[1]!r} in namespace {found[0]!r} in this stack"
    elif (problem := check(secret)) is not None:
        reason = f"Secret {found[0]}/{found[1]} {problem}"
    else:
        return
    yield Finding(
        ingress,
        annotation_field(key),
        f"cannot give the proxy its keys: {reason}; it would answer 503 on every path of this "
        "Ingress (fail closed).",
        "Provision the Secret in the stack with the keys edge-auth.md names, and name it here.",
    )


def secret_provisioned(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for ingress in stack.ingresses:
        notes = annotations_of(ingress)
        kind = notes.get(AUTH_TYPE)
        if kind == "basic":
            value = notes.get(AUTH_SECRET)
            if not value:
                yield Finding(
                    ingress,
                    annotation_field(AUTH_SECRET),
                    "is missing, so basic auth has no users: the proxy would answer 503 on "
                    "every path of this Ingress (fail closed).",
                    "Name the Secret holding the htpasswd file ('auth' key) or a "
                    f"{BASIC_AUTH_TYPE} Secret.",
                )
                continue
            yield from _referenced(stack, ingress, AUTH_SECRET, value, _basic_problem)
        elif kind == "jwt":
            value = notes.get(JWKS_SECRET)
            if value:  # only a JWKS URL: nothing in the stack to check
                yield from _referenced(stack, ingress, JWKS_SECRET, value, _jwks_problem)


def _url_problem(text: str) -> str | None:
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
    notes = annotations_of(obj)
    for key in (AUTH_URL, JWKS_URL):
        value = notes.get(key)
        if value is None:
            continue
        problem = _url_problem(str(value))
        if problem is not None:
            yield Finding(
                obj,
                annotation_field(key),
                f"{value!r} {problem}; the proxy calls this URL for every request it "
                "authenticates (server-side request forgery).",
                "Point it at the auth service's or identity provider's own http(s) address.",
            )


def _given(notes: Mapping[str, Any], key: str) -> bool:
    # The audiences are comma-separated: " , " lists none.
    value = as_str(notes.get(key)) or ""
    return (
        any(item.strip() for item in value.split(","))
        if key == JWT_AUDIENCES
        else bool(value.strip())
    )


def jwt_audience_required(obj: Obj, ctx: Context) -> Iterator[Finding]:
    notes = annotations_of(obj)
    if notes.get(AUTH_TYPE) != "jwt":
        return
    for key, claim in ((JWT_ISSUER, "iss"), (JWT_AUDIENCES, "aud")):
        if not _given(notes, key):
            yield Finding(
                obj,
                annotation_field(key),
                f"is missing or empty, so a token's {claim!r} claim is not checked: a token "
                "issued for another service would be accepted here (RFC 8725 §3.8-3.9).",
                f"Set {key} to the expected {claim!r} value.",
            )
