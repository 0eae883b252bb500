"""Edge-auth settings -> the immutable :class:`~kexpose.proxy.filters.EdgeAuth` of a route.

The settings are an Ingress's ``kexpose.dev/auth-*`` and ``kexpose.dev/allow-source-ranges``
annotations, or the same names without ``auth-`` in an ``EdgeAuth`` object an HTTPRoute's
``ExtensionRef`` filter names (edge-auth.md). Secrets (htpasswd, ``kubernetes.io/basic-auth``,
a JWK Set) are read here, when the table is built, the way TLS Secrets are: a changed Secret
means a new table, and so new credentials, with no other reload path.

Bad configuration fails closed (edge-auth.md, "Bad configuration"): an unknown ``auth-type``,
a missing Secret or key, a JWK Set that is not one, a missing or non-``http(s)`` URL, an invalid
CIDR (even among valid ones), a realm or header name that cannot go on a header line, or a
timeout that is not a positive number gives an ``EdgeAuth`` with ``problem`` set: every request
of those paths is answered 503. The problem is reported with the object, the setting and the
value given; the table's problems are logged once per change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import SplitResult, urlsplit

from kexpose.errors import KexposeError
from kexpose.proxy.filters import (
    DEFAULT_REALM,
    DEFAULT_TIMEOUT,
    BasicAuth,
    EdgeAuth,
    ForwardAuth,
    Jwk,
    JwtAuth,
    Mechanism,
    Network,
    parse_htpasswd,
    parse_jwks,
    parse_networks,
    plain_credential,
)
from kexpose.proxy.routes._kube import Secret
from kexpose.proxy.routes._objects import Key
from kexpose.proxy.routes._shape import shown

__all__ = [
    "AUTH_PREFIX",
    "EDGE_AUTH_GROUP",
    "EDGE_AUTH_KIND",
    "SOURCE_RANGES",
    "Settings",
    "auth_from_annotations",
    "edge_auth",
    "extension_resolver",
]

#: The annotations' common prefix; an ``EdgeAuth`` object's fields drop its ``auth-`` part.
AUTH_PREFIX: Final = "kexpose.dev/"
SOURCE_RANGES: Final = "kexpose.dev/allow-source-ranges"
#: What an HTTPRoute's ``ExtensionRef`` names for edge auth (edge-auth.md, "Gateway API").
EDGE_AUTH_GROUP: Final = "kexpose.dev"
EDGE_AUTH_KIND: Final = "EdgeAuth"
_TYPES: Final = ("basic", "forward", "jwt")
#: ``EdgeAuth`` spec fields: the annotation names without ``kexpose.dev/auth-``.
_FIELDS: Final = (
    "type",
    "secret",
    "realm",
    "exempt-paths",
    "url",
    "response-headers",
    "signin",
    "timeout",
    "cache-seconds",
    "jwks-secret",
    "jwks-url",
    "jwt-issuer",
    "jwt-audiences",
    "jwt-claim-headers",
    "allow-source-ranges",
)
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a header name (RFC 9110 §5.6.2)
_QUOTABLE: Final = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")  # quoted-string, no escapes


class _SettingError(KexposeError):
    """One setting cannot be used; the message names it and the value given."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The settings of one source, by annotation name, and how to name them in messages."""

    values: Mapping[str, str]
    """Annotation name (``kexpose.dev/auth-type``) -> value."""
    namespace: str
    source: str
    """``Ingress ns/name`` or ``EdgeAuth ns/name``."""
    field_name: Callable[[str], str] = field(default=lambda name: f"annotation {name}")

    def get(self, name: str) -> str | None:
        value = self.values.get(AUTH_PREFIX + name)
        return value.strip() if isinstance(value, str) else None

    def bad(self, name: str, value: object, allowed: str) -> _SettingError:
        return _SettingError(
            f"{self.field_name(AUTH_PREFIX + name)} is {shown(value, typed=False)}, "
            f"expected {allowed}"
        )


def has_auth(values: Mapping[str, str]) -> bool:
    return AUTH_PREFIX + "auth-type" in values or SOURCE_RANGES in values


def auth_from_annotations(
    annotations: Mapping[str, str],
    *,
    namespace: str,
    source: str,
    secrets: Mapping[Key, Secret],
    notes: list[str],
) -> EdgeAuth | None:
    """An Ingress's auth, or None when it asks for none; ``notes`` gets what to log."""
    if not has_auth(annotations):
        return None
    return edge_auth(Settings(annotations, namespace, source), secrets=secrets, notes=notes)


def edge_auth(settings: Settings, *, secrets: Mapping[Key, Secret], notes: list[str]) -> EdgeAuth:
    """The auth the settings describe; with ``problem`` set (and reported) when invalid."""
    try:
        ranges: tuple[Network, ...] = ()
        raw_ranges = settings.get("allow-source-ranges")
        if raw_ranges is not None:
            ranges, bad = parse_networks(raw_ranges)
            if bad or not ranges:
                raise settings.bad(
                    "allow-source-ranges",
                    ", ".join(bad) or raw_ranges,
                    "comma-separated IPv4 or IPv6 CIDRs",
                )
        exempt = _exempt(settings)
        mechanism = _mechanism(settings, secrets, notes)
    except _SettingError as exc:
        problem = f"{settings.source}: {exc}; its paths answer 503 until it is fixed"
        notes.append(problem)
        return EdgeAuth(settings.source, problem=problem)
    return EdgeAuth(settings.source, ranges, exempt, mechanism)


def _exempt(settings: Settings) -> tuple[str, ...]:
    raw = settings.get("auth-exempt-paths")
    if raw is None:
        return ()
    out: list[str] = []
    for item in raw.split(","):
        path = item.strip()
        if not path:
            continue
        if not path.startswith("/"):
            raise settings.bad("auth-exempt-paths", path, "comma-separated paths starting with /")
        out.append(path.rstrip("/"))
    return tuple(out)


def _realm(settings: Settings) -> str:
    realm = settings.get("auth-realm")
    if realm is None:
        return DEFAULT_REALM
    if not _QUOTABLE.fullmatch(realm):
        raise settings.bad("auth-realm", realm, "printable ASCII without '\"' or '\\'")
    return realm


def _mechanism(
    settings: Settings, secrets: Mapping[Key, Secret], notes: list[str]
) -> Mechanism | None:
    kind = settings.get("auth-type")
    if kind is None:
        return None
    if kind == "basic":
        return _basic(settings, secrets, notes)
    if kind == "forward":
        return _forward(settings)
    if kind == "jwt":
        return _jwt(settings, secrets, notes)
    raise settings.bad("auth-type", kind, "one of " + ", ".join(_TYPES))


def _secret(settings: Settings, name: str, secrets: Mapping[Key, Secret]) -> tuple[str, Secret]:
    ref = settings.get(name)
    if not ref:
        raise settings.bad(name, ref, "a Secret name or namespace/name")
    namespace, sep, secret_name = ref.partition("/")
    key = (namespace, secret_name) if sep else (settings.namespace, ref)
    found = secrets.get(key)
    if found is None:
        where = settings.field_name(AUTH_PREFIX + name)
        raise _SettingError(f"{where}: Secret {key[0]}/{key[1]} not found")
    return f"{key[0]}/{key[1]}", found


def _secret_data(where: str, label: str, secret: Secret) -> dict[str, str]:
    data: dict[str, str] = {}
    for name, value in (secret.get("data") or {}).items():
        try:
            data[name] = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise _SettingError(
                f"{where}: Secret {label} data.{name} is not base64-encoded text"
            ) from None
    data.update(secret.get("stringData") or {})
    return data


def _basic(settings: Settings, secrets: Mapping[Key, Secret], notes: list[str]) -> BasicAuth:
    realm = _realm(settings)
    label, secret = _secret(settings, "auth-secret", secrets)
    where = settings.field_name(AUTH_PREFIX + "auth-secret")
    data = _secret_data(where, label, secret)
    if "auth" in data:
        users, skipped = parse_htpasswd(data["auth"])
        notes.extend(f"{settings.source}: Secret {label} key auth: {s}; ignored" for s in skipped)
    elif secret.get("type") == "kubernetes.io/basic-auth":
        username, password = data.get("username"), data.get("password")
        if not username or password is None:
            raise _SettingError(
                f"{where}: Secret {label} (kubernetes.io/basic-auth) has no username or password"
            )
        users = {username: plain_credential(password)}
    else:
        raise _SettingError(
            f"{where}: Secret {label} has no auth key (an htpasswd file) and is not of type "
            "kubernetes.io/basic-auth"
        )
    digest = hashlib.sha256(repr(sorted(data.items())).encode()).digest()
    return BasicAuth(realm, users, digest, label)


def _url(settings: Settings, name: str) -> tuple[str, SplitResult] | None:
    raw = settings.get(name)
    if raw is None:
        return None
    parts = urlsplit(raw)
    unsafe = any(c in raw for c in "\r\n \t")
    if parts.scheme not in ("http", "https") or not parts.hostname or unsafe:
        raise settings.bad(name, raw, "an absolute http or https URL")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise settings.bad(name, raw, "an absolute http or https URL") from None
    return raw, parts


def _names(settings: Settings, name: str) -> tuple[str, ...]:
    raw = settings.get(name)
    if raw is None:
        return ()
    names = tuple(n.strip().lower() for n in raw.split(",") if n.strip())
    for header in names:
        if not _TOKEN.fullmatch(header):
            raise settings.bad(name, header, "comma-separated header names")
    return names


def _seconds(settings: Settings, name: str, default: float, *, zero: bool = False) -> float:
    raw = settings.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value > 0 or (zero and value == 0)) or value > 86_400:
        raise settings.bad(name, raw, "a number of seconds up to 86400")
    return value


def _forward(settings: Settings) -> ForwardAuth:
    found = _url(settings, "auth-url")
    if found is None:
        raise settings.bad("auth-url", None, "an absolute http or https URL (it is required)")
    raw, split = found
    signin = _url(settings, "auth-signin")
    scheme: Literal["http", "https"] = "https" if split.scheme == "https" else "http"
    host = split.hostname or ""
    port = split.port or (443 if scheme == "https" else 80)
    authority = split.netloc.rpartition("@")[2]  # userinfo never goes on a Host line
    target = split.path or "/"
    if split.query:
        target += "?" + split.query
    return ForwardAuth(
        raw,
        scheme,
        host,
        port,
        authority,
        target,
        response_headers=_names(settings, "auth-response-headers"),
        signin=signin[0] if signin is not None else None,
        timeout=_seconds(settings, "auth-timeout", DEFAULT_TIMEOUT),
        cache_seconds=_seconds(settings, "auth-cache-seconds", 0.0, zero=True),
    )


def _jwt(settings: Settings, secrets: Mapping[Key, Secret], notes: list[str]) -> JwtAuth:
    realm = _realm(settings)
    has_secret = settings.get("auth-jwks-secret") is not None
    url = _url(settings, "auth-jwks-url")
    if has_secret == (url is not None):
        raise settings.bad(
            "auth-jwks-secret",
            settings.get("auth-jwks-secret"),
            "a Secret with jwks.json, or auth-jwks-url instead (exactly one of them)",
        )
    issuer = settings.get("auth-jwt-issuer") or None
    audiences = tuple(
        a.strip() for a in (settings.get("auth-jwt-audiences") or "").split(",") if a.strip()
    )
    claims: list[tuple[str, str]] = []
    for pair in (settings.get("auth-jwt-claim-headers") or "").split(","):
        if not pair.strip():
            continue
        claim, sep, header = (p.strip() for p in pair.partition(":"))
        if not sep or not claim or not _TOKEN.fullmatch(header):
            raise settings.bad("auth-jwt-claim-headers", pair.strip(), "claim:Header pairs")
        claims.append((claim, header))
    basis = f"{issuer}\0{','.join(audiences)}\0"
    if url is not None:
        keys: tuple[Jwk, ...] = ()
        basis += url[0]
    else:
        label, secret = _secret(settings, "auth-jwks-secret", secrets)
        where = settings.field_name(AUTH_PREFIX + "auth-jwks-secret")
        text = _secret_data(where, label, secret).get("jwks.json")
        if text is None:
            raise _SettingError(f"{where}: Secret {label} has no jwks.json key")
        parsed = parse_jwks(text)
        if isinstance(parsed, str):
            raise _SettingError(f"{where}: Secret {label} key jwks.json {parsed}")
        keys, skipped = parsed
        notes.extend(f"{settings.source}: Secret {label} jwks.json {s}" for s in skipped)
        basis += text
    return JwtAuth(
        realm,
        keys,
        url[0] if url is not None else None,
        issuer,
        audiences,
        tuple(claims),
        hashlib.sha256(basis.encode()).digest(),
    )


def _annotation(field_name: str) -> str:
    if field_name == "allow-source-ranges":
        return SOURCE_RANGES
    return f"{AUTH_PREFIX}auth-{field_name}"


def _spec_field(annotation: str) -> str:
    return "spec." + annotation.removeprefix(AUTH_PREFIX).removeprefix("auth-")


def _from_object(
    obj: Mapping[str, object],
    namespace: str,
    name: str,
    *,
    secrets: Mapping[Key, Secret],
    notes: list[str],
) -> EdgeAuth:
    source = f"{EDGE_AUTH_KIND} {namespace}/{name}"
    spec = obj.get("spec")
    values: dict[str, str] = {}
    problem = ""
    if not isinstance(spec, Mapping):
        problem = f"spec is {shown(spec)}, expected a mapping of the settings"
    else:
        for key, value in spec.items():
            if key not in _FIELDS:
                problem = f"spec.{key} is not a setting; expected one of {', '.join(_FIELDS)}"
                break
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                problem = f"spec.{key} is {shown(value)}, expected a string"
                break
            values[_annotation(str(key))] = str(value)
    if problem:
        # Unknown or mistyped fields fail closed: a misspelt setting must not weaken auth.
        message = f"{source}: {problem}; its rules answer 503 until it is fixed"
        notes.append(message)
        return EdgeAuth(source, problem=message)
    settings = Settings(values, namespace, source, field_name=_spec_field)
    return edge_auth(settings, secrets=secrets, notes=notes)


def extension_resolver(
    namespace: str,
    objects: Mapping[Key, Mapping[str, object]],
    *,
    secrets: Mapping[Key, Secret],
    notes: list[str],
) -> Callable[[Mapping[str, object]], EdgeAuth | None]:
    """For an HTTPRoute in ``namespace``: an ``ExtensionRef`` -> the ``EdgeAuth`` it names (a
    local reference, so in the route's namespace), or None when it names nothing we have."""

    def resolve(ref: Mapping[str, object]) -> EdgeAuth | None:
        if ref.get("group") != EDGE_AUTH_GROUP or ref.get("kind") != EDGE_AUTH_KIND:
            return None
        name = ref.get("name")
        obj = objects.get((namespace, name)) if isinstance(name, str) else None
        if obj is None or not isinstance(name, str):
            return None
        return _from_object(obj, namespace, name, secrets=secrets, notes=notes)

    return resolve
