"""One GRPCRoute's rules, translated into the same table entries as an HTTPRoute's.

A gRPC call is an HTTP/2 ``POST`` to ``/{service}/{method}`` with a ``content-type`` of
``application/grpc`` or ``application/grpc+{format}`` (gRPC over HTTP/2, "Requests"). So a
``GRPCRouteMatch`` (gateway-api v1.6.3 ``apis/v1/grpcroute_types.go``) becomes a
``RequestMatch`` on that path, method ``POST`` and that content type, plus its header matches:

==============================  ================================================================
``method``                      path match
==============================  ================================================================
none                            any path (``PathPrefix /``): "MUST match every gRPC request"
Exact, service and method       ``Exact /service/method`` (Core)
Exact, service only             ``/service/`` then any one method
Exact, method only              any one service, then ``/method``
RegularExpression               ``/(service)/(method)``, each omitted part any one segment
==============================  ================================================================

Exact names must be valid (``^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$`` for services,
``^[A-Za-z_][A-Za-z_0-9]*$`` for methods, the CRD's validation, which static manifests skip);
neither given, an unknown match or filter type: not ``Accepted``, ``UnsupportedValue``.

Precedence among the rules of one host ("GRPCRouteRule.matches"): more characters in the
matching service, then in the method, then more header matches; then the older route, the
route first by ``namespace/name``, the first rule and match. Hostname characters come first,
and ``GatewayListener.host`` already picks the most specific host. HTTPRoute and GRPCRoute
rules are never merged on one host (cross-serving is settled in ``_gateway``).

Filters: ``RequestHeaderModifier``, ``ResponseHeaderModifier``, ``RequestMirror`` and
``ExtensionRef`` as on an HTTPRoute (``_httproute``); the HTTP-only filters are refused.
Backends are weighted as on an HTTPRoute and spoken to over h2c (``Backend.protocol``); what
the rule answers itself (no valid backend, an invalid backend's share) is a gRPC
``UNAVAILABLE`` (``GatewayRule.grpc``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from kexpose.proxy.routes._backendrefs import BackendResolver, rule_backends
from kexpose.proxy.routes._backends import Backend
from kexpose.proxy.routes._gwtable import GatewayRule
from kexpose.proxy.routes._httproute import (
    ExtensionResolver,
    _filters,
    _value_matches,
    backend_filters,
    route_rules,
)
from kexpose.proxy.routes._matches import (
    HEADER_MATCH_TYPES,
    MatchError,
    PathMatch,
    RequestMatch,
    ValueMatch,
    compile_regex,
)
from kexpose.proxy.routes._problem import RouteProblem
from kexpose.proxy.routes._raw import entries, text

__all__ = ["GRPC_CONTENT_TYPE", "GrpcRank", "TranslatedGrpcRoute", "translate_grpc_rules"]

_SERVICE: Final = re.compile(r"\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*", re.IGNORECASE)
_METHOD: Final = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
# One path segment: what an omitted service or method stands for.
_SEGMENT: Final = "[^/]+"
_FILTERS: Final = frozenset(
    {"RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "ExtensionRef"}
)
_CONTENT_TYPE_PATTERN: Final = r"(?i)application/grpc([+;].*)?"
#: What every GRPCRoute match also requires: a gRPC request's ``content-type`` ("Content-Type
#: → application/grpc [("+proto" / "+json" / {custom})]"; media types are case-insensitive).
GRPC_CONTENT_TYPE: Final = ValueMatch(
    "content-type",
    _CONTENT_TYPE_PATTERN,
    "RegularExpression",
    compile_regex(_CONTENT_TYPE_PATTERN),
)

#: Sort key of one GRPCRoute match, shaped like ``RequestMatch.rank`` (lower sorts first).
GrpcRank = tuple[int, int, int, int, int]


@dataclass(slots=True)
class TranslatedGrpcRoute:
    rules: list[GatewayRule] = field(default_factory=list)
    """One entry per (rule, match), in route order."""
    ranks: list[GrpcRank] = field(default_factory=list)
    """The precedence key of each entry of ``rules``."""
    unresolved: list[tuple[str, str]] = field(default_factory=list)
    """(reason, message) of each backend or filter reference that could not be resolved."""


def _h2c(backend: Backend) -> Backend:
    """The backend as a GRPCRoute speaks to it: over h2c, whatever its Service port's
    ``appProtocol`` says (``GRPCBackendRef``: an implementation "MAY infer the protocol from the
    Route type"; gRPC needs HTTP/2 end to end, trailers above all)."""
    return backend if backend.protocol == "h2c" else replace(backend, protocol="h2c")


def _method_path(spec: object) -> tuple[PathMatch, int, int]:
    """The path match of a ``GRPCMethodMatch``, and its service and method lengths."""
    if spec is None:
        return PathMatch(), 0, 0
    if not isinstance(spec, Mapping):
        raise MatchError("method must be an object")
    kind = spec.get("type") or "Exact"
    service, method = text(spec.get("service")) or "", text(spec.get("method")) or ""
    if not service and not method:
        raise MatchError("method: at least one of service and method must be given")
    if kind == "Exact":
        if service and not _SERVICE.fullmatch(service):
            raise MatchError(f"method.service {service!r} is not a gRPC service name")
        if method and not _METHOD.fullmatch(method):
            raise MatchError(f"method.method {method!r} is not a gRPC method name")
        if service and method:
            return PathMatch.make("Exact", f"/{service}/{method}"), len(service), len(method)
        pattern = f"/{re.escape(service) or _SEGMENT}/{re.escape(method) or _SEGMENT}"
    elif kind == "RegularExpression":
        for part in (service, method):
            compile_regex(part)  # each part alone, so that a bad one is named as given
        pattern = f"/(?:{service or _SEGMENT})/(?:{method or _SEGMENT})"
    else:
        raise MatchError(f"method.type {kind!r} is not one of {', '.join(HEADER_MATCH_TYPES)}")
    return PathMatch.make("RegularExpression", pattern), len(service), len(method)


def _match(spec: Mapping[str, Any], where: str) -> tuple[RequestMatch, GrpcRank]:
    try:
        path, service, method = _method_path(spec.get("method"))
        headers = _value_matches(spec.get("headers"), "header", fold=True)
    except MatchError as exc:
        raise RouteProblem("UnsupportedValue", f"{where}: {exc}") from exc
    # The route's own header matches first: of two on one name only the first counts, and a
    # route's own content-type match (application/grpc+proto, say) is the narrower one.
    match = RequestMatch.make(path, method="POST", headers=[*headers, GRPC_CONTENT_TYPE])
    user_headers = sum(1 for h in match.headers if h is not GRPC_CONTENT_TYPE)
    return match, (0, -service, -method, -user_headers, 0)


def translate_grpc_rules(
    route: Mapping[str, Any],
    label: str,
    resolve: BackendResolver,
    extensions: ExtensionResolver | None = None,
) -> TranslatedGrpcRoute:
    """The route's rules as table entries; raises ``RouteProblem`` when it cannot be accepted."""
    out = TranslatedGrpcRoute()
    rules = route_rules(route, "GRPCRoute", label)  # default: every gRPC call, no backend
    for i, rule in enumerate(rules):
        where = f"GRPCRoute {label} rules[{i}]"
        if not isinstance(rule, Mapping):
            raise RouteProblem("UnsupportedValue", f"{where}: not an object")
        matches = [
            _match(m, f"{where}.matches[{j}]") for j, m in enumerate(entries(rule.get("matches")))
        ] or [_match({}, f"{where}.matches")]
        filter_specs = entries(rule.get("filters"))
        for j, f in enumerate(filter_specs):
            if f.get("type") not in _FILTERS:
                raise RouteProblem(
                    "UnsupportedValue",
                    f"{where}.filters[{j}].type: {f.get('type')!r} is not one of "
                    f"{', '.join(sorted(_FILTERS))}",
                )
        filters = _filters(filter_specs, where, resolve, out.unresolved, extensions=extensions)
        shares = rule_backends(
            entries(rule.get("backendRefs")),
            where,
            route=label,
            resolve=resolve,
            filters=backend_filters(resolve, out.unresolved),
            unresolved=out.unresolved,
            protocol="h2c",  # _h2c: whatever the Service port's appProtocol says
        )
        template = GatewayRule(
            route=label,
            rule=i,
            match=RequestMatch(),
            backends=shares.backends,
            invalid_weight=shares.invalid_weight,
            error=filters.error or shares.error,
            # An ExtensionRef to an EdgeAuth guards a GRPCRoute rule as it does an HTTPRoute's
            # (edge-auth.md, "Gateway API"); accepting the filter and dropping its auth would
            # serve the rule unauthenticated.
            auth=filters.auth,
            request_headers=filters.request_headers,
            response_headers=filters.response_headers,
            mirrors=tuple(replace(m, backend=_h2c(m.backend)) for m in filters.mirrors),
            name=text(rule.get("name")),
            grpc=True,
        )
        for match, rank in matches:
            out.rules.append(replace(template, match=match))
            out.ranks.append(rank)
    return out
