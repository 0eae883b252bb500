"""Edge authentication an app declares, and the Ingress annotations that ask kexpose-proxy for it.

The annotations are the proxy's public interface (edge-auth.md); this module only writes them.
Basic-auth passwords never sit in the model: each user names a Pulumi secret config key
(``passwordConfig``, ``namespace:key`` or a key of the ``kexpose`` namespace), the Pulumi shell
reads it as a secret Output, and :func:`htpasswd_line` hashes it with bcrypt at deployment. The
resulting htpasswd file goes into a Secret the Ingress names (``auth-secret``), as a secret
Output: plain passwords appear in no manifest, log or stack output.

bcrypt salts are derived from the user, the password and the app instead of drawn at random, so
that a redeployment with unchanged passwords writes the same Secret (no diff, no reload). The
salt is a keyed hash of the password: equal passwords of different users or apps still hash
differently, and the salt says nothing about the password without a bcrypt-cost search.
"""

from __future__ import annotations

import base64
import hashlib
from ipaddress import ip_network
from typing import TYPE_CHECKING, Annotated, Final, Literal
from urllib.parse import urlsplit

import bcrypt
from pydantic import AfterValidator, Field, field_validator, model_validator

from kexpose.model.base import DNSLabel, Frozen, Problems

if TYPE_CHECKING:
    from kexpose.model.app import AppSpec

__all__ = [
    "AUTH_ANNOTATION_PREFIX",
    "EDGE_AUTH_API_VERSION",
    "EDGE_AUTH_GROUP",
    "EDGE_AUTH_KIND",
    "TRAEFIK_ALLOWED",
    "AuthSpec",
    "BasicUser",
    "SourceRange",
    "auth_annotations",
    "auth_secret_name",
    "edge_auth_fields",
    "edge_auth_name",
    "htpasswd_line",
    "path_auth_problem",
    "path_edge_auth_name",
    "traefik_auth_problems",
]

AUTH_ANNOTATION_PREFIX: Final = "kexpose.dev/"
#: The kexpose resource an HTTPRoute's ExtensionRef filter names for the same settings
#: (edge-auth.md, "Gateway API"); kexpose-proxy reads it (proxy/routes/_auth.py).
EDGE_AUTH_GROUP: Final = "kexpose.dev"
EDGE_AUTH_API_VERSION: Final = f"{EDGE_AUTH_GROUP}/v1alpha1"
EDGE_AUTH_KIND: Final = "EdgeAuth"
#: bcrypt cost for deployed hashes: 2^12 rounds, OWASP's floor for bcrypt; the proxy caches
#: verified credentials, so the cost is paid once per client and password.
BCRYPT_COST: Final = 12
_BCRYPT_ALPHABET: Final = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
)

AuthType = Literal["basic", "forward", "jwt"]


class BasicUser(Frozen):
    """A basic-auth user; the password comes from Pulumi secret config, never from the model."""

    name: str = Field(min_length=1, pattern=r"^[^:\s]+$")
    password_config: str = Field(min_length=1)
    """``namespace:key`` or ``key`` (namespace ``kexpose``) of a secret config value."""


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an absolute http or https URL")
    return value


class AuthSpec(Frozen):
    """``auth:`` of an app: one mechanism, its settings, and the paths that skip it."""

    type: AuthType
    realm: str | None = Field(default=None, pattern=r"^[\x20-\x7e]*$")
    exempt_paths: tuple[str, ...] = ()
    # basic
    users: tuple[BasicUser, ...] = ()
    secret: DNSLabel | None = None
    """An existing Secret (htpasswd ``auth`` key, or ``kubernetes.io/basic-auth``) instead of
    ``users``."""
    # forward
    url: str | None = None
    response_headers: tuple[str, ...] = ()
    signin: str | None = None
    timeout: float | None = Field(default=None, gt=0, le=86400)
    cache_seconds: float | None = Field(default=None, ge=0, le=86400)
    # jwt
    jwks_url: str | None = None
    jwks_secret: DNSLabel | None = None
    issuer: str | None = None
    audiences: tuple[str, ...] = ()
    claim_headers: dict[str, str] = Field(default_factory=dict)
    """Claim -> the request header it is sent to the backend in."""

    @field_validator("url", "signin", "jwks_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("exempt_paths")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not path.startswith("/") or "," in path:
                raise ValueError(f"{path!r} is not a path starting with '/' (and without ',')")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AuthSpec:
        problems = Problems("AuthSpec")
        settings = {
            "basic": ("users", "secret"),
            "forward": ("url", "response_headers", "signin", "timeout", "cache_seconds"),
            "jwt": ("jwks_url", "jwks_secret", "issuer", "audiences", "claim_headers"),
        }
        for kind, names in settings.items():
            if kind == self.type:
                continue
            for name in names:
                if getattr(self, name):
                    problems.add((name,), f"is a setting of type {kind}, not {self.type}")
        if self.type == "basic" and bool(self.users) == (self.secret is not None):
            problems.add(("users",), "give either users (hashed at deployment) or secret")
        if self.type == "basic":
            user_names = [u.name for u in self.users]
            for i, user in enumerate(self.users):
                if user_names.index(user.name) != i:
                    problems.add(("users", i, "name"), "repeats an earlier user", user.name)
        if self.type == "forward" and self.url is None:
            problems.add(("url",), "is required for type forward")
        if self.type == "jwt" and (self.jwks_url is None) == (self.jwks_secret is None):
            problems.add(("jwksUrl",), "give exactly one of jwksUrl and jwksSecret")
        problems.check()
        return self


def _cidr(value: str) -> str:
    ip_network(value, strict=False)  # raises ValueError naming the value
    return value


#: One ``allowSourceRanges`` entry: an IPv4 or IPv6 CIDR (the proxy fails closed on any other).
SourceRange = Annotated[str, AfterValidator(_cidr)]


def auth_secret_name(app: str) -> str:
    """The Secret holding the htpasswd file made from ``users``."""
    return f"{app}-basic-auth"


def auth_annotations(
    app: str, auth: AuthSpec | None, allow_source_ranges: tuple[str, ...] | None
) -> dict[str, str]:
    """The Ingress annotations for the app's auth (edge-auth.md names them)."""
    out: dict[str, str] = {}
    p = AUTH_ANNOTATION_PREFIX
    if allow_source_ranges:
        out[f"{p}allow-source-ranges"] = ",".join(allow_source_ranges)
    if auth is None:
        return out
    out[f"{p}auth-type"] = auth.type
    optional: dict[str, str | None] = {
        "auth-realm": auth.realm,
        "auth-exempt-paths": ",".join(auth.exempt_paths) or None,
        "auth-secret": (auth.secret or auth_secret_name(app)) if auth.type == "basic" else None,
        "auth-url": auth.url,
        "auth-response-headers": ",".join(auth.response_headers) or None,
        "auth-signin": auth.signin,
        "auth-timeout": f"{auth.timeout:g}" if auth.timeout is not None else None,
        "auth-cache-seconds": f"{auth.cache_seconds:g}" if auth.cache_seconds is not None else None,
        "auth-jwks-url": auth.jwks_url,
        "auth-jwks-secret": auth.jwks_secret,
        "auth-jwt-issuer": auth.issuer,
        "auth-jwt-audiences": ",".join(auth.audiences) or None,
        "auth-jwt-claim-headers": ",".join(f"{c}:{h}" for c, h in auth.claim_headers.items())
        or None,
    }
    out.update({f"{p}{k}": v for k, v in optional.items() if v is not None})
    return out


def edge_auth_name(app: str) -> str:
    """The ``EdgeAuth`` object holding the app's settings (in the app's namespace)."""
    return app


def path_edge_auth_name(app: str, rule: int, path: int) -> str:
    """The ``EdgeAuth`` of one path that declares its own ``auth:``."""
    return f"{app}-rule{rule}-path{path}"


def path_auth_problem(auth: AuthSpec) -> tuple[str, str] | None:
    """Why a path's own ``auth:`` cannot be used: ``(field, message)``, or None."""
    if auth.users:
        # The htpasswd Secret made from users is the app's (auth_secret_name): one per app.
        return "users", (
            "a path's basic auth names an existing Secret (secret); users hashed at deployment "
            "go into the app's Secret, so declare them on the app's auth"
        )
    return None


def edge_auth_fields(
    app: str, auth: AuthSpec | None, allow_source_ranges: tuple[str, ...] | None
) -> dict[str, str]:
    """The ``spec`` of the app's ``EdgeAuth``: the annotations' names without ``kexpose.dev/``
    and ``auth-`` (edge-auth.md, "Gateway API"), the same values. One source for both forms,
    so that an HTTPRoute is authenticated exactly as the app's Ingress would be."""
    return {
        name.removeprefix(AUTH_ANNOTATION_PREFIX).removeprefix("auth-"): value
        for name, value in auth_annotations(app, auth, allow_source_ranges).items()
    }


def htpasswd_line(user: str, password: str, *, scope: str, cost: int = BCRYPT_COST) -> str:
    """``user:$2b$...`` for an htpasswd file. ``scope`` (e.g. ``namespace/app``) goes into the
    derived salt, so the same password elsewhere hashes differently."""
    key = hashlib.blake2b(f"{scope}\0{user}".encode()).digest()[:32]
    seed = hashlib.blake2b(password.encode(), key=key, digest_size=16).digest()
    salt_text = base64.b64encode(seed).rstrip(b"=").translate(_BCRYPT_ALPHABET)[:22]
    # bcrypt's 22-character salt holds 128 bits in its own base64 alphabet; the last character
    # carries 2 spare bits that bcrypt ignores.
    salt = b"$2b$%02d$%b" % (cost, salt_text)
    return f"{user}:{bcrypt.hashpw(password.encode(), salt).decode()}"


#: What an app's auth may hold when the stack's Traefik enforces it (``kexpose.manifests.
#: middleware``): the settings Traefik's basicAuth, forwardAuth and ipAllowList middlewares carry.
TRAEFIK_ALLOWED: Final = (
    "type basic (users or secret, realm) or forward (url, responseHeaders), and allowSourceRanges"
)

#: Settings Traefik's middlewares (v3.7) have no equivalent for, by model field: (stack-config
#: name, why). Refused rather than dropped: without them the auth would let through, redirect
#: or wait differently from what edge-auth.md specifies and the stack asks for.
_TRAEFIK_REFUSED: Final = {
    "exempt_paths": (
        "exemptPaths",
        "Traefik's auth middlewares apply to every request of the route they are on",
    ),
    "signin": (
        "signin",
        "Traefik's forwardAuth authSigninURL redirects to the URL as written, without the "
        "rd=<original URL> query parameter edge-auth.md specifies",
    ),
    "timeout": (
        "timeout",
        "Traefik's forwardAuth has no timeout setting (its client waits up to 30 s)",
    ),
    "cache_seconds": ("cacheSeconds", "Traefik's forwardAuth caches no answers"),
}


def traefik_auth_problems(app: AppSpec) -> list[tuple[tuple[str | int, ...], str, object]]:
    """What of the app's auth the stack's Traefik cannot enforce: ``(location in the app,
    message, value given)`` each. [] when its Middlewares carry all of it.

    Traefik's open-source edition has no JWT middleware at all; the other refusals are single
    settings (``_TRAEFIK_REFUSED``). A path's own ``auth`` needs ``api: gateway`` with any
    controller (``kexpose.model.route``), so it is checked here like the app's.
    """
    places: list[tuple[tuple[str | int, ...], AuthSpec | None]] = [(("auth",), app.auth)]
    for i, rule in enumerate(app.ingress.rules if app.ingress is not None else ()):
        places += [
            (("ingress", "rules", i, "paths", j, "auth"), path.auth)
            for j, path in enumerate(rule.paths)
        ]
    fix = f"; allowed with a traefik controller: {TRAEFIK_ALLOWED}; or use a kexpose controller"
    found: list[tuple[tuple[str | int, ...], str, object]] = []
    for at, auth in places:
        if auth is None:
            continue
        if auth.type == "jwt":
            found.append(
                (
                    (*at, "type"),
                    "cannot be enforced by a Traefik controller: Traefik's open-source edition "
                    f"has no JWT middleware{fix}",
                    auth.type,
                )
            )
            continue
        for name, (key, why) in _TRAEFIK_REFUSED.items():
            value = getattr(auth, name)
            if value:
                given = ",".join(value) if isinstance(value, tuple) else value
                found.append(
                    ((*at, key), f"cannot be enforced by a Traefik controller: {why}{fix}", given)
                )
    return found
