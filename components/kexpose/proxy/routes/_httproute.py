"""One HTTPRoute's rules, translated: matches, filters, backends, timeouts and retries.

What is refused and how (gateway-api v1.6.3 ``apis/v1/httproute_types.go``, ``shared_types.go``):

- A value the proxy cannot use (a bad regular expression, an unknown match or filter type, a
  ``ReplacePrefixMatch`` on a rule without a ``PathPrefix`` match, a malformed duration) makes the
  route not ``Accepted`` (``UnsupportedValue``); ``RequestRedirect`` with ``URLRewrite`` in one
  rule is ``IncompatibleFilters``. Such a route serves nothing, and says why.
- A backend that cannot be used (``BackendNotFound``, ``InvalidKind``, ``RefNotPermitted`` for a
  cross-namespace reference without a ReferenceGrant, ``UnsupportedProtocol``) sets
  ``ResolvedRefs=False`` but keeps the route: its share of the rule's weight is answered 500
  ("the proportion of requests that would otherwise have been routed to an invalid backend MUST
  receive an HTTP 500 status code"), the rule's other backends keep working.
- A rule without backends answers 500 unless a filter answers for it (a redirect); all weights 0
  also answers 500 (``HTTPBackendRef.weight``).
- An ``ExtensionRef`` filter to a kexpose ``EdgeAuth`` (group ``kexpose.dev``) in the route's
  namespace authenticates the rule as an Ingress path would be (edge-auth.md, ``_auth``). One to
  any other kind, or to an ``EdgeAuth`` that does not exist, cannot be resolved: the rule
  answers 500 (the spec: a filter that cannot be resolved "MUST NOT be skipped"; requests it
  would have processed get an error) and ``ResolvedRefs`` is ``False`` with ``InvalidKind``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Final

from kexpose.proxy.filters import EdgeAuth, HeaderModifier, PathModifier, Redirect, Rewrite
from kexpose.proxy.routes._backendrefs import BackendResolver, rule_backends
from kexpose.proxy.routes._gwtable import Cors, GatewayRule, Mirror, Retry
from kexpose.proxy.routes._matches import (
    HEADER_MATCH_TYPES,
    PATH_MATCH_TYPES,
    MatchError,
    PathMatch,
    RequestMatch,
    ValueMatch,
    compile_regex,
)
from kexpose.proxy.routes._problem import RouteProblem
from kexpose.proxy.routes._raw import entries, mapping, text

__all__ = [
    "TranslatedRoute",
    "backend_filters",
    "parse_duration",
    "route_rules",
    "translate_rules",
]

_DURATION: Final = re.compile(r"(?:([0-9]{1,5})(h|ms|m|s))")
# What a filter may put in a forwarded head: a header name is a token (RFC 9110 §5.6.2), a value
# visible ASCII with inner spaces and tabs (§5.5, no obs-text), a host name a DNS name. Anything
# else, a CR or LF above all, would let a route inject header lines (manifests in static mode
# reach us without the CRDs' validation).
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE: Final = re.compile(r"[\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?|")
_HOSTNAME: Final = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_UNITS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_REDIRECT_CODES: Final = frozenset((301, 302, 303, 307, 308))


@dataclass(slots=True)
class TranslatedRoute:
    rules: list[GatewayRule] = field(default_factory=list)
    """One entry per (rule, match), in route order."""
    unresolved: list[tuple[str, str]] = field(default_factory=list)
    """(reason, message) of each backend or filter reference that could not be resolved."""


def parse_duration(value: object, where: str) -> float:
    """A Gateway API ``Duration`` (``^([0-9]{1,5}(h|m|s|ms)){1,4}$``) in seconds."""
    if not isinstance(value, str) or not value:
        raise RouteProblem("UnsupportedValue", f"{where}: {value!r} is not a duration")
    parts = _DURATION.findall(value)
    if not parts or len(parts) > 4 or "".join(n + u for n, u in parts) != value:
        raise RouteProblem(
            "UnsupportedValue", f"{where}: {value!r} is not a duration like 10s, 500ms or 1m30s"
        )
    return sum(int(n) * _UNITS[u] for n, u in parts)


def _headers(spec: object, where: str) -> HeaderModifier:
    if not isinstance(spec, Mapping):
        raise RouteProblem("UnsupportedValue", f"{where}: not an object")

    def pairs(key: str) -> tuple[tuple[str, str], ...]:
        out = []
        for item in entries(spec.get(key)):
            name, value = text(item.get("name")), text(item.get("value"))
            if not name or value is None:
                raise RouteProblem("UnsupportedValue", f"{where}.{key}: needs a name and a value")
            if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
                raise RouteProblem(
                    "UnsupportedValue",
                    f"{where}.{key}: {name!r}: {value!r} is not a valid header field",
                )
            out.append((name, value))
        return tuple(out)

    removes = spec.get("remove") or []
    if not isinstance(removes, list) or not all(
        isinstance(r, str) and _TOKEN.fullmatch(r) for r in removes
    ):
        raise RouteProblem("UnsupportedValue", f"{where}.remove: must be a list of header names")
    return HeaderModifier(pairs("set"), pairs("add"), tuple(r.lower() for r in removes))


def _hostname(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HOSTNAME.fullmatch(value.lower()):
        raise RouteProblem("UnsupportedValue", f"{where}: {value!r} is not a host name")
    return value.lower()


def _path_modifier(spec: object, where: str) -> PathModifier | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise RouteProblem("UnsupportedValue", f"{where}: not an object")
    kind = spec.get("type")
    if kind == "ReplaceFullPath":
        value = text(spec.get("replaceFullPath"))
    elif kind == "ReplacePrefixMatch":
        value = text(spec.get("replacePrefixMatch"))
    else:
        raise RouteProblem("UnsupportedValue", f"{where}.type: {kind!r} is not supported")
    if value is None:
        raise RouteProblem("UnsupportedValue", f"{where}: {kind} needs a value")
    if (value and not value.startswith("/")) or any(c in value for c in "\r\n\0 ?#"):
        raise RouteProblem("UnsupportedValue", f"{where}: {value!r} is not a path")
    return PathModifier(kind, value)


def _match(spec: Mapping[str, Any], where: str) -> RequestMatch:
    try:
        path_spec = spec.get("path") or {}
        if not isinstance(path_spec, Mapping):
            raise MatchError("path must be an object")
        path_type = path_spec.get("type") or "PathPrefix"
        if path_type not in PATH_MATCH_TYPES:
            raise MatchError(f"path type {path_type!r} is not one of {', '.join(PATH_MATCH_TYPES)}")
        path = PathMatch.make(path_type, text(path_spec.get("value")) or "/")
        headers = _value_matches(spec.get("headers"), "header", fold=True)
        query = _value_matches(spec.get("queryParams"), "query parameter", fold=False)
        method = spec.get("method")
        if method is not None and not isinstance(method, str):
            raise MatchError("method must be a string")
        return RequestMatch.make(path, method=method, headers=headers, query=query)
    except MatchError as exc:
        raise RouteProblem("UnsupportedValue", f"{where}: {exc}") from exc


def _value_matches(specs: object, what: str, *, fold: bool) -> list[ValueMatch]:
    """Header (names folded to lower case) or query parameter matches."""
    out = []
    for entry in entries(specs):
        kind = entry.get("type") or "Exact"
        name, value = text(entry.get("name")), text(entry.get("value"))
        if kind not in HEADER_MATCH_TYPES or not name or value is None:
            raise MatchError(f"{what} match {dict(entry)!r} is not supported")
        regex = compile_regex(value) if kind == "RegularExpression" else None
        out.append(ValueMatch(name.lower() if fold else name, value, kind, regex))
    return out


def _mirror_percent(spec: Mapping[str, Any], where: str) -> float:
    if spec.get("percent") is not None:
        percent = spec["percent"]
        if not isinstance(percent, int) or not 0 <= percent <= 100:
            raise RouteProblem("UnsupportedValue", f"{where}.percent: {percent!r} is not 0-100")
        return float(percent)
    fraction = spec.get("fraction")
    if isinstance(fraction, Mapping):
        numerator = fraction.get("numerator")
        denominator = fraction.get("denominator", 100)
        if (
            not isinstance(numerator, int)
            or not isinstance(denominator, int)
            or denominator <= 0
            or not 0 <= numerator <= denominator
        ):
            raise RouteProblem("UnsupportedValue", f"{where}.fraction: {dict(fraction)!r}")
        return 100.0 * numerator / denominator
    return 100.0


def _cors(spec: object, where: str) -> Cors:
    if not isinstance(spec, Mapping):
        raise RouteProblem("UnsupportedValue", f"{where}: not an object")

    def strings(key: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
        # Values end up in response headers: tokens (methods, header names) or visible ASCII
        # (origins), so that no route can inject a header line.
        value = spec.get(key) or []
        if not isinstance(value, list) or not all(
            isinstance(v, str) and (v == "*" or pattern.fullmatch(v)) for v in value
        ):
            raise RouteProblem(
                "UnsupportedValue", f"{where}.{key}: {value!r} must be a list of valid values"
            )
        return tuple(value)

    max_age = spec.get("maxAge", 5)
    if not isinstance(max_age, int) or max_age < 0:
        raise RouteProblem("UnsupportedValue", f"{where}.maxAge: {max_age!r}")
    return Cors(
        strings("allowOrigins", _FIELD_VALUE),
        strings("allowMethods", _TOKEN),
        strings("allowHeaders", _TOKEN),
        strings("exposeHeaders", _TOKEN),
        max_age,
        spec.get("allowCredentials") is True,
    )


@dataclass(slots=True)
class _Filters:
    request_headers: HeaderModifier | None = None
    response_headers: HeaderModifier | None = None
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None
    mirrors: list[Mirror] = field(default_factory=list)
    cors: Cors | None = None
    error: str | None = None
    auth: EdgeAuth | None = None


#: An ``ExtensionRef`` -> the edge auth it names, or None when it names nothing we know.
ExtensionResolver = Callable[[Mapping[str, Any]], EdgeAuth | None]


def _filters(
    specs: Sequence[Mapping[str, Any]],
    where: str,
    resolve: BackendResolver,
    unresolved: list[tuple[str, str]],
    *,
    per_backend: bool = False,
    extensions: ExtensionResolver | None = None,
) -> _Filters:
    out = _Filters()
    for i, f in enumerate(specs):
        at = f"{where}.filters[{i}]"
        kind = f.get("type")
        if kind == "RequestHeaderModifier":
            out.request_headers = _headers(f.get("requestHeaderModifier"), at)
        elif kind == "ResponseHeaderModifier":
            out.response_headers = _headers(f.get("responseHeaderModifier"), at)
        elif kind == "RequestRedirect" and not per_backend:
            spec = f.get("requestRedirect")
            if not isinstance(spec, Mapping):
                raise RouteProblem("UnsupportedValue", f"{at}: requestRedirect missing")
            status = spec.get("statusCode", 302)
            port = spec.get("port")
            scheme = text(spec.get("scheme"))
            if status not in _REDIRECT_CODES:
                raise RouteProblem("UnsupportedValue", f"{at}.statusCode: {status!r}")
            if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
                raise RouteProblem("UnsupportedValue", f"{at}.port: {port!r}")
            if scheme is not None and scheme not in ("http", "https"):
                raise RouteProblem("UnsupportedValue", f"{at}.scheme: {scheme!r}")
            out.redirect = Redirect(
                scheme,
                _hostname(spec.get("hostname"), f"{at}.hostname"),
                port,
                _path_modifier(spec.get("path"), f"{at}.path"),
                status,
            )
        elif kind == "URLRewrite" and not per_backend:
            spec = f.get("urlRewrite")
            if not isinstance(spec, Mapping):
                raise RouteProblem("UnsupportedValue", f"{at}: urlRewrite missing")
            out.rewrite = Rewrite(
                _hostname(spec.get("hostname"), f"{at}.hostname"),
                _path_modifier(spec.get("path"), f"{at}.path"),
            )
        elif kind == "RequestMirror" and not per_backend:
            spec = f.get("requestMirror")
            if not isinstance(spec, Mapping) or not isinstance(spec.get("backendRef"), Mapping):
                raise RouteProblem("UnsupportedValue", f"{at}: requestMirror needs a backendRef")
            percent = _mirror_percent(spec, f"{at}.requestMirror")
            backend, problem = resolve(spec["backendRef"])
            if backend is None:
                assert problem is not None
                unresolved.append(problem)
            elif percent > 0:
                out.mirrors.append(Mirror(backend, percent))
        elif kind == "CORS" and not per_backend:
            out.cors = _cors(f.get("cors"), f"{at}.cors")
        elif (
            kind == "ExtensionRef"
            and not per_backend
            and extensions is not None
            and (auth := extensions(mapping(f.get("extensionRef"))))
        ):
            out.auth = auth  # edge authentication (``_auth``), before the backend
        elif kind == "ExtensionRef":
            ref = f.get("extensionRef") or {}
            label = f"{ref.get('group', '')}/{ref.get('kind', '')} {ref.get('name', '')}"
            unresolved.append(("InvalidKind", f"{at}: ExtensionRef {label} is not supported"))
            out.error = f"filter ExtensionRef {label} cannot be resolved"
        else:
            raise RouteProblem("UnsupportedValue", f"{at}.type: {kind!r} is not supported here")
    if out.redirect is not None and out.rewrite is not None:
        raise RouteProblem(
            "IncompatibleFilters", f"{where}: RequestRedirect and URLRewrite cannot be combined"
        )
    return out


def backend_filters(
    resolve: BackendResolver, unresolved: list[tuple[str, str]]
) -> Callable[[Sequence[Mapping[str, Any]], str], _Filters]:
    """Reads the ``filters`` of one backendRef (``rule_backends``): header modifiers only."""
    return partial(_filters, resolve=resolve, unresolved=unresolved, per_backend=True)


def _retry(spec: object, where: str) -> Retry | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise RouteProblem("UnsupportedValue", f"{where}: not an object")
    codes = spec.get("codes") or []
    if not isinstance(codes, list) or not all(isinstance(c, int) and 400 <= c < 600 for c in codes):
        raise RouteProblem("UnsupportedValue", f"{where}.codes: {codes!r}")
    attempts = spec.get("attempts", 1)
    if not isinstance(attempts, int) or attempts < 0:
        raise RouteProblem("UnsupportedValue", f"{where}.attempts: {attempts!r}")
    backoff = spec.get("backoff")
    return Retry(
        tuple(codes),
        attempts,
        parse_duration(backoff, f"{where}.backoff") if backoff is not None else None,
    )


def route_rules(route: Mapping[str, Any], kind: str, label: str) -> list[Any]:
    """A route's ``spec.rules``; ``[{}]`` when unset, the default of both HTTPRoute and
    GRPCRoute (one rule matching every request of the kind, without a backend). Raises
    ``RouteProblem`` for a spec or rules of the wrong shape."""
    spec = route.get("spec")
    if not isinstance(spec, Mapping):
        raise RouteProblem("UnsupportedValue", f"{kind} {label}: spec is not an object")
    rules = spec.get("rules")
    if rules is None:
        return [{}]
    if not isinstance(rules, list):
        raise RouteProblem("UnsupportedValue", f"{kind} {label}: rules is not a list")
    return rules


def translate_rules(
    route: Mapping[str, Any],
    label: str,
    resolve: BackendResolver,
    extensions: ExtensionResolver | None = None,
) -> TranslatedRoute:
    """The route's rules as table entries; raises ``RouteProblem`` when it cannot be accepted."""
    out = TranslatedRoute()
    rules = route_rules(route, "HTTPRoute", label)  # default: PathPrefix /, no backend
    for i, rule in enumerate(rules):
        where = f"HTTPRoute {label} rules[{i}]"
        if not isinstance(rule, Mapping):
            raise RouteProblem("UnsupportedValue", f"{where}: not an object")
        matches = [
            _match(m, f"{where}.matches[{j}]") for j, m in enumerate(entries(rule.get("matches")))
        ]
        if not matches:
            matches = [RequestMatch()]
        filters = _filters(
            entries(rule.get("filters")), where, resolve, out.unresolved, extensions=extensions
        )
        for modifier in (filters.redirect, filters.rewrite):
            path = modifier.path if modifier is not None else None
            if (
                path is not None
                and path.type == "ReplacePrefixMatch"
                and any(m.path.type != "PathPrefix" for m in matches)
            ):
                raise RouteProblem(
                    "UnsupportedValue",
                    f"{where}: ReplacePrefixMatch needs every match to be a PathPrefix match",
                )
        timeouts = rule.get("timeouts") or {}
        if not isinstance(timeouts, Mapping):
            raise RouteProblem("UnsupportedValue", f"{where}.timeouts: not an object")
        request_timeout = backend_timeout = None
        if timeouts.get("request") is not None:
            request_timeout = (
                parse_duration(timeouts["request"], f"{where}.timeouts.request") or None
            )
        if timeouts.get("backendRequest") is not None:
            backend_timeout = (
                parse_duration(timeouts["backendRequest"], f"{where}.timeouts.backendRequest")
                or None
            )
        retry = _retry(rule.get("retry"), f"{where}.retry")
        shares = rule_backends(
            entries(rule.get("backendRefs")),
            where,
            route=label,
            resolve=resolve,
            filters=backend_filters(resolve, out.unresolved),
            unresolved=out.unresolved,
        )
        error = filters.error
        if error is None and filters.redirect is None:  # a redirect answers without a backend
            error = shares.error
        name = text(rule.get("name"))
        template = GatewayRule(
            route=label,
            rule=i,
            match=RequestMatch(),
            backends=shares.backends,
            invalid_weight=shares.invalid_weight,
            error=error,
            request_headers=filters.request_headers,
            response_headers=filters.response_headers,
            redirect=filters.redirect,
            rewrite=filters.rewrite,
            mirrors=tuple(filters.mirrors),
            cors=filters.cors,
            request_timeout=request_timeout,
            backend_timeout=backend_timeout,
            retry=retry,
            name=name,
            auth=filters.auth,
        )
        out.rules.extend(replace(template, match=m) for m in matches)
    return out
