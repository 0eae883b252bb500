"""What ``kexpose import`` does with each ingress-nginx annotation, as tables.

Every ``nginx.ingress.kubernetes.io/*`` annotation lands in exactly one of four places:

- ``CONVERTED`` and ``CONVERTED_NOW``: the converter maps it into today's exposure model, and
  the traffic tests (``tests/proxy/test_import_traffic.py``) prove kexpose-proxy answers as
  ingress-nginx did. Some conversions are *approximated*: the converter says how, per Ingress.
  ``CONVERTED_NOW`` holds the rows that needed Gateway API path features (issue 9), edge
  auth (issue 10), route timeouts or CORS (issue 12); their conversion depends on the stack's
  controller API.
- ``NEEDS_MODEL``: the behaviour is well defined but the exposure model cannot say it yet. Each
  row names the missing model feature (and the issue that brings it), so that a row moves to
  ``CONVERTED`` when the model gains the feature. This is the one table to edit then.
- ``UNSUPPORTED``: nothing in kexpose does it, and nothing planned will; the row says why and
  what to do instead.
- snippets (any key ending in ``-snippet``/``-snippets``): never converted. They paste raw nginx
  configuration into the controller, the attack surface of IngressNightmare (CVE-2025-1974 and
  its family, March 2025), and kexpose-proxy has no configuration language to paste into.

Anything else with the nginx prefix is reported as unknown, never silently dropped.

Source of truth for behaviour: the ingress-nginx user guide, "Annotations"
(:data:`DOC`, docs/user-guide/nginx-configuration/annotations.md), whose section anchors the
rows cite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "CERT_MANAGER_ANNOTATIONS",
    "CONVERTED",
    "CONVERTED_NOW",
    "DOC",
    "NEEDS_MODEL",
    "NGINX_PREFIX",
    "UNSUPPORTED",
    "Entry",
    "Verdict",
    "doc_url",
    "is_snippet",
    "lookup",
]

Verdict = Literal["converted", "approximated", "not-convertible", "refused"]

NGINX_PREFIX: Final = "nginx.ingress.kubernetes.io/"
DOC: Final = (
    "https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/"
)
#: cert-manager's ingress-shim annotations (https://cert-manager.io/docs/usage/ingress/).
CERT_MANAGER_ANNOTATIONS: Final = {
    "cert-manager.io/cluster-issuer": "ClusterIssuer",
    "cert-manager.io/issuer": "Issuer",
}


def doc_url(anchor: str) -> str:
    return f"{DOC}#{anchor}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One annotation's row: what happens to it and where its behaviour is documented."""

    key: str
    """The name after the ``nginx.ingress.kubernetes.io/`` prefix."""
    anchor: str
    verdict: Verdict
    note: str
    """How it is converted or approximated, or why it cannot be."""
    todo: str = ""
    """What the user should do about it (empty when nothing)."""
    feature: str | None = None
    """The model feature whose absence makes it not convertible (NEEDS_MODEL rows)."""

    @property
    def doc(self) -> str:
        return doc_url(self.anchor)


def _rows(*entries: Entry) -> dict[str, Entry]:
    return {e.key: e for e in entries}


_HTTPS = "server-side-https-enforcement-through-redirect"

#: Interpreted by the converter (``kexpose.importer.convert``); the note is the usual outcome,
#: the converter decides per value and per Ingress (e.g. force-ssl-redirect without TLS).
CONVERTED: Final = _rows(
    Entry(
        "ssl-redirect",
        _HTTPS,
        "converted",
        "'false' becomes kexpose.dev/ssl-redirect: 'false' (plain HTTP served); 'true' is "
        "kexpose-proxy's default for hosts with TLS (308 to https://host/uri)",
    ),
    Entry(
        "force-ssl-redirect",
        _HTTPS,
        "converted",
        "with TLS on the Ingress it is the default redirect (308); without TLS it needs a "
        "redirect of plain HTTP only, see NEEDS_MODEL 'force-ssl-redirect-without-tls'",
    ),
    Entry(
        "preserve-trailing-slash",
        _HTTPS,
        "converted",
        "'true' keeps the trailing slash in the HTTPS redirect, which kexpose-proxy always does",
    ),
    Entry(
        "use-regex",
        "use-regex",
        "approximated",
        "literal paths keep ingress-nginx's character-prefix match (ImplementationSpecific; "
        "with api gateway a RegularExpression path '^<path>.*'); kexpose matches them "
        "case-sensitively where nginx's '~*' ignored case",
        "make the paths Prefix paths once the clients are known to use one spelling",
    ),
    Entry(
        "backend-protocol",
        "backend-protocol",
        "converted",
        "HTTP and AUTO_HTTP are kexpose-proxy's only backend protocol (plain HTTP/1.1)",
    ),
)

_GW = "with controller api: gateway (--to gateway, or --to stack when needed)"
_CANARY_KEYS = (
    "canary",
    "canary-weight",
    "canary-weight-total",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
)

#: Converted since the model gained Gateway API path features (issue 9), edge auth (issue
#: 10), route timeouts and CORS (issue 12); read by :mod:`kexpose.importer.routing`,
#: :mod:`kexpose.importer.canary`, :mod:`kexpose.importer.access`,
#: :mod:`kexpose.importer.timeouts` and :mod:`kexpose.importer.cors`, which decide per value.
#: The Gateway API rows are not convertible with ``api: ingress`` (the model refuses path
#: filters, timeouts and CORS there); the auth rows convert with either API (kexpose.dev
#: annotations on an Ingress; an EdgeAuth object named by the HTTPRoute rules' ExtensionRef
#: filter with the Gateway API), and an Ingress whose protection cannot be expressed is
#: withheld whole.
CONVERTED_NOW: Final = _rows(
    Entry(
        "rewrite-target",
        "rewrite",
        "approximated",
        f"{_GW}: a literal path becomes URLRewrite ReplaceFullPath; '/p(/|$)(.*)' -> '/$2' "
        "becomes the Prefix path '/p' with ReplacePrefixMatch '/'; other capture groups are "
        "not convertible (the path is left out). Prefix paths match whole segments and case, "
        "nginx's regex a case-insensitive character prefix",
    ),
    Entry(
        "app-root",
        "rewrite",
        "converted",
        f"{_GW}: an Exact '/' path per host answering 302 to the root (RequestRedirect)",
    ),
    *(
        Entry(
            key,
            key,
            "approximated",
            f"{_GW}: every path answers with a RequestRedirect to the URL (scheme, host, port, "
            "path); the model has codes 301 and 302 only (307/308 become 302/301), and "
            "kexpose-proxy keeps the request's query where nginx's 'return' drops it",
        )
        for key in (
            "permanent-redirect",
            "permanent-redirect-code",
            "temporal-redirect",
            "temporal-redirect-code",
        )
    ),
    Entry(
        "upstream-vhost",
        "custom-nginx-upstream-vhost",
        "converted",
        f"{_GW}: URLRewrite hostname (a fixed name; nginx variables are not convertible)",
    ),
    Entry(
        "x-forwarded-prefix",
        "x-forwarded-prefix-header",
        "converted",
        f"{_GW}: RequestHeaderModifier sets X-Forwarded-Prefix",
    ),
    *(
        Entry(
            key,
            "canary",
            "converted",
            f"{_GW}: the main path gets weight and backends (HTTPBackendRef weights); a header "
            "match path of the same host and path goes to the canary ('never': to the main "
            "Service); a pattern is a RegularExpression match (Python re, not PCRE)",
        )
        for key in _CANARY_KEYS
    ),
    *(
        Entry(
            key,
            "authentication",
            "converted",
            "auth: basic with secret (the auth-file Secret, htpasswd 'auth' key) and realm, with "
            "either API; an auth-map Secret or one in another namespace is not convertible "
            "(Ingress withheld)",
        )
        for key in ("auth-type", "auth-secret", "auth-secret-type", "auth-realm")
    ),
    *(
        Entry(key, "external-authentication", "converted", f"auth: forward ({what}), either API")
        for key, what in (
            ("auth-url", "url; nginx variables are not convertible (Ingress withheld)"),
            ("auth-response-headers", "responseHeaders"),
            ("auth-signin", "signin; kexpose-proxy adds rd=<original URL> as ingress-nginx"),
            ("auth-method", "kexpose-proxy asks with GET; another method is approximated"),
        )
    ),
    *(
        Entry(
            key,
            "external-authentication",
            "approximated",
            "left out (the model has no field for it); the protection itself is converted",
        )
        for key in (
            "auth-signin-redirect-param",
            "auth-request-redirect",
            "auth-cache-key",
            "auth-cache-duration",
            "auth-always-set-cookie",
            "auth-proxy-set-headers",
            "auth-keepalive",
        )
    ),
    Entry(
        "whitelist-source-range",
        "whitelist-source-range",
        "converted",
        "allowSourceRanges of the app (with either API)",
    ),
    Entry(
        "denylist-source-range",
        "denylist-source-range",
        "converted",
        "allowSourceRanges of the app equal to every address (or the allow list) minus the "
        "denied CIDRs: the model has allow lists only, and the difference of CIDR sets is a "
        "finite CIDR set (with either API)",
    ),
    *(
        Entry(
            key,
            "custom-timeouts",
            "approximated",
            f"{_GW}: HTTPRoute timeouts.request of every path = 10 x the largest of the "
            "Ingress's timeouts (ingress2gateway's mapping): nginx bounds the gap between two "
            "operations, the route the whole exchange, so a longer stream is cut and a backend "
            "that stops answering gets 504 after min(that, kexpose-proxy's 60 s read timeout)",
            "check the slowest legitimate response of the app against it",
        )
        for key in ("proxy-connect-timeout", "proxy-send-timeout", "proxy-read-timeout")
    ),
    Entry(
        "enable-cors",
        "enable-cors",
        "approximated",
        f"{_GW}: the CORS filter of every path with ingress-nginx's defaults (origin '*', "
        "methods GET, PUT, POST, DELETE, PATCH, OPTIONS, its nine headers, credentials true, "
        "max-age 1728000); kexpose-proxy answers preflights 200 (nginx 204) and echoes the "
        "Origin (nginx '*' by default); like nginx it answers a preflight before auth, but "
        "after the source ranges (nginx before them too)",
    ),
    *(
        Entry(
            f"cors-{part}",
            "enable-cors",
            "converted",
            f"{_GW}: {field} of the CORS filter; a value ingress-nginx cannot parse falls back "
            "to its default; origins of other schemes and methods outside the Gateway API's "
            "nine are left out (approximated)",
        )
        for part, field in (
            ("allow-origin", "allowOrigins"),
            ("allow-methods", "allowMethods"),
            ("allow-headers", "allowHeaders"),
            ("expose-headers", "exposeHeaders"),
            ("allow-credentials", "allowCredentials"),
            ("max-age", "maxAge"),
        )
    ),
)

_NOT_IN_MODEL = "not in the exposure model yet (no issue plans it)"

#: Convertible once the model gains the named feature. Keep this the one table to edit then.
NEEDS_MODEL: Final = _rows(
    Entry(
        "force-ssl-redirect-without-tls",
        _HTTPS,
        "not-convertible",
        "kexpose redirects to HTTPS only for hosts with TLS on the Ingress; a RequestRedirect "
        "filter applies to every request of the path, so it cannot redirect plain HTTP only, "
        "and the model's codes are 301/302 where ingress-nginx sends 308",
        "give the Ingress TLS (tls.mode) or redirect at the load balancer",
        f"a redirect conditioned on the request scheme ({_NOT_IN_MODEL})",
    ),
    Entry(
        "canary-by-cookie",
        "canary",
        "not-convertible",
        "the Gateway API has no cookie match; clients with the cookie get the weighted split",
        "use canary-by-header instead",
        f"a cookie match ({_NOT_IN_MODEL})",
    ),
)

#: Not convertible, and no model feature is planned for it.
UNSUPPORTED: Final = _rows(
    Entry(
        "affinity",
        "session-affinity",
        "not-convertible",
        "kexpose-proxy, the controller the import targets, has no cookie affinity (its "
        "balancer is per request)",
        "make the app stateless or keep sessions in a shared store",
    ),
    *(
        Entry(
            key,
            "cookie-affinity",
            "not-convertible",
            "belongs to affinity: cookie, which kexpose-proxy does not do",
            "",
        )
        for key in (
            "affinity-mode",
            "affinity-canary-behavior",
            "session-cookie-name",
            "session-cookie-path",
            "session-cookie-domain",
            "session-cookie-samesite",
            "session-cookie-expires",
            "session-cookie-max-age",
            "session-cookie-secure",
            "session-cookie-change-on-failure",
            "session-cookie-conditional-samesite-none",
        )
    ),
    Entry(
        "proxy-body-size",
        "custom-max-body-size",
        "not-convertible",
        "the model has no request body limit, nor does the Gateway API, and kexpose-proxy "
        "streams bodies of any size: where ingress-nginx answered 413 (over this limit, or over "
        "its 1m default without the annotation), the backend gets the body",
        "enforce the limit in the app",
    ),
    Entry(
        "ssl-passthrough",
        "ssl-passthrough",
        "not-convertible",
        "kexpose-proxy terminates TLS; it has no layer-4 passthrough",
        "expose the app with a LoadBalancer Service of its own",
    ),
    *(
        Entry(
            key,
            "backend-certificate-authentication",
            "not-convertible",
            "kexpose-proxy speaks plain HTTP to backends (no backend TLS)",
            "terminate TLS in front of the app inside the cluster, or keep it on plain HTTP",
        )
        for key in (
            "proxy-ssl-secret",
            "proxy-ssl-verify",
            "proxy-ssl-verify-depth",
            "proxy-ssl-name",
            "proxy-ssl-server-name",
            "proxy-ssl-ciphers",
            "proxy-ssl-protocols",
        )
    ),
    Entry(
        "default-backend",
        "default-backend",
        "not-convertible",
        "ingress-nginx also sends errors (503 without endpoints) there; kexpose's default "
        "backend only takes requests no path matched",
        "use spec.defaultBackend (ingress.defaultBackend in the stack) for unmatched requests",
    ),
    *(
        Entry(
            key,
            "client-certificate-authentication",
            "not-convertible",
            "kexpose-proxy does not ask clients for certificates (no mTLS at the edge)",
            "keep the app on its current controller, or check client certificates in the app",
        )
        for key in (
            "auth-tls-secret",
            "auth-tls-verify-client",
            "auth-tls-verify-depth",
            "auth-tls-error-page",
            "auth-tls-pass-certificate-to-upstream",
            "auth-tls-match-cn",
        )
    ),
    Entry(
        "limit-rps",
        "rate-limiting",
        "not-convertible",
        "kexpose-proxy does no rate limiting",
        "limit in the app or at the load balancer",
    ),
    Entry(
        "limit-connections",
        "rate-limiting",
        "not-convertible",
        "kexpose-proxy does no rate limiting",
        "limit in the app or at the load balancer",
    ),
)


def is_snippet(key: str) -> bool:
    """Snippet annotations, as the ``nginx-no-snippets`` policy rule defines them."""
    return key.endswith(("-snippet", "-snippets"))


def lookup(key: str) -> Entry | None:
    """The row of an annotation named without the nginx prefix, in the first table holding it."""
    return (
        CONVERTED.get(key) or CONVERTED_NOW.get(key) or NEEDS_MODEL.get(key) or UNSUPPORTED.get(key)
    )
