"""An Ingress's edge protection read with ingress-nginx's semantics: basic auth, forward auth
and source ranges, as the model's ``auth:`` and ``allowSourceRanges`` of the app it lands in.

Sources of truth, the ingress-nginx user guide "Annotations": "Authentication" (``auth-type``,
``auth-secret``, ``auth-secret-type``, ``auth-realm``), "External Authentication"
(``auth-url``, ``auth-response-headers``, ``auth-signin``, ...), "Whitelist source range" and
"Denylist source range". The model (``kexpose.model.auth``) and kexpose-proxy (edge-auth.md)
read the same Secret shapes ingress-nginx does for ``auth-file`` (an htpasswd ``auth`` key).

Protection is never dropped: when part of it cannot be expressed, :attr:`Access.withheld` says
why, and the converter leaves the whole Ingress out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any, Final

from kexpose.importer.catalogue import NGINX_PREFIX, doc_url
from kexpose.importer.findings import Findings
from kexpose.importer.source import SourceIngress

__all__ = ["ACCESS_KEYS", "Access", "read_access", "source_ranges"]

_BASIC = ("auth-type", "auth-secret", "auth-secret-type", "auth-realm")
_FORWARD = ("auth-url", "auth-response-headers", "auth-signin", "auth-method")
#: Forward-auth settings the model has no field for; they do not weaken the protection.
_FORWARD_EXTRA: Final = {
    "auth-signin-redirect-param": "kexpose-proxy always names the parameter 'rd'",
    "auth-request-redirect": "kexpose-proxy does not send X-Auth-Request-Redirect",
    "auth-cache-key": "kexpose-proxy caches by its own key (or not at all)",
    "auth-cache-duration": "the converted auth is not cached: every request asks the service",
    "auth-always-set-cookie": "kexpose-proxy passes the auth service's Set-Cookie on denials only",
    "auth-proxy-set-headers": "kexpose-proxy sends the auth service the fixed X-Original-* and "
    "X-Forwarded-* headers",
    "auth-keepalive": "a connection pool setting of nginx",
}
_RANGES = ("whitelist-source-range", "denylist-source-range")
#: Every annotation this module reads (without the nginx prefix).
ACCESS_KEYS: Final = frozenset((*_BASIC, *_FORWARD, *_FORWARD_EXTRA, *_RANGES))

_Net = IPv4Network | IPv6Network
_EVERYONE: Final[tuple[_Net, ...]] = (ip_network("0.0.0.0/0"), ip_network("::/0"))


@dataclass(slots=True)
class Access:
    """What an Ingress's protection becomes: ``auth:`` and ``allowSourceRanges`` (stack
    config, camelCase), or why the Ingress must be withheld."""

    auth: dict[str, Any] | None = None
    ranges: list[str] | None = None
    withheld: str | None = None
    notes: list[str] = field(default_factory=list)


def _parse_ranges(value: str) -> list[_Net] | str:
    out: list[_Net] = []
    for part in value.split(","):
        text = part.strip()
        if not text:
            continue
        try:
            out.append(ip_network(text, strict=False))
        except ValueError:
            return text
    return out


def source_ranges(allow: list[_Net] | None, deny: list[_Net]) -> list[str]:
    """The allow list equal to ``allow`` (everyone when None) minus ``deny``.

    ingress-nginx writes the deny list first (``deny`` directives, then ``allow``, then
    ``deny all`` when there is an allow list), so a denied address is refused even when an
    allowed range holds it; the difference of CIDR sets is a finite CIDR set
    (``ipaddress.address_exclude``).
    """
    current: list[_Net] = list(allow if allow is not None else _EVERYONE)
    for d in deny:
        nxt: list[_Net] = []
        for a in current:
            if a.version != d.version:
                nxt.append(a)
            elif d.supernet_of(a):  # type: ignore[arg-type]
                continue
            elif a.supernet_of(d):  # type: ignore[arg-type]
                nxt.extend(a.address_exclude(d))  # type: ignore[arg-type]
            else:
                nxt.append(a)
        current = nxt
    return [str(n) for n in sorted(current, key=lambda n: (n.version, n))]


def read_access(ing: SourceIngress, findings: Findings) -> Access:
    """The protection of ``ing``, with its report lines. The model renders it with either
    controller API: kexpose.dev annotations on an Ingress, an EdgeAuth object that the
    HTTPRoute's rules name (ExtensionRef) with the Gateway API (edge-auth.md)."""
    a = {k.removeprefix(NGINX_PREFIX): v for k, v in ing.annotations.items()}
    out = Access()
    _ranges(ing, findings, a, out)
    kind = a.get("auth-type", "").strip().lower()
    if "auth-url" in a and kind == "basic":
        out.withheld = "basic auth and forward auth together: the model has one mechanism"
        findings.add(
            ing,
            f"{NGINX_PREFIX}auth-url",
            "not-convertible",
            "with auth-type basic too, ingress-nginx asks for both; an app's auth has one type",
            todo="keep one of them",
            doc=doc_url("external-authentication"),
        )
    elif "auth-url" in a:
        _forward(ing, findings, a, out)
    elif kind == "basic":
        _basic(ing, findings, a, out)
    elif kind:
        out.withheld = f"auth-type {kind!r}: only basic is convertible"
        findings.add(
            ing,
            f"{NGINX_PREFIX}auth-type",
            "not-convertible",
            f"{kind!r} auth is in no kexpose plan (basic over TLS, forward auth or JWT replace it)",
            todo="move the users to basic auth or forward auth",
            doc=doc_url("authentication"),
        )
    if not kind:
        for key in _BASIC[1:]:
            if key in a:
                findings.add(
                    ing,
                    f"{NGINX_PREFIX}{key}",
                    "not-convertible",
                    "without auth-type basic ingress-nginx ignores it",
                    todo="drop it",
                    doc=doc_url("authentication"),
                )
    return out


def _ranges(ing: SourceIngress, findings: Findings, a: dict[str, str], out: Access) -> None:
    allow: list[_Net] | None = None
    deny: list[_Net] = []
    for key in _RANGES:
        if key not in a:
            continue
        parsed = _parse_ranges(a[key])
        if isinstance(parsed, str):
            out.withheld = f"{key}: {parsed!r} is not a CIDR"
            findings.add(
                ing,
                f"{NGINX_PREFIX}{key}",
                "not-convertible",
                f"{parsed!r} is not an IP address or CIDR",
                todo="fix the list",
                doc=doc_url(key),
            )
            return
        if key == "whitelist-source-range":
            allow = parsed
        else:
            deny = parsed
    if allow is None and not deny:
        return
    ranges = source_ranges(allow, deny)
    if not ranges:
        out.withheld = "its source ranges allow no address at all"
        return
    out.ranges = ranges
    if allow is not None:
        findings.add(
            ing,
            f"{NGINX_PREFIX}whitelist-source-range",
            "converted",
            "allowSourceRanges of the app: other clients get 403, as from ingress-nginx",
            doc=doc_url("whitelist-source-range"),
        )
    if deny:
        findings.add(
            ing,
            f"{NGINX_PREFIX}denylist-source-range",
            "converted",
            f"the model has allow lists only: allowSourceRanges is every address "
            f"{'of the allow list ' if allow is not None else ''}except the denied ranges "
            f"({len(ranges)} CIDRs); denied clients get 403, as from ingress-nginx",
            doc=doc_url("denylist-source-range"),
        )


def _basic(ing: SourceIngress, findings: Findings, a: dict[str, str], out: Access) -> None:
    doc = doc_url("authentication")
    secret_ref = a.get("auth-secret", "").strip()
    secret_type = a.get("auth-secret-type", "auth-file").strip()
    namespace, _, name = secret_ref.rpartition("/")
    why: str | None = None
    if not name:
        why = "auth-secret is missing (ingress-nginx answers 503)"
    elif namespace and namespace != ing.namespace:
        why = (
            f"auth-secret {secret_ref!r} is in namespace {namespace!r}; kexpose-proxy reads the "
            "Secret from the app's namespace"
        )
    elif secret_type != "auth-file":  # noqa: S105  -- a Secret layout name, not a password
        why = (
            f"auth-secret-type {secret_type!r}: kexpose reads an htpasswd 'auth' key (auth-file) "
            "or a kubernetes.io/basic-auth Secret; an auth-map Secret (one key per user) is not "
            "read"
        )
    if why is not None:
        out.withheld = why
        findings.add(
            ing,
            f"{NGINX_PREFIX}auth-secret",
            "not-convertible",
            why,
            todo="put the same 'user:hash' lines under the key 'auth' of a Secret in the "
            "Ingress's namespace and name it in auth-secret",
            doc=doc,
        )
        return
    auth: dict[str, Any] = {"type": "basic", "secret": name}
    if "auth-realm" in a:
        auth["realm"] = a["auth-realm"]
    out.auth = auth
    for key in _BASIC:
        if key in a:
            findings.add(
                ing,
                f"{NGINX_PREFIX}{key}",
                "converted",
                f"auth: basic of the app with secret {name!r} (htpasswd 'auth' key, as "
                "auth-file); no or wrong credentials get 401 with the realm, as from "
                "ingress-nginx",
                doc=doc,
            )


def _forward(ing: SourceIngress, findings: Findings, a: dict[str, str], out: Access) -> None:
    doc = doc_url("external-authentication")
    url = a["auth-url"].strip()
    if "$" in url:
        out.withheld = "auth-url uses nginx variables"
        findings.add(
            ing,
            f"{NGINX_PREFIX}auth-url",
            "not-convertible",
            f"{url!r} uses nginx variables, which kexpose-proxy does not expand",
            todo="use a fixed URL (kexpose-proxy sends X-Original-URL and X-Forwarded-*)",
            doc=doc,
        )
        return
    auth: dict[str, Any] = {"type": "forward", "url": url}
    findings.add(
        ing,
        f"{NGINX_PREFIX}auth-url",
        "converted",
        "auth: forward of the app: a 2xx lets the request through, 401/403 are passed on",
        doc=doc,
    )
    if "auth-response-headers" in a:
        auth["responseHeaders"] = [
            h.strip() for h in a["auth-response-headers"].split(",") if h.strip()
        ]
        findings.add(
            ing,
            f"{NGINX_PREFIX}auth-response-headers",
            "converted",
            "auth.responseHeaders: copied from the auth answer onto the upstream request",
            doc=doc,
        )
    if "auth-signin" in a:
        signin = a["auth-signin"].strip()
        base, _, query = signin.partition("?")
        if query.startswith("rd=$") and "&" not in query:
            signin = base  # kexpose-proxy adds rd=<original URL> itself, as ingress-nginx does
        if "$" in signin:
            findings.add(
                ing,
                f"{NGINX_PREFIX}auth-signin",
                "approximated",
                f"{signin!r} uses nginx variables; left out, so a 401 reaches the client "
                "instead of a redirect to the sign-in page",
                todo="use a fixed sign-in URL (kexpose-proxy adds rd=<original URL>)",
                doc=doc,
            )
        else:
            auth["signin"] = signin
            findings.add(
                ing,
                f"{NGINX_PREFIX}auth-signin",
                "converted",
                "auth.signin: a 401 becomes a 302 to it with rd=<original URL>",
                doc=doc,
            )
    method = a.get("auth-method", "").strip().upper()
    if method:
        findings.add(
            ing,
            f"{NGINX_PREFIX}auth-method",
            "converted" if method == "GET" else "approximated",
            "kexpose-proxy asks the auth service with GET"
            + ("" if method == "GET" else f", not {method}"),
            todo="" if method == "GET" else "make the auth service answer GET",
            doc=doc,
        )
    for key, why in _FORWARD_EXTRA.items():
        if key in a:
            findings.add(
                ing,
                f"{NGINX_PREFIX}{key}",
                "approximated",
                f"left out: {why}; the protection itself is converted",
                doc=doc,
            )
    out.auth = auth
