"""What one Ingress's annotations mean, read with ingress-nginx's semantics.

Produces the annotations the model carries (``kexpose.dev/ssl-redirect``, and annotations of
other tools kept as they are), whether ingress-nginx redirected the Ingress's plain-HTTP
requests, and whether the Ingress must be withheld whole; every annotation leaves a report line
(:mod:`kexpose.importer.catalogue` holds the verdicts).

The HTTPS redirect follows ingress-nginx's ``redirect_to_https`` (rootfs/etc/nginx/lua/
lua_ingress.lua): per location, ``force-ssl-redirect``, or ``ssl-redirect`` (default true) when a
certificate is configured for the request's host, by this Ingress or another one of the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from kexpose.importer.catalogue import (
    CERT_MANAGER_ANNOTATIONS,
    CONVERTED,
    NEEDS_MODEL,
    NGINX_PREFIX,
    doc_url,
    is_snippet,
    lookup,
)
from kexpose.importer.findings import Findings
from kexpose.importer.source import LEGACY_CLASS_ANNOTATION, SourceIngress
from kexpose.proxy.routes import SSL_REDIRECT_ANNOTATION

__all__ = [
    "INGRESS_DOC",
    "REGEX_CHARS",
    "PlainHttp",
    "Reading",
    "flag",
    "is_regex",
    "read_annotations",
    "redirects",
]

INGRESS_DOC: Final = "https://kubernetes.io/docs/concepts/services-networking/ingress/"
#: Characters that make a path a regular expression rather than a literal (PCRE metacharacters).
REGEX_CHARS: Final = re.compile(r"[.^$*+?()\[\]{}|\\]")
#: Annotations that protect a route or make it work at all: an Ingress with one the model
#: cannot express is withheld whole, since importing the rest would open a protected route to
#: everyone or send traffic a backend cannot read.
_WITHHOLD: Final = {
    "auth-tls-secret": "its client-certificate check would be dropped",
    "ssl-passthrough": "kexpose-proxy would terminate TLS the backend expects to terminate",
}
#: Where the user guide documents each snippet annotation.
_SNIPPET_ANCHORS: Final = {
    "configuration-snippet": "configuration-snippet",
    "server-snippet": "server-snippet",
    "stream-snippet": "stream-snippet",
    "auth-snippet": "external-authentication",
    "modsecurity-snippet": "modsecurity",
}
_BOOLEANS: Final = ("ssl-redirect", "force-ssl-redirect", "preserve-trailing-slash", "use-regex")
_TRUE: Final = ("true", "1", "yes", "on")
_FALSE: Final = ("false", "0", "no", "off")
_HTTP: Final = ("HTTP", "AUTO_HTTP")


#: What the target does with an Ingress that opts out of the HTTPS redirect: kexpose-proxy
#: serves its Ingress over plain HTTP (``served``); a Gateway attaches its HTTPRoutes to the HTTP
#: listener too (``http-listener``), except where the environment keeps that listener to the
#: redirect (``enforced``: staging, prod; ``Profile.http_redirect_only``).
PlainHttp = Literal["served", "http-listener", "enforced"]
_PLAIN_HTTP: Final[dict[PlainHttp, str]] = {
    "served": f"plain HTTP is served: {SSL_REDIRECT_ANNOTATION}: 'false'",
    "http-listener": (
        f"plain HTTP is served: {SSL_REDIRECT_ANNOTATION}: 'false' attaches the app's "
        "HTTPRoutes to the Gateway's HTTP listener too, and the Gateway's HTTPS redirect leaves "
        "the host out"
    ),
    "enforced": (
        "HTTPS is enforced: this environment's Gateway serves plain HTTP only as a 308 to "
        "HTTPS, where ingress-nginx served plain HTTP"
    ),
}


@dataclass(frozen=True, slots=True)
class Reading:
    annotations: dict[str, str]
    """Annotations for the model's Ingress."""
    redirect: bool
    """ingress-nginx answered this Ingress's plain-HTTP requests with a 308 to HTTPS."""
    withheld: str | None
    """Why the Ingress must not be imported at all, if so."""


def flag(value: str) -> bool | None:
    """An annotation boolean as ingress-nginx parses it; None when it is not one."""
    v = value.strip().lower()
    return True if v in _TRUE else False if v in _FALSE else None


def is_regex(ing: SourceIngress) -> bool:
    """use-regex, or rewrite-target, which implies it ("Use Regex" in the annotations guide)."""
    a = ing.annotations
    return bool(flag(a.get(f"{NGINX_PREFIX}use-regex", ""))) or f"{NGINX_PREFIX}rewrite-target" in a


def redirects(ing: SourceIngress, *, host_tls: bool) -> bool:
    """Whether ingress-nginx redirects plain HTTP of ``ing``'s paths (lua ``redirect_to_https``);
    a value that is not a boolean leaves the default in place."""
    a = ing.annotations
    force = bool(flag(a.get(f"{NGINX_PREFIX}force-ssl-redirect", "false")))
    ssl_redirect = flag(a.get(f"{NGINX_PREFIX}ssl-redirect", "true")) is not False
    return force or (ssl_redirect and host_tls)


def read_annotations(
    ing: SourceIngress,
    findings: Findings,
    *,
    host_tls: bool,
    handled: frozenset[str] = frozenset(),
    plain_http: PlainHttp = "served",
) -> Reading:
    """Read every annotation of ``ing``; ``host_tls``: a certificate is configured for one of
    its hosts (by it or another Ingress); ``handled``: nginx annotations (without the prefix)
    another reader reports (auth, source ranges, path filters); ``plain_http``: what the
    target does with an opt-out of the HTTPS redirect (:data:`PlainHttp`)."""
    out: dict[str, str] = {}
    redirect = redirects(ing, host_tls=host_tls)
    opt_out = host_tls and not redirect
    for key in sorted(ing.annotations):
        value = ing.annotations[key]
        if key.removeprefix(NGINX_PREFIX) in handled and key.startswith(NGINX_PREFIX):
            continue
        if key.startswith(NGINX_PREFIX):
            _nginx(
                ing,
                findings,
                key,
                value,
                redirect=redirect,
                host_tls=host_tls,
                plain_http=plain_http,
            )
        elif key == LEGACY_CLASS_ANNOTATION:
            findings.add(
                ing,
                key,
                "converted",
                f"class {value!r} becomes spec.ingressClassName of the stack's controller "
                "(the annotation is deprecated)",
                doc=f"{INGRESS_DOC}#deprecated-annotation",
            )
        elif key in CERT_MANAGER_ANNOTATIONS:
            findings.add(
                ing,
                key,
                "converted",
                f"tls.mode cert-manager with issuer {value!r} ({CERT_MANAGER_ANNOTATIONS[key]})",
                doc="https://cert-manager.io/docs/usage/ingress/",
            )
        elif key.startswith("kubectl.kubernetes.io/"):
            findings.add(ing, key, "skipped", "kubectl's own bookkeeping; not part of the stack")
        elif key.startswith(("nginx.org/", "ingress.kubernetes.io/")):
            findings.add(
                ing,
                key,
                "not-convertible",
                "an annotation of another controller, which kexpose does not read",
                todo="check what it did and drop it",
            )
        else:
            out[key] = value
            findings.add(ing, key, "converted", "kept unchanged on the Ingress")
    withheld = _withheld(ing, handled)
    trailing = flag(ing.annotations.get(f"{NGINX_PREFIX}preserve-trailing-slash", ""))
    if redirect and ing.tls and not trailing and withheld is None:
        findings.add(
            ing,
            "ssl-redirect",
            "approximated",
            "plain HTTP gets a 308 to https://host/uri as from ingress-nginx, but ingress-nginx "
            "drops a trailing '/' of the URI (unless preserve-trailing-slash is 'true') and "
            "kexpose keeps it",
            doc=doc_url("server-side-https-enforcement-through-redirect"),
        )
    if opt_out and plain_http != "enforced":
        out[SSL_REDIRECT_ANNOTATION] = "false"
    return Reading(out, redirect, withheld)


def _withheld(ing: SourceIngress, handled: frozenset[str]) -> str | None:
    for key, why in _WITHHOLD.items():
        if key not in handled and f"{NGINX_PREFIX}{key}" in ing.annotations:
            return f"{key}: {why}"
    proto = ing.annotations.get(f"{NGINX_PREFIX}backend-protocol", "HTTP").strip().upper()
    if proto not in _HTTP:
        return f"backend-protocol {proto}: the backend would get plain HTTP/1.1 it cannot read"
    return None


def _nginx(
    ing: SourceIngress,
    findings: Findings,
    key: str,
    value: str,
    *,
    redirect: bool,
    host_tls: bool,
    plain_http: PlainHttp,
) -> None:
    short = key.removeprefix(NGINX_PREFIX)
    doc = doc_url(CONVERTED[short].anchor) if short in CONVERTED else ""
    if is_snippet(short):
        findings.add(
            ing,
            key,
            "refused",
            "snippets paste raw nginx configuration into the controller: the IngressNightmare "
            "attack surface (CVE-2025-1974); never converted",
            todo="express what the snippet did with kexpose features, or drop it",
            doc=doc_url(_SNIPPET_ANCHORS.get(short, "configuration-snippet")),
        )
        return
    on = flag(value)
    if short in _BOOLEANS and on is None:
        findings.add(
            ing,
            key,
            "not-convertible",
            f"{value!r} is not 'true' or 'false' (ingress-nginx keeps its default)",
            todo="fix or drop the annotation",
            doc=doc,
        )
        return
    if short == "ssl-redirect":
        if on:
            what = "HTTPS enforced by the default 308" if redirect else "no TLS for the host"
        elif redirect:
            what = "force-ssl-redirect wins; HTTPS is enforced"
        elif host_tls:
            what = _PLAIN_HTTP[plain_http]
        else:
            what = "no TLS for the host, so nothing is redirected either way"
        enforced = host_tls and not redirect and plain_http == "enforced"
        findings.add(ing, key, "approximated" if enforced else "converted", what, doc=doc)
    elif short == "force-ssl-redirect":
        if on and not host_tls:
            findings.entry(ing, key, NEEDS_MODEL["force-ssl-redirect-without-tls"])
        else:
            what = "HTTPS enforced by the default 308" if on else "ingress-nginx's default"
            findings.add(ing, key, "converted", what, doc=doc)
    elif short == "preserve-trailing-slash":
        what = "kexpose's redirect keeps the URI as sent" if on else "ingress-nginx's default"
        findings.add(ing, key, "converted", what, doc=doc)
    elif short == "use-regex":
        if on:
            findings.add(ing, key, "approximated", "see each path's row", doc=doc)
        else:
            findings.add(ing, key, "converted", "ingress-nginx's default", doc=doc)
    elif short == "backend-protocol":
        _backend_protocol(ing, findings, key, value)
    else:
        entry = lookup(short)
        if entry is None:
            findings.add(
                ing,
                key,
                "not-convertible",
                "not in kexpose's annotation catalogue",
                todo="check what it did and how to get it without nginx",
            )
        else:
            findings.entry(ing, key, entry)


def _backend_protocol(ing: SourceIngress, findings: Findings, key: str, value: str) -> None:
    proto = value.strip().upper()
    doc = doc_url("backend-protocol")
    if proto in _HTTP:
        findings.add(ing, key, "converted", CONVERTED["backend-protocol"].note, doc=doc)
    elif proto in ("GRPC", "GRPCS"):
        findings.add(
            ing,
            key,
            "not-convertible",
            f"not convertible in this version: {proto} needs HTTP/2 to the backend; needs gRPC "
            "backends in kexpose-proxy and a backend protocol on the Service port (issue 11)",
            todo="keep this app on its current controller until issue 11 lands",
            doc=doc,
        )
    elif proto == "HTTPS":
        findings.add(
            ing,
            key,
            "not-convertible",
            "kexpose-proxy speaks plain HTTP to backends (no backend TLS)",
            todo="serve plain HTTP inside the cluster, or keep this app where it is",
            doc=doc,
        )
    else:
        findings.add(
            ing,
            key,
            "not-convertible",
            f"{value!r}: kexpose-proxy speaks HTTP/1.1 to backends only",
            todo="keep this app where it is",
            doc=doc,
        )
