"""Requests on a Gateway port: the rule that takes them, and the head that goes to the backend.

Pure functions over a planned request head (``_messages.RequestHead``) and the Gateway half of
the route table (``routes``); the exchange applies their answers. Header lines are only taken
apart when a rule needs them (header matches, header filters, a host rewrite): a plain route
forwards the head exactly as the Ingress path does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from kexpose.proxy.dataplane._messages import RequestHead, field_pairs, join_fields
from kexpose.proxy.filters import (
    HeaderModifier,
    apply_header_modifier,
    cors_preflight_headers,
    cors_response_headers,
    redirect_location,
    replace_path,
)
from kexpose.proxy.routes import (
    GatewayHost,
    GatewayPort,
    GatewayRule,
    RequestView,
    WeightedBackend,
)

__all__ = [
    "Selection",
    "choose_backend",
    "cors",
    "forwarded_prefix",
    "location",
    "select",
    "view_of",
]


@dataclass(frozen=True, slots=True)
class Selection:
    """The outcome of looking a request up on a Gateway port."""

    status: int
    """0: ``rule`` takes it; else the status to answer (404: no listener, host or rule)."""
    rule: GatewayRule | None = None
    listener: str = ""
    """The listener's name (for the log)."""


def view_of(req: RequestHead, host: GatewayHost) -> RequestView:
    """What the host's rules match on. Headers and query are parsed only when some rule needs
    them; repeated headers are joined with ``,`` (RFC 9110 §5.3), the first value of a repeated
    query parameter counts."""
    method = req.method.decode("latin-1")
    headers: dict[str, str] = {}
    if host.needs_headers:
        for name, value in field_pairs(req.fields):
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    if host.needs_query:
        _, _, raw = req.target.partition(b"?")
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            query.setdefault(name, value)
    return RequestView(method, req.path, headers, query)


def select(port: GatewayPort, req: RequestHead) -> Selection:
    listener = port.listener(req.host)
    if listener is None:
        return Selection(404)
    host = listener.host(req.host)
    if host is None:
        return Selection(404, listener=listener.name)
    rule = host.select(view_of(req, host))
    if rule is None:
        return Selection(404, listener=listener.name)
    return Selection(0, rule, listener.name)


def choose_backend(rule: GatewayRule, draw: float) -> WeightedBackend | None:
    """The backend for a uniform ``draw`` in [0, 1); None for the share of invalid backends
    (answered by the rule, ``GatewayRule.failure_status``)."""
    total = rule.total_weight
    point = draw * total
    if point < rule.invalid_weight:
        return None
    point -= rule.invalid_weight
    for backend in rule.backends:
        if point < backend.weight:
            return backend
        point -= backend.weight
    return rule.backends[-1] if rule.backends else None


def _query(target: bytes) -> str:
    _, sep, query = target.partition(b"?")
    return query.decode("latin-1") if sep else ""


def _matched_prefix(rule: GatewayRule) -> str | None:
    return rule.match.path.value if rule.match.path.type == "PathPrefix" else None


def location(rule: GatewayRule, req: RequestHead, *, scheme: str, listener_port: int) -> bytes:
    """The ``Location`` of the rule's redirect for this request."""
    assert rule.redirect is not None
    return redirect_location(
        rule.redirect,
        scheme=scheme,
        host=req.host,
        listener_port=listener_port,
        path=req.path,
        query=_query(req.target),
        matched_prefix=_matched_prefix(rule),
    ).encode("latin-1")


def forwarded_prefix(req: RequestHead, rule: GatewayRule, backend: WeightedBackend | None) -> bytes:
    """The request line and header lines to forward: ``req.prefix`` unless a filter changes
    them (header modifiers of the rule and the backend, URL rewrite). ``backend`` None: the
    rule's filters only (a mirrored copy)."""
    own = backend.request_headers if backend is not None else None
    modifiers: Sequence[HeaderModifier] = [m for m in (rule.request_headers, own) if m]
    rewrite = rule.rewrite
    if not modifiers and rewrite is None:
        return req.prefix
    target = req.target
    if rewrite is not None and rewrite.path is not None:
        path = replace_path(req.path, rewrite.path, _matched_prefix(rule))
        query = _query(req.target)
        target = path.encode("utf-8", "surrogateescape") + (
            b"?" + query.encode("latin-1") if query else b""
        )
    headers = field_pairs(req.fields)
    if rewrite is not None and rewrite.hostname is not None:
        headers = [(n, v) for n, v in headers if n.lower() != "host"]
        headers.append(("host", rewrite.hostname))
    for modifier in modifiers:
        headers = apply_header_modifier(headers, modifier)
    return b"%b %b HTTP/1.1%b" % (req.method, target, join_fields(headers))


def cors(
    rule: GatewayRule, req: RequestHead
) -> tuple[tuple[tuple[bytes, bytes], ...] | None, HeaderModifier | None]:
    """The rule's CORS filter for this request: (the headers of a preflight answer, or None
    when it is no preflight; the response headers an actual request gets, or None).

    A preflight is what the Fetch standard's CORS-preflight fetch sends: method ``OPTIONS``
    (case-sensitive, RFC 9110 §9.1), an ``Origin`` (the serialized origin, never empty) and
    ``Access-Control-Request-Method`` (the actual request's method, a token). Anything less is
    an ordinary request: it goes through edge auth to the backend (``Exchange``)."""
    if rule.cors is None:
        return None, None
    headers: dict[str, str] = {}
    for name, value in field_pairs(req.fields):
        headers.setdefault(name.lower(), value)
    origin = headers.get("origin")
    if not origin:
        return None, None  # not a CORS request
    asked = headers.get("access-control-request-method")
    if req.method == b"OPTIONS" and asked:
        answer = cors_preflight_headers(
            rule.cors, origin, asked, headers.get("access-control-request-headers", "")
        )
        return tuple((n.encode("latin-1"), v.encode("latin-1")) for n, v in answer), None
    return None, HeaderModifier(set=cors_response_headers(rule.cors, origin))
