"""What an app's routes can say beyond Ingress: matches, filters and weighted backends.

These are Gateway API HTTPRoute features (standard channel v1.6.3, HTTPRouteMatch,
HTTPRouteFilter, HTTPBackendRef: https://gateway-api.sigs.k8s.io/reference/spec/). An app keeps
one description of its routes (``ingress.rules[].paths[]``); these fields add to a path and
render only with ``api: gateway``. ``api_problems`` says what the chosen API cannot express, so
that a stack asking for it is refused with the field, the value and the fix.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from kexpose.hosts import host_error
from kexpose.model.base import Frozen, PortNumber, Problems

if TYPE_CHECKING:
    from kexpose.model.gateway import ApiKind
    from kexpose.model.ingress import IngressSpec

__all__ = [
    "HeaderChanges",
    "HeaderMatch",
    "HttpMethod",
    "PathChange",
    "QueryParamMatch",
    "Redirect",
    "Rewrite",
    "RouteFilters",
    "api_problems",
]

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]

# HTTPHeaderName in the Gateway API: an RFC 7230 token, at most 256 characters.
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$")


def _check_token(value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(
            f"{value!r} is not an HTTP header or parameter name (RFC 7230 token: letters, digits "
            "and !#$%&'*+-.^_`|~, at most 256 characters)"
        )
    return value


def _check_precise_host(value: str) -> str:
    why = host_error(value)
    if why is not None or value.startswith("*"):
        raise ValueError(f"hostname {why or 'may not be a wildcard here'}")
    return value


def _check_abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("a path must start with '/'")
    return value


Token = Annotated[str, AfterValidator(_check_token)]
PreciseHost = Annotated[str, AfterValidator(_check_precise_host)]
AbsPath = Annotated[str, AfterValidator(_check_abs_path)]
HeaderValue = Annotated[str, Field(min_length=1, max_length=4096)]


class HeaderMatch(Frozen):
    """Match a request header (names compare case-insensitively, RFC 7230 §3.2)."""

    name: Token
    value: HeaderValue
    type: Literal["Exact", "RegularExpression"] = "Exact"


class QueryParamMatch(Frozen):
    """Match a query parameter (names compare exactly)."""

    name: Token
    value: HeaderValue
    type: Literal["Exact", "RegularExpression"] = "Exact"


class HeaderChanges(Frozen):
    """Set (replace), add (append) or remove headers, as HTTPHeaderFilter does (16 each)."""

    set: dict[Token, HeaderValue] = Field(default_factory=dict, max_length=16)
    add: dict[Token, HeaderValue] = Field(default_factory=dict, max_length=16)
    remove: tuple[Token, ...] = Field(default=(), max_length=16)

    @model_validator(mode="after")
    def _not_empty_and_unique(self) -> HeaderChanges:
        if not (self.set or self.add or self.remove):
            raise ValueError("give at least one of set, add, remove")
        seen: set[str] = set()
        for name in (*self.set, *self.add, *self.remove):
            if name.lower() in seen:
                raise ValueError(f"header {name!r} appears twice (names are case-insensitive)")
            seen.add(name.lower())
        return self


class PathChange(Frozen):
    """Replace the whole path (``fullPath``) or the part the path match matched (``prefix``,
    only after a ``Prefix`` path)."""

    full_path: AbsPath | None = None
    prefix: AbsPath | None = None

    @model_validator(mode="after")
    def _one(self) -> PathChange:
        if (self.full_path is None) == (self.prefix is None):
            raise ValueError("give exactly one of fullPath, prefix")
        return self


class Redirect(Frozen):
    """Answer with a redirect instead of proxying (RequestRedirect); unset parts keep the
    request's."""

    scheme: Literal["http", "https"] | None = None
    hostname: PreciseHost | None = None
    port: PortNumber | None = None
    status_code: Literal[301, 302] = 302
    path: PathChange | None = None


class Rewrite(Frozen):
    """Change the request before it goes to the backend (URLRewrite)."""

    hostname: PreciseHost | None = None
    path: PathChange | None = None

    @model_validator(mode="after")
    def _something(self) -> Rewrite:
        if self.hostname is None and self.path is None:
            raise ValueError("give hostname or path (or both)")
        return self


class RouteFilters(Frozen):
    """What a matched request goes through; each kind at most once per path."""

    request_headers: HeaderChanges | None = None
    response_headers: HeaderChanges | None = None
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None

    @model_validator(mode="after")
    def _redirect_or_rewrite(self) -> RouteFilters:
        # HTTPRouteRule validation: "May specify either httpRouteFilterRequestRedirect or
        # httpRouteFilterRequestRewrite, but not both".
        if self.redirect is not None and self.rewrite is not None:
            raise ValueError("give redirect or rewrite, not both")
        return self


#: What only the Gateway API can say, by model field (camelCase, as in stack config).
_GATEWAY_ONLY = {
    "headers": "a header match",
    "queryParams": "a query parameter match",
    "method": "a method match",
    "filters": "filters (header changes, redirects, rewrites)",
    "backends": "traffic split by weight between Services",
    "weight": "traffic split by weight between Services",
    "namespace": "a backend in another namespace",
    # An Ingress's auth annotations cover all its paths (edge-auth.md, "Where it applies").
    "auth": "auth of a single path",
}


def api_problems(
    ingress: IngressSpec, api: ApiKind, problems: Problems, at: tuple[str | int, ...]
) -> None:
    """Add to ``problems`` (at ``at`` + the field) what ``api`` cannot express of ``ingress``."""
    if api == "ingress":
        fix = "; set kexpose:controller.api to 'gateway' (HTTPRoute), or drop it"
        for i, rule in enumerate(ingress.rules):
            for j, path in enumerate(rule.paths):
                for key, what in _GATEWAY_ONLY.items():
                    value = path.gateway_field(key)
                    if value is not None:
                        problems.add(
                            (*at, "rules", i, "paths", j, key),
                            f"{what} cannot be expressed with api 'ingress'{fix}",
                            value,
                        )
        if ingress.default_backend is not None and ingress.default_backend.namespace:
            problems.add(
                (*at, "defaultBackend", "namespace"),
                f"a backend in another namespace cannot be expressed with api 'ingress'{fix}",
                ingress.default_backend.namespace,
            )
        return
    fix = "; set kexpose:controller.api to 'ingress', or change it"
    if ingress.default_backend is not None:
        problems.add(
            (*at, "defaultBackend"),
            "an HTTPRoute has no default backend (a Gateway is shared between apps): route it "
            f"from a rule instead{fix}",
        )
    if ingress.class_name is not None:
        problems.add(
            (*at, "className"),
            "is an IngressClass; with api 'gateway' every route attaches to the stack's "
            f"Gateway{fix}",
            ingress.class_name,
        )
    for i, rule in enumerate(ingress.rules):
        for j, path in enumerate(rule.paths):
            loc = (*at, "rules", i, "paths", j)
            if path.path_type == "ImplementationSpecific":
                problems.add(
                    (*loc, "pathType"),
                    "has no HTTPRoute equivalent; allowed with api 'gateway': Exact, Prefix",
                    path.path_type,
                )
            changes = [
                (
                    "redirect",
                    path.filters.redirect.path if path.filters and path.filters.redirect else None,
                ),
                (
                    "rewrite",
                    path.filters.rewrite.path if path.filters and path.filters.rewrite else None,
                ),
            ]
            for name, change in changes:
                if change is not None and change.prefix is not None and path.path_type != "Prefix":
                    # HTTPRouteRule CEL: ReplacePrefixMatch needs a PathPrefix match.
                    problems.add(
                        (*loc, "filters", name, "path", "prefix"),
                        f"replaces the matched prefix, so the path must be pathType Prefix "
                        f"(it is {path.path_type}); use fullPath",
                        change.prefix,
                    )
