"""Route rules: an HTTPRoute's or GRPCRoute's host names, and what its references reach.

A Gateway API implementation resolves a route's references at run time and reports the ones it
cannot resolve only in the route's status (``Accepted``/``ResolvedRefs`` conditions): the route
then silently serves nothing, or 500s. These rules find the same problems before deployment,
within the stack (``policy-rules.md``; the Ingress counterparts are ``ing-host-required``,
``ing-no-wildcard-host``, ``ing-backend-service-exists`` and ``ing-unique-host-path``).
Cross-namespace references follow the ReferenceGrant contract
(https://gateway-api.sigs.k8s.io/api-types/referencegrant/).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any, Final

from kexpose.policy.rules._gatewayapi import (
    GROUP,
    gateway_parents,
    hostnames,
    is_route,
    listeners,
    secret_refs,
    service_refs,
)
from kexpose.policy.rules._kube import (
    Context,
    Finding,
    Obj,
    as_int,
    as_map,
    as_seq,
    as_str,
    spec,
)
from kexpose.policy.rules._stack import Stack

__all__ = [
    "backend_exists",
    "cross_namespace_granted",
    "hostnames_required",
    "no_wildcard_hostname",
    "parent_exists",
    "unique_match",
]


def hostnames_required(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if is_route(obj) and not as_seq(spec(obj).get("hostnames")):
        yield Finding(
            obj,
            "spec.hostnames",
            "is missing or empty, so the route takes every host name its Gateway listeners accept.",
            "List the host names this route serves in spec.hostnames.",
        )


def no_wildcard_hostname(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if not is_route(obj):
        return
    for i, host in hostnames(obj):
        if "*" in host:
            yield Finding(
                obj,
                f"spec.hostnames[{i}]",
                f"{host!r} is a wildcard and would route every matching host name to this app.",
                "List each host name explicitly (wildcards stay allowed on listeners).",
            )


def parent_exists(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for route in stack.routes:
        for parent in gateway_parents(route):
            gateway = stack.gateways.get((parent.namespace, parent.name or ""))
            if gateway is None:
                named = repr(parent.name) if parent.name else "no name"
                yield Finding(
                    route,
                    f"{parent.field}.name",
                    f"is {named}: no such Gateway in namespace {parent.namespace!r} in this "
                    "stack, so the route attaches to nothing.",
                    "Name a Gateway the stack provides (and its namespace, when it is not the "
                    "route's).",
                )
                continue
            found = listeners(gateway)
            if parent.section is not None and not any(x.name == parent.section for x in found):
                names = ", ".join(repr(x.name) for x in found) or "none"
                yield Finding(
                    route,
                    f"{parent.field}.sectionName",
                    f"is {parent.section!r}, which names no listener of {gateway.ref} (its "
                    f"listeners: {names}).",
                    "Use one of the Gateway's listener names, or drop sectionName.",
                )
            if parent.port_set and (
                parent.port is None or not any(x.port == parent.port for x in found)
            ):
                ports = ", ".join(str(x.port) for x in found) or "none"
                yield Finding(
                    route,
                    f"{parent.field}.port",
                    f"is {parent.port if parent.port is not None else 'not a port number'}; no "
                    f"listener of {gateway.ref} has that port (its ports: {ports}).",
                    "Use a listener's port, or drop port.",
                )


def backend_exists(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for route in stack.routes:
        for ref in service_refs(route):
            svc = stack.services.get((ref.namespace, ref.name or ""))
            if svc is None:
                named = repr(ref.name) if ref.name else "missing"
                yield Finding(
                    route,
                    f"{ref.field}.name",
                    f"is {named}: no such Service in namespace {ref.namespace!r} in this stack; "
                    "the implementation answers 500 for the requests this backend should get.",
                    "Create the Service in that namespace, or fix the name and namespace.",
                )
                continue
            numbers = [as_int(as_map(p).get("port")) for p in as_seq(spec(svc).get("ports"))]
            if ref.port is not None and ref.port in numbers:
                continue
            shown = ", ".join(str(n) for n in numbers) or "none"
            if not ref.port_set:
                given = "missing"
            else:
                given = "not a port number" if ref.port is None else str(ref.port)
            yield Finding(
                route,
                f"{ref.field}.port",
                f"is {given}, which is not a port of Service {ref.namespace}/{ref.name} (its "
                f"ports: {shown}; targetPort does not count).",
                "Set port to one of the Service's spec.ports[].port values.",
            )


def _granted(
    stack: Stack, *, into: str, kind: str, from_ns: str, to_kind: str, name: str | None
) -> bool:
    """Whether a ReferenceGrant in ``into`` lets a ``kind`` of ``from_ns`` refer to ``to_kind``
    ``name`` there (``to.name`` omitted: any object of that kind)."""
    for grant in stack.reference_grants.get(into, ()):
        s = spec(grant)
        allowed_from = any(
            f.get("group") == GROUP and f.get("kind") == kind and f.get("namespace") == from_ns
            for f in map(as_map, as_seq(s.get("from")))
        )
        if allowed_from and any(
            t.get("group") == ""
            and t.get("kind") == to_kind
            and (t.get("name") is None or t.get("name") == name)
            for t in map(as_map, as_seq(s.get("to")))
        ):
            return True
    return False


def _not_granted(referrer: Obj, field: str, target: str, kind: str, into: str) -> Finding:
    return Finding(
        referrer,
        f"{field}.namespace",
        f"is {into!r}: {kind} {target!r} there is in another namespace and no ReferenceGrant "
        f"in {into!r} lets a {referrer.kind} from {referrer.namespace!r} refer to it, so the "
        "implementation refuses the reference (ResolvedRefs: RefNotPermitted).",
        f"Add a ReferenceGrant in {into!r} with from {{group: {GROUP}, kind: {referrer.kind}, "
        f"namespace: {referrer.namespace}}} and to {{group: '', kind: {kind}, name: {target}}}.",
    )


def cross_namespace_granted(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for route in stack.routes:
        for ref in service_refs(route):
            if ref.namespace != route.namespace and not _granted(
                stack,
                into=ref.namespace,
                kind=route.kind,
                from_ns=route.namespace,
                to_kind="Service",
                name=ref.name,
            ):
                yield _not_granted(route, ref.field, ref.name or "", "Service", ref.namespace)
    for gateway in stack.gateway_list:
        for listener in listeners(gateway):
            for secret in secret_refs(gateway, listener):
                if secret.namespace != gateway.namespace and not _granted(
                    stack,
                    into=secret.namespace,
                    kind="Gateway",
                    from_ns=gateway.namespace,
                    to_kind="Secret",
                    name=secret.name,
                ):
                    yield _not_granted(
                        gateway, secret.field, secret.name or "", "Secret", secret.namespace
                    )


_Match = tuple[
    str, str, str | None, frozenset[tuple[str, str, str]], frozenset[tuple[str, str, str]]
]
#: A rule without matches matches everything: one PathPrefix "/" match (HTTPRouteRule.matches).
_MATCH_ALL: Final[_Match] = ("PathPrefix", "/", None, frozenset(), frozenset())


def _pairs(entries: Any, *, fold: bool) -> frozenset[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    for entry in as_seq(entries):
        item = as_map(entry)
        name = str(item.get("name") or "")
        found.add(
            (
                name.lower() if fold else name,
                as_str(item.get("type")) or "Exact",
                str(item.get("value") or ""),
            )
        )
    return frozenset(found)


def _match_key(match: Mapping[str, Any]) -> _Match:
    """One HTTPRouteMatch with the defaults of the CRD: path PathPrefix "/", type Exact; header
    names are case-insensitive (RFC 9110 §5.1), query parameter names are not."""
    path = match.get("path")
    if path is None:
        path_type, value = "PathPrefix", "/"
    else:
        item = as_map(path)
        path_type = as_str(item.get("type")) or "PathPrefix"
        value = as_str(item.get("value")) or "/"
    return (
        path_type,
        value,
        as_str(match.get("method")),
        _pairs(match.get("headers"), fold=True),
        _pairs(match.get("queryParams"), fold=False),
    )


def _describe(match: _Match) -> str:
    path_type, value, method, headers, query = match
    parts = [f"{path_type} {value!r}"]
    if method:
        parts.append(f"method {method}")
    parts.extend(f"header {n}={v!r} ({t})" for n, t, v in sorted(headers))
    parts.extend(f"query {n}={v!r} ({t})" for n, t, v in sorted(query))
    return ", ".join(parts)


_Claim = tuple[tuple[str, str], str, _Match]
"""(Gateway namespace/name, host name, match): what an HTTPRoute rule takes from a Gateway."""


def unique_match(stack: Stack, ctx: Context) -> Iterator[Finding]:
    claimants: dict[_Claim, list[tuple[Obj, str]]] = defaultdict(list)
    for route in stack.routes:
        if route.kind != "HTTPRoute":
            continue
        gateways = {(p.namespace, p.name) for p in gateway_parents(route) if p.name}
        hosts = {h.lower() for _, h in hostnames(route) if h}
        if not gateways or not hosts:
            continue
        seen: set[_Claim] = set()
        for j, rule in enumerate(as_seq(spec(route).get("rules"))):
            matches = as_seq(as_map(rule).get("matches"))
            items = [
                (f"spec.rules[{j}].matches[{k}]", _match_key(as_map(m)))
                for k, m in enumerate(matches)
            ] or [(f"spec.rules[{j}]", _MATCH_ALL)]
            for field, key in items:
                for gateway in sorted(gateways):
                    for host in sorted(hosts):
                        claim = (gateway, host, key)
                        if claim not in seen:
                            seen.add(claim)
                            claimants[claim].append((route, field))
    # One finding per route and match, naming every other claimant and the shared host names.
    clashes: dict[tuple[int, str], tuple[Obj, _Match, set[str], set[str]]] = {}
    for (gateway, host, key), owners in claimants.items():
        if len({o.key for o, _ in owners}) < 2:
            continue
        for route, field in owners:
            entry = clashes.setdefault((route.index, field), (route, key, set(), set()))
            entry[2].update(o.ref for o, _ in owners if o.key != route.key)
            entry[3].add(f"{host} on Gateway {gateway[0]}/{gateway[1]}")
    for (_, field), (route, key, others, where) in sorted(clashes.items(), key=lambda c: c[0][0]):
        yield Finding(
            route,
            field,
            f"matches {_describe(key)} for {', '.join(sorted(where))}, exactly as "
            f"{', '.join(sorted(others))} does; which route wins then depends on creation time.",
            "Give each route its own host name or match, or merge the rules into one HTTPRoute.",
        )
