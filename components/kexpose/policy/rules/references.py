"""Stack rules about references between objects: selectors, backends, TLS Secrets, host claims.

These are the checks admission controllers cannot make before anything exists in the cluster:
they need the sibling objects of the same deploy (``policy-anchors.md``, "What none of the
anchors checks").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from kexpose.hosts import normalize_host
from kexpose.policy.rules._kube import (
    Context,
    Finding,
    Obj,
    as_int,
    as_map,
    as_seq,
    as_str,
    backends,
    effective_class,
    has_key,
    spec,
)
from kexpose.policy.rules._stack import Stack
from kexpose.policy.rules.certificates import TLS_TYPE

__all__ = [
    "ISSUER_ANNOTATIONS",
    "backend_service_exists",
    "selector_matches_workload",
    "tls_secret_problem",
    "tls_secret_provisioned",
    "unique_host_path",
]

ISSUER_ANNOTATIONS = ("cert-manager.io/cluster-issuer", "cert-manager.io/issuer")


def _port_names(workload: Obj) -> set[str]:
    # Only `containers`: the endpoints controller resolves a named targetPort there
    # (podutil.FindPort), not in init containers.
    pod = as_map(as_map(spec(workload).get("template")).get("spec"))
    return {
        name
        for container in as_seq(pod.get("containers"))
        for port in as_seq(as_map(container).get("ports"))
        if (name := as_str(as_map(port).get("name")))
    }


def selector_matches_workload(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for svc in stack.services.values():
        s = spec(svc)
        selector = as_map(s.get("selector"))
        if not selector or s.get("type") == "ExternalName":
            continue  # no selector: endpoints are managed by hand; ExternalName has none
        wanted = dict(selector.items())
        matched = stack.selected_workloads(svc.namespace, wanted)
        if not matched:
            shown = ", ".join(f"{k}={v}" for k, v in wanted.items())
            yield Finding(
                svc,
                "spec.selector",
                f"({shown}) matches the pod template of no Deployment, StatefulSet or "
                f"DaemonSet in namespace {svc.namespace!r}; the Service would have no endpoints.",
                "Make the selector a subset of the workload's spec.template.metadata.labels.",
            )
            continue
        names = set().union(*(_port_names(w) for w in matched))
        for i, port in enumerate(as_seq(s.get("ports"))):
            target = as_map(port).get("targetPort")
            if isinstance(target, str) and target not in names:
                known = ", ".join(sorted(names)) or "none"
                yield Finding(
                    svc,
                    f"spec.ports[{i}].targetPort",
                    f"names container port {target!r}, which no matched workload declares "
                    f"(named ports: {known}).",
                    "Use a container port name the workload declares, or a port number.",
                )


def backend_service_exists(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for ingress in stack.ingresses:
        for backend in backends(ingress):
            if not backend.service:
                yield Finding(
                    ingress,
                    backend.service_field,
                    "is missing, so the backend names no Service.",
                    "Name the Service this path routes to.",
                )
                continue
            svc = stack.services.get((ingress.namespace, backend.service))
            if svc is None:
                yield Finding(
                    ingress,
                    backend.service_field,
                    f"names Service {backend.service!r}, which is not in namespace "
                    f"{ingress.namespace!r} in this stack (an Ingress can only route to "
                    "Services in its own namespace).",
                    "Create the Service in the Ingress's namespace, or fix the name.",
                )
                continue
            ports = [as_map(p) for p in as_seq(spec(svc).get("ports"))]
            if backend.port_number is not None:
                numbers = [as_int(p.get("port")) for p in ports]
                if backend.port_number not in numbers:
                    shown = ", ".join(str(n) for n in numbers) or "none"
                    yield Finding(
                        ingress,
                        backend.port_field,
                        f"is {backend.port_number}, which is not a port of Service "
                        f"{backend.service!r} (its ports: {shown}; targetPort does not count).",
                        "Use one of the Service's spec.ports[].port values.",
                    )
            elif backend.port_name:
                # An unnamed Service port never matches by name (kube-score's "" == "" trap).
                names = [n for p in ports if (n := as_str(p.get("name")))]
                if backend.port_name not in names:
                    shown = ", ".join(names) or "no named ports"
                    yield Finding(
                        ingress,
                        backend.port_field,
                        f"is {backend.port_name!r}, which is not a port name of Service "
                        f"{backend.service!r} (it has: {shown}).",
                        "Use one of the Service's spec.ports[].name values, or the port number.",
                    )
            else:
                yield Finding(
                    ingress,
                    backend.port_field,
                    f"is missing, so the backend names no port of Service {backend.service!r}.",
                    "Set the Service port number or name.",
                )


def tls_secret_problem(secret: Obj) -> str | None:
    """Why ``secret`` cannot serve a certificate (wrong type, a key missing), or None."""
    kind = secret.raw.get("type")
    if kind != TLS_TYPE:
        return f"has type {kind!r}, not {TLS_TYPE!r}"
    data = as_map(secret.raw.get("data"))
    plain = as_map(secret.raw.get("stringData"))
    missing = [k for k in ("tls.crt", "tls.key") if not (has_key(data, k) or has_key(plain, k))]
    if missing:
        return f"has no {' or '.join(missing)}"
    return None


def tls_secret_provisioned(stack: Stack, ctx: Context) -> Iterator[Finding]:
    for ingress in stack.ingresses:
        notes = as_map(as_map(ingress.raw.get("metadata")).get("annotations"))
        if any(notes.get(a) for a in ISSUER_ANNOTATIONS):
            continue  # cert-manager's ingress-shim creates every tls Secret of this Ingress
        for i, entry in enumerate(as_seq(spec(ingress).get("tls"))):
            name = as_str(as_map(entry).get("secretName"))
            if not name:
                continue  # ing-require-tls reports entries without a secretName
            if (ingress.namespace, name) in stack.certificate_secrets:
                continue
            secret = stack.secrets.get((ingress.namespace, name))
            if secret is not None:
                problem = tls_secret_problem(secret)
                if problem is None:
                    continue
                reason = f"Secret {name!r} {problem}"
            else:
                elsewhere = [n for n in stack.secret_names.get(name, ()) if n != ingress.namespace]
                reason = f"no Secret {name!r} exists in namespace {ingress.namespace!r}" + (
                    f" (there is one in {', '.join(elsewhere)}; an Ingress only reads its own "
                    "namespace)"
                    if elsewhere
                    else ""
                )
            yield Finding(
                ingress,
                f"spec.tls[{i}].secretName",
                f"is not provisioned by this stack: {reason}, and no cert-manager Certificate "
                "or issuer annotation produces it.",
                f"Add a {TLS_TYPE} Secret with tls.crt and tls.key, a cert-manager Certificate "
                "with this secretName, or a cert-manager.io/cluster-issuer annotation.",
            )


def _claims(ingress: Obj) -> Iterator[tuple[tuple[str, str, str], str]]:
    """((host, pathType, path), field) for every path of every rule."""
    for i, rule in enumerate(as_seq(spec(ingress).get("rules"))):
        item = as_map(rule)
        host = normalize_host(as_str(item.get("host")) or "")
        for j, entry in enumerate(as_seq(as_map(item.get("http")).get("paths"))):
            path_item = as_map(entry)
            # v1 requires pathType; v1beta1 defaulted it to ImplementationSpecific.
            path_type = as_str(path_item.get("pathType")) or "ImplementationSpecific"
            path = str(path_item.get("path") or "/")
            if path_type == "Prefix":
                # Prefix matching is element-wise: "/foo/" and "/foo" claim the same requests.
                path = path.rstrip("/") or "/"
            yield (host, path_type, path), f"spec.rules[{i}].http.paths[{j}].path"


def unique_host_path(stack: Stack, ctx: Context) -> Iterator[Finding]:
    claimants: dict[tuple[str | None, str, str, str], list[tuple[Obj, str]]] = defaultdict(list)
    for ingress in stack.ingresses:
        klass = effective_class(ingress)
        seen: set[tuple[str, str, str]] = set()
        for claim, field in _claims(ingress):
            if claim in seen:
                continue  # the same Ingress repeating a path is not a conflict between owners
            seen.add(claim)
            claimants[(klass, *claim)].append((ingress, field))
    for (klass, host, path_type, path), owners in claimants.items():
        if len({o.key for o, _ in owners}) < 2:
            continue
        for ingress, field in owners:
            others = ", ".join(o.ref for o, _ in owners if o.key != ingress.key)
            yield Finding(
                ingress,
                field,
                f"claims host {host or '*'!r} path {path!r} ({path_type}, class "
                f"{klass or 'default'!r}) also claimed by {others}; which one wins is up to "
                "the controller.",
                "Give each Ingress its own host or path, or merge them into one Ingress.",
            )
