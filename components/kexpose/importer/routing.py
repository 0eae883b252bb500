"""An Ingress's request-changing annotations as Gateway API path features of the model.

Rewrites, redirects, ``app-root``, ``upstream-vhost`` and ``x-forwarded-prefix`` become a
path's ``filters`` (URLRewrite, RequestRedirect, RequestHeaderModifier: HTTPRouteFilter in the
Gateway API spec), which the model renders with ``kexpose:controller`` ``api: gateway`` only;
with ``api: ingress`` they stay not convertible and say so. Behaviour per the ingress-nginx user
guide "Annotations": "Rewrite" (rewrite-target, app-root), "Permanent Redirect", "Temporal
Redirect", "Custom NGINX upstream vhost", "X-Forwarded-Prefix Header".

A redirect that cannot be expressed withholds the Ingress (proxying instead of redirecting
would serve what ingress-nginx never served); other losses leave the path out or are reported
as approximations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from kexpose.hosts import host_error
from kexpose.importer.annotations import REGEX_CHARS
from kexpose.importer.catalogue import NGINX_PREFIX, doc_url
from kexpose.importer.findings import Findings
from kexpose.importer.source import SourceIngress

__all__ = ["GATEWAY_KEYS", "PathPlan", "Routing", "char_prefix_pattern"]

#: Annotations whose conversion needs ``api: gateway`` (without the nginx prefix).
GATEWAY_KEYS: Final = frozenset(
    {
        "rewrite-target",
        "app-root",
        "permanent-redirect",
        "permanent-redirect-code",
        "temporal-redirect",
        "temporal-redirect-code",
        "upstream-vhost",
        "x-forwarded-prefix",
    }
)
_ANCHORS: Final = {
    "rewrite-target": "rewrite",
    "app-root": "rewrite",
    "permanent-redirect": "permanent-redirect",
    "permanent-redirect-code": "permanent-redirect-code",
    "temporal-redirect": "temporal-redirect",
    "temporal-redirect-code": "temporal-redirect-code",
    "upstream-vhost": "custom-nginx-upstream-vhost",
    "x-forwarded-prefix": "x-forwarded-prefix-header",
}
# The usual "strip a prefix" rewrite: path /prefix(/|$)(.*) with rewrite-target /$2.
_STRIP_PREFIX: Final = re.compile(r"^\^?(/[^.^$*+?()\[\]{}|\\]*?)\(/\|\$\)\(\.\*\)\$?$")
#: The model's RequestRedirect codes (HTTPRequestRedirectFilter.statusCode: 301, 302), and the
#: one that keeps the meaning (permanent or not) of each code ingress-nginx may send.
_CODES: Final = {"permanent-redirect": 301, "temporal-redirect": 302}


_PATHS_DOC: Final = "https://kubernetes.github.io/ingress-nginx/user-guide/ingress-path-matching/"


def char_prefix_pattern(path: str) -> str:
    """The RegularExpression path that matches ``path`` as a character prefix: anchored with
    ``^`` and open with ``.*``, the same in kexpose-proxy (Python ``re``, the whole path must
    match) and Traefik (Go RE2 ``PathRegexp``, a search); the metacharacters both dialects share
    are escaped with ``\\``."""
    return "^" + REGEX_CHARS.sub(lambda m: "\\" + m[0], path) + ".*"


@dataclass(frozen=True, slots=True)
class PathPlan:
    """What one Ingress path becomes: its path, type and the model fields it gains."""

    path: str
    path_type: str
    extra: dict[str, Any]


@dataclass(slots=True)
class Routing:
    """The gateway features of one Ingress; :meth:`read` reports every annotation once."""

    ing: SourceIngress
    findings: Findings
    api: str
    withheld: str | None = None
    rewrite_target: str | None = None
    redirect: dict[str, Any] | None = None
    app_root: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None

    def _add(self, short: str, verdict: str, detail: str, todo: str = "") -> None:
        self.findings.add(
            self.ing,
            f"{NGINX_PREFIX}{short}",
            verdict,  # type: ignore[arg-type]
            detail,
            todo=todo,
            doc=doc_url(_ANCHORS[short]),
        )

    def read(self) -> None:
        a = {k.removeprefix(NGINX_PREFIX): v.strip() for k, v in self.ing.annotations.items()}
        present = sorted(k for k in a if k in GATEWAY_KEYS)
        if not present:
            return
        if self.api != "gateway":
            for key in present:
                self._add(
                    key,
                    "not-convertible",
                    "needs a path filter (HTTPRoute), which the model renders with controller "
                    "api: gateway only, and this stack uses api: ingress (see the stack's row)",
                    "import with --to gateway, or handle it in the app",
                )
            if "permanent-redirect" in a or "temporal-redirect" in a:
                self.withheld = "its redirect needs controller api: gateway"
            return
        self._redirect(a)
        if self.withheld is not None:
            return
        if self.redirect is not None:
            for key in ("rewrite-target", "app-root", "upstream-vhost", "x-forwarded-prefix"):
                if key in a:
                    self._add(key, "converted", "moot: every path of the Ingress redirects")
            return
        if "rewrite-target" in a:
            target = a["rewrite-target"]
            if target.startswith("/"):
                self.rewrite_target = target
                # Reported per path (the outcome depends on each path's shape).
            else:
                self.withheld = f"rewrite-target {target!r} is not a path"
                self._add(
                    "rewrite-target",
                    "not-convertible",
                    f"{target!r} does not start with '/' (nginx would redirect to it)",
                    "use a permanent-redirect or temporal-redirect",
                )
                return
        if "app-root" in a:
            root = a["app-root"]
            if root.startswith("/") and "$" not in root and not any(c.isspace() for c in root):
                self.app_root = root
                self._add(
                    "app-root",
                    "converted",
                    f"an Exact '/' path on each host answering 302 to {root} (RequestRedirect "
                    "ReplaceFullPath), as ingress-nginx's 'if ($uri = /)' does",
                )
            else:
                self._add("app-root", "not-convertible", f"{root!r} is not a plain path")
        if "upstream-vhost" in a:
            vhost = a["upstream-vhost"]
            if "$" in vhost or host_error(vhost) is not None or vhost.startswith("*"):
                self._add(
                    "upstream-vhost",
                    "not-convertible",
                    f"{vhost!r} is not a fixed host name (nginx variables are not expanded); "
                    "the backend sees the client's Host",
                    "make the app accept the public host",
                )
            else:
                self.hostname = vhost
                self._add(
                    "upstream-vhost",
                    "converted",
                    f"URLRewrite hostname {vhost!r}: the backend sees Host: {vhost}",
                )
        if "x-forwarded-prefix" in a:
            prefix = a["x-forwarded-prefix"]
            if "$" in prefix or not prefix:
                self._add(
                    "x-forwarded-prefix",
                    "not-convertible",
                    f"{prefix!r} uses nginx variables (or is empty)",
                    "configure the prefix in the app",
                )
            else:
                self.headers["X-Forwarded-Prefix"] = prefix
                self._add(
                    "x-forwarded-prefix",
                    "converted",
                    f"RequestHeaderModifier sets X-Forwarded-Prefix: {prefix}",
                )

    def _redirect(self, a: dict[str, str]) -> None:
        chosen = [k for k in ("permanent-redirect", "temporal-redirect") if k in a]
        for key in ("permanent-redirect-code", "temporal-redirect-code"):
            if key in a and key.removesuffix("-code") not in a:
                self._add(key, "not-convertible", "without its redirect annotation it does nothing")
        if not chosen:
            return
        if len(chosen) == 2:
            self.withheld = "both permanent-redirect and temporal-redirect"
            for key in chosen:
                self._add(
                    key,
                    "not-convertible",
                    "both redirects are set; which one ingress-nginx sends depends on its version",
                    "keep one",
                )
            return
        key = chosen[0]
        url = urlsplit(a[key])
        why = None
        if url.scheme not in ("http", "https") or not url.hostname:
            why = f"{a[key]!r} is not an absolute http(s) URL"
        elif url.query or url.fragment or "$" in a[key]:
            why = f"{a[key]!r} has a query, fragment or nginx variable; a RequestRedirect sets "
            "scheme, host, port and path only"
        elif host_error(url.hostname) is not None:
            why = f"{url.hostname!r} is not a host name"
        if why is not None:
            self.withheld = f"{key}: {why}"
            self._add(key, "not-convertible", why, "redirect at the load balancer or in the app")
            return
        default = _CODES[key]
        raw_code = a.get(f"{key}-code", str(default))
        code = int(raw_code) if raw_code.isdigit() else default
        status = code if code in (301, 302) else default
        redirect: dict[str, Any] = {
            "scheme": url.scheme,
            "hostname": url.hostname,
            "statusCode": status,
            "path": {"fullPath": url.path or "/"},
        }
        if url.port is not None:
            redirect["port"] = url.port
        self.redirect = redirect
        self._add(
            key,
            "approximated",
            f"every path answers {status} with Location {a[key]} (RequestRedirect); "
            "ingress-nginx drops the request's query string, kexpose-proxy keeps it",
            "check that no client relies on the query being dropped",
        )
        if f"{key}-code" in a:
            if code == status:
                self._add(f"{key}-code", "converted", f"status {status}")
            else:
                self._add(
                    f"{key}-code",
                    "approximated",
                    f"{raw_code} becomes {status}: the model's RequestRedirect has 301 and 302 "
                    "only, so clients may turn a POST into a GET",
                    "accept the code or redirect at the load balancer",
                )

    def filters(self) -> dict[str, Any]:
        """The filters every path of the Ingress gets (before any path rewrite)."""
        out: dict[str, Any] = {}
        if self.headers:
            out["requestHeaders"] = {"set": dict(self.headers)}
        if self.redirect is not None:
            out["redirect"] = dict(self.redirect)
        elif self.hostname is not None:
            out["rewrite"] = {"hostname": self.hostname}
        return out

    def plan(self, field_name: str, path: str, path_type: str, regex: bool) -> PathPlan | None:
        """One path with ``api: gateway``; None when it is left out (reported)."""
        filters = self.filters()
        target = self.rewrite_target if self.redirect is None else None
        gw_type = "Exact" if path_type == "Exact" else "Prefix"
        if target is not None:
            stripped = _STRIP_PREFIX.match(path)
            if stripped and target in ("/$2", "/$2/") and path_type != "Exact":
                filters.setdefault("rewrite", {})["path"] = {"prefix": "/"}
                self._add(
                    "rewrite-target",
                    "approximated",
                    f"{path!r} -> {target!r} is the Prefix path {stripped[1]!r} with URLRewrite "
                    "ReplacePrefixMatch '/' (the backend sees the rest of the path); nginx's "
                    "regex ignored case, the Prefix match does not",
                )
                return PathPlan(stripped[1] or "/", "Prefix", {"filters": filters})
            if REGEX_CHARS.search(path) or "$" in target:
                self._add(
                    "rewrite-target",
                    "not-convertible",
                    f"{path!r} -> {target!r} uses capture groups no URLRewrite can express; "
                    "the path is left out",
                    "rewrite in the app, or use the /prefix(/|$)(.*) -> /$2 idiom",
                )
                return None
            filters.setdefault("rewrite", {})["path"] = {"fullPath": target}
            self._add(
                "rewrite-target",
                "approximated",
                f"{path!r} -> {target!r} is URLRewrite ReplaceFullPath {target!r} (nginx's "
                "rewrite replaces the whole path, keeping the query); ingress-nginx matched "
                f"'~* ^{path}' (any character prefix, any case), the Prefix path matches whole "
                "segments, case-sensitively",
            )
            return PathPlan(path, gw_type, {"filters": filters})
        if regex and REGEX_CHARS.search(path) and path_type != "Exact":
            return None  # the converter reports it (PCRE paths are not translated)
        extra = {"filters": filters} if filters else {}
        if path_type == "ImplementationSpecific":
            return self._character_prefix(field_name, path, regex, extra)
        return PathPlan(path, gw_type, extra)

    def _character_prefix(
        self, field_name: str, path: str, regex: bool, extra: dict[str, Any]
    ) -> PathPlan:
        """An ImplementationSpecific path, or a literal use-regex one: ingress-nginx matched it
        as a character prefix (nginx ``location /static`` or ``~* ^/static``: '/static' also
        takes '/staticfiles'), which an HTTPRoute PathPrefix does not (whole segments)."""
        if path.endswith("/"):
            # '/static/' as a character prefix and as a PathPrefix take the same paths below it
            # (the PathPrefix also takes '/static' itself: trailing '/' ignored, HTTPPathMatch).
            self.findings.add(
                self.ing,
                f"{field_name}.path",
                "approximated" if regex else "converted",
                f"{path!r} ends with '/', so as a Prefix path it matches what ingress-nginx's "
                "character prefix matched"
                + (", case-sensitively where nginx's '~*' ignored case" if regex else ""),
                doc=_PATHS_DOC,
            )
            return PathPlan(path, "Prefix", extra)
        pattern = char_prefix_pattern(path)
        self.findings.add(
            self.ing,
            f"{field_name}.path",
            "approximated" if regex else "converted",
            f"{path!r} becomes the RegularExpression path {pattern!r}: the same character "
            f"prefix ('{path}' also takes '{path}x...'), ranked after Exact paths and before "
            "Prefix ones"
            + (", matched case-sensitively where nginx's '~*' ignored case" if regex else ""),
            doc=_PATHS_DOC,
        )
        return PathPlan(pattern, "RegularExpression", extra)

    def root_paths(self) -> list[dict[str, Any]]:
        """The extra paths of each host: ``app-root``'s Exact '/' redirect."""
        if self.app_root is None:
            return []
        return [
            {
                "path": "/",
                "pathType": "Exact",
                "filters": {
                    "redirect": {"statusCode": 302, "path": {"fullPath": self.app_root}},
                },
            }
        ]
