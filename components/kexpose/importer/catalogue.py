"""What ``kexpose import`` does with each ingress-nginx annotation, as tables.

Every ``nginx.ingress.kubernetes.io/*`` annotation lands in exactly one of four places:

- ``CONVERTED``: the converter maps it into today's exposure model, and the traffic tests
  (``tests/proxy/test_import_traffic.py``) prove kexpose-proxy answers as ingress-nginx did.
  Some conversions are *approximated*: the converter says how, per Ingress.
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
        "redirect that does not depend on TLS, see NEEDS_MODEL 'force-ssl-redirect-without-tls'",
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
        "literal paths keep ingress-nginx's character-prefix match (ImplementationSpecific); "
        "kexpose matches them case-sensitively where nginx's '~*' ignored case",
        "make the paths Prefix paths once the clients are known to use one spelling",
    ),
    Entry(
        "backend-protocol",
        "backend-protocol",
        "converted",
        "HTTP and AUTO_HTTP are kexpose-proxy's only backend protocol (plain HTTP/1.1)",
    ),
)

_ISSUE_9 = "Gateway API routes, filters and weighted backends in the model (issue 9)"
_ISSUE_10 = "edge authentication and source ranges in the model (issue 10)"

#: Convertible once the model gains the named feature. Keep this the one table to edit then.
NEEDS_MODEL: Final = _rows(
    Entry(
        "rewrite-target",
        "rewrite",
        "not-convertible",
        "the model has no URL rewrite",
        "keep the rewrite in the app (serve under the public path) until the model has it",
        f"URLRewrite filter ({_ISSUE_9})",
    ),
    Entry(
        "app-root",
        "rewrite",
        "not-convertible",
        "the model has no redirect for '/'",
        "redirect '/' in the app",
        f"RequestRedirect filter ({_ISSUE_9})",
    ),
    Entry(
        "force-ssl-redirect-without-tls",
        _HTTPS,
        "not-convertible",
        "kexpose redirects to HTTPS only for hosts with TLS on the Ingress",
        "give the Ingress TLS (tls.mode) or redirect at the load balancer",
        f"RequestRedirect filter with scheme https ({_ISSUE_9})",
    ),
    Entry(
        "permanent-redirect",
        "permanent-redirect",
        "not-convertible",
        "the model has no redirect route",
        "redirect in the app or at the load balancer",
        f"RequestRedirect filter ({_ISSUE_9})",
    ),
    Entry(
        "permanent-redirect-code",
        "permanent-redirect-code",
        "not-convertible",
        "belongs to permanent-redirect",
        "",
        f"RequestRedirect filter ({_ISSUE_9})",
    ),
    Entry(
        "temporal-redirect",
        "temporal-redirect",
        "not-convertible",
        "the model has no redirect route",
        "redirect in the app or at the load balancer",
        f"RequestRedirect filter ({_ISSUE_9})",
    ),
    Entry(
        "temporal-redirect-code",
        "temporal-redirect-code",
        "not-convertible",
        "belongs to temporal-redirect",
        "",
        f"RequestRedirect filter ({_ISSUE_9})",
    ),
    Entry(
        "upstream-vhost",
        "custom-nginx-upstream-vhost",
        "not-convertible",
        "the model cannot set the Host header the backend sees",
        "make the app accept the public host",
        f"RequestHeaderModifier filter ({_ISSUE_9})",
    ),
    Entry(
        "x-forwarded-prefix",
        "x-forwarded-prefix-header",
        "not-convertible",
        "the model cannot add request headers",
        "configure the prefix in the app",
        f"RequestHeaderModifier filter ({_ISSUE_9})",
    ),
    Entry(
        "proxy-connect-timeout",
        "custom-timeouts",
        "not-convertible",
        "the model has no per-route timeouts (kexpose-proxy's global ones apply)",
        "check that the controller's timeouts suit the app",
        f"route timeouts ({_ISSUE_9})",
    ),
    Entry(
        "proxy-send-timeout",
        "custom-timeouts",
        "not-convertible",
        "the model has no per-route timeouts (kexpose-proxy's global ones apply)",
        "check that the controller's timeouts suit the app",
        f"route timeouts ({_ISSUE_9})",
    ),
    Entry(
        "proxy-read-timeout",
        "custom-timeouts",
        "not-convertible",
        "the model has no per-route timeouts (kexpose-proxy's global ones apply)",
        "check that the controller's timeouts suit the app",
        f"route timeouts ({_ISSUE_9})",
    ),
    Entry(
        "enable-cors",
        "enable-cors",
        "not-convertible",
        "the model has no CORS policy",
        "answer CORS in the app until the model has it",
        f"CORS filter ({_ISSUE_9})",
    ),
    *(
        Entry(
            f"cors-{part}",
            "enable-cors",
            "not-convertible",
            "belongs to enable-cors",
            "",
            f"CORS filter ({_ISSUE_9})",
        )
        for part in (
            "allow-origin",
            "allow-methods",
            "allow-headers",
            "expose-headers",
            "allow-credentials",
            "max-age",
        )
    ),
    *(
        Entry(
            key,
            "canary",
            "not-convertible",
            "the model has no weighted or header-matched backends; the canary Ingress is left "
            "out and its main Ingress keeps all traffic",
            "shift the traffic fully before importing, or wait for weighted backends",
            f"weighted backends and header matches ({_ISSUE_9})",
        )
        for key in (
            "canary",
            "canary-weight",
            "canary-weight-total",
            "canary-by-header",
            "canary-by-header-value",
            "canary-by-header-pattern",
            "canary-by-cookie",
        )
    ),
    Entry(
        "whitelist-source-range",
        "whitelist-source-range",
        "not-convertible",
        "the model has no per-route source ranges; every client would be let in",
        "restrict at the load balancer (controller.service.loadBalancerSourceRanges) meanwhile",
        f"allowSourceRanges ({_ISSUE_10})",
    ),
    *(
        Entry(
            key,
            "authentication",
            "not-convertible",
            "the model has no basic auth; the routes would be open",
            "keep the app off the public controller until auth lands",
            f"auth: basic ({_ISSUE_10})",
        )
        for key in ("auth-type", "auth-secret", "auth-secret-type", "auth-realm")
    ),
    *(
        Entry(
            key,
            "external-authentication",
            "not-convertible",
            "the model has no forward auth; the routes would be open",
            "keep the app off the public controller until auth lands",
            f"auth: forward ({_ISSUE_10})",
        )
        for key in (
            "auth-url",
            "auth-method",
            "auth-signin",
            "auth-signin-redirect-param",
            "auth-response-headers",
            "auth-request-redirect",
            "auth-cache-key",
            "auth-cache-duration",
            "auth-always-set-cookie",
            "auth-proxy-set-headers",
        )
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
        "denylist-source-range",
        "denylist-source-range",
        "not-convertible",
        "kexpose's edge access model has allow lists only (edge-auth spec)",
        "turn the deny list into an allow list, or deny at the load balancer",
    ),
    Entry(
        "proxy-body-size",
        "custom-max-body-size",
        "not-convertible",
        "the model has no request body limit (kexpose-proxy streams bodies of any size)",
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
    return CONVERTED.get(key) or NEEDS_MODEL.get(key) or UNSUPPORTED.get(key)
