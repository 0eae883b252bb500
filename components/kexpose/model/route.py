"""What an app's routes can say beyond Ingress: matches, filters and weighted backends.

These are Gateway API HTTPRoute features (standard channel v1.6.3, HTTPRouteMatch,
HTTPRouteFilter (with HTTPCORSFilter), HTTPBackendRef, HTTPRouteTimeouts:
https://gateway-api.sigs.k8s.io/reference/spec/). An app keeps one description of its routes
(``ingress.rules[].paths[]``); these fields add to a path and render only with ``api:
gateway``. ``api_problems`` says what the chosen API cannot express, and
``traefik_route_problems`` what a Traefik controller would not do, so that a stack asking for
it is refused with the field, the value and the fix.
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
    "Cors",
    "Duration",
    "HeaderChanges",
    "HeaderMatch",
    "HttpMethod",
    "PathChange",
    "QueryParamMatch",
    "Redirect",
    "Rewrite",
    "RouteFilters",
    "RouteTimeouts",
    "api_problems",
    "duration_ms",
    "traefik_route_problems",
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


# Gateway API Duration (GEP-2257): 1-4 numbers of at most 5 digits, each with a unit.
_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_DURATION_PART = re.compile(r"([0-9]{1,5})(h|ms|m|s)")
_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}


def _check_duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(
            f"{value!r} is not a Gateway API duration: 1 to 4 numbers of at most 5 digits, each "
            "with a unit h, m, s or ms (e.g. 10s, 500ms, 1m30s); '0s' disables the timeout"
        )
    return value


def duration_ms(value: str) -> int:
    """A Gateway API duration (already checked) in milliseconds."""
    return sum(int(n) * _UNIT_MS[u] for n, u in _DURATION_PART.findall(value))


# HTTPCORSFilter.allowOrigins (CORSOrigin): '*', or scheme http/https, a host whose leftmost
# label may be '*', and an optional port.
_ORIGIN = re.compile(r"^(\*|https?://((\*\.)?([a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?)$")


def _check_origin(value: str) -> str:
    found = _ORIGIN.match(value)
    if not found or len(value) > 253 or (found[6] is not None and not 1 <= int(found[6]) <= 65535):
        raise ValueError(
            f"{value!r} is not a CORS origin: '*', or http:// or https:// with a host (its first "
            "label may be '*') and an optional port 1-65535, e.g. https://app.example.com, "
            "https://*.example.com:8443"
        )
    return value


Token = Annotated[str, AfterValidator(_check_token)]
Duration = Annotated[str, AfterValidator(_check_duration)]
CorsOrigin = Annotated[str, AfterValidator(_check_origin)]
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


def _alone(values: tuple[str, ...], field: str) -> None:
    # HTTPCORSFilter CEL: "cannot contain '*' alongside other ..."; the lists are sets.
    if "*" in values and len(values) > 1:
        raise ValueError(f"{field}: '*' allows every value and must be the only one")
    seen = [v.lower() for v in values]
    for v in values:
        if seen.count(v.lower()) > 1:
            raise ValueError(f"{field}: {v!r} appears twice")


class Cors(Frozen):
    """Answer CORS requests from browsers (HTTPCORSFilter; the Fetch standard's CORS protocol).

    The controller answers a preflight (``OPTIONS`` with ``Origin`` and
    ``Access-Control-Request-Method``) itself, with the allowed methods, headers and ``maxAge``
    when the origin is allowed, and adds ``Access-Control-Allow-Origin`` (and
    ``-Credentials``, ``-Expose-Headers``) to the responses of allowed origins.
    """

    allow_origins: tuple[CorsOrigin, ...] = Field(min_length=1, max_length=64)
    allow_methods: tuple[HttpMethod | Literal["*"], ...] = Field(default=(), max_length=9)
    allow_headers: tuple[Token, ...] = Field(default=(), max_length=64)
    expose_headers: tuple[Token, ...] = Field(default=(), max_length=64)
    allow_credentials: bool = False
    max_age: int = Field(default=5, ge=1, le=2**31 - 1)
    """Seconds a browser may cache the preflight's answer."""

    @model_validator(mode="after")
    def _sets(self) -> Cors:
        _alone(self.allow_origins, "allowOrigins")
        _alone(self.allow_methods, "allowMethods")
        _alone(self.allow_headers, "allowHeaders")
        if len({h.lower() for h in self.expose_headers}) != len(self.expose_headers):
            raise ValueError("exposeHeaders: a header appears twice")
        return self


class RouteTimeouts(Frozen):
    """How long the controller waits (HTTPRouteTimeouts, GEP-1742): ``request`` from the
    request's arrival until the whole response is sent, ``backendRequest`` for one try at a
    backend (sending the request until the whole response is received). On expiry the client
    gets 504. ``0s`` disables one."""

    request: Duration | None = None
    backend_request: Duration | None = None

    @model_validator(mode="after")
    def _backend_within_request(self) -> RouteTimeouts:
        if self.request is None and self.backend_request is None:
            raise ValueError("give request or backendRequest (or both)")
        if (
            self.request is not None
            and self.backend_request is not None
            and duration_ms(self.request) != 0
            and duration_ms(self.backend_request) > duration_ms(self.request)
        ):
            # HTTPRouteTimeouts CEL: "backendRequest timeout cannot be longer than request
            # timeout" (a try cannot outlast the request it belongs to).
            raise ValueError(
                f"backendRequest {self.backend_request!r} is longer than request "
                f"{self.request!r}; a try at a backend is part of the request, so "
                "backendRequest must be at most request (or request '0s', no limit)"
            )
        return self


class RouteFilters(Frozen):
    """What a matched request goes through; each kind at most once per path."""

    request_headers: HeaderChanges | None = None
    response_headers: HeaderChanges | None = None
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None
    cors: Cors | None = None

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
    "filters": "filters (header changes, redirects, rewrites, CORS)",
    # kexpose-proxy reads no Ingress annotation for per-route timeouts or CORS (its global
    # timeouts apply to every Ingress), so only an HTTPRoute carries them.
    "timeouts": "route timeouts",
    "backends": "traffic split by weight between Services",
    "weight": "traffic split by weight between Services",
    "namespace": "a backend in another namespace",
    # An Ingress's auth annotations cover all its paths (edge-auth.md, "Where it applies").
    "auth": "auth of a single path",
}


def _said(value: dict[str, object]) -> str:
    return ", ".join(f"{k} {v!r}" for k, v in value.items())


def api_problems(
    ingress: IngressSpec, api: ApiKind, problems: Problems, at: tuple[str | int, ...]
) -> None:
    """Add to ``problems`` (at ``at`` + the field) what ``api`` cannot express of ``ingress``."""
    if api == "ingress":
        fix = "; set kexpose:controller.api to 'gateway' (HTTPRoute), or drop it"
        for i, rule in enumerate(ingress.rules):
            for j, path in enumerate(rule.paths):
                if path.path_type == "RegularExpression":
                    problems.add(
                        (*at, "rules", i, "paths", j, "pathType"),
                        "is not an Ingress pathType (Exact, Prefix, ImplementationSpecific): a "
                        f"regular expression path cannot be expressed with api 'ingress'{fix}",
                        path.path_type,
                    )
                for key, what in _GATEWAY_ONLY.items():
                    value = path.gateway_field(key)
                    if value is not None:
                        if isinstance(value, dict) and key == "timeouts":
                            what = f"{what} ({_said(value)})"  # a mapping is not echoed
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
                    "has no HTTPRoute equivalent; allowed with api 'gateway': Exact, Prefix, "
                    "RegularExpression",
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


def traefik_route_problems(
    ingress: IngressSpec, problems: Problems, at: tuple[str | int, ...]
) -> None:
    """What a Traefik controller with ``api: gateway`` would not do of ``ingress``'s routes.

    Read from Traefik's Gateway API provider (v3.7.13, pkg/provider/kubernetes/gateway/
    httproute.go): it never reads a rule's ``timeouts`` (the route would run with Traefik's own),
    and it has no CORS filter ("unsupported filter": the rule answers 500). Both are refused
    rather than lost.
    """
    fix = "; serve this app with a kexpose controller (kind: kexpose), or drop it"
    for i, rule in enumerate(ingress.rules):
        for j, path in enumerate(rule.paths):
            loc = (*at, "rules", i, "paths", j)
            if path.timeouts is not None:
                given = path.timeouts.model_dump(by_alias=True, exclude_none=True)
                problems.add(
                    (*loc, "timeouts"),
                    f"({_said(given)}) is not enforced by a Traefik controller: its Gateway API "
                    f"provider ignores HTTPRoute timeouts{fix}",
                    path.gateway_field("timeouts"),
                )
            if path.filters is not None and path.filters.cors is not None:
                origins = ", ".join(path.filters.cors.allow_origins)
                problems.add(
                    (*loc, "filters", "cors"),
                    f"(allowOrigins {origins}) cannot be served by a Traefik controller: its "
                    "Gateway API provider has no CORS filter and answers the whole rule with "
                    f"500{fix}",
                    path.filters.cors.model_dump(by_alias=True, exclude_defaults=True),
                )
