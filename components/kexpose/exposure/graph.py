"""The exposure graph: a stack's manifests and policy verdicts as who-reaches-what, internet in.

Pure: manifests (as ``kexpose preview`` records them) and violations in, one frozen graph out.
The graph has seven layers, which is the path a request takes into the cluster:

    internet → entry (LoadBalancer / NodePort / external IPs) → controller (IngressClass and the
    controller's listeners) → host (with TLS and auth badges) → path → Service → workload

Gateway API objects take the same path: an HTTPRoute's hostnames are hosts of the controller
whose GatewayClass its Gateway uses (kexpose names both classes alike), with the TLS of the
listener it attaches to; its rules are paths, their weighted backendRefs edges to Services. A
route that only redirects (the Gateway's HTTP-to-HTTPS route) is part of the controller.

Services exposed directly (a NodePort or LoadBalancer that selects an app, not the controller)
skip the controller, host and path layers. Services and workloads that nothing outside reaches
are kept, marked internal, so a reviewer sees the whole stack.

Each node carries the Kubernetes objects it stands for and the policy findings on them. An
Ingress finding whose field points into ``spec.rules[i]`` goes to host ``i`` (and to path ``j``
for ``spec.rules[i].http.paths[j]``); other Ingress findings go to each of its hosts.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from cryptography import x509

from kexpose.certs import read_certificate
from kexpose.errors import KexposeError
from kexpose.hosts import covers
from kexpose.policy.engine import Violation

__all__ = [
    "LAYERS",
    "Badge",
    "Edge",
    "ExposureGraph",
    "Finding",
    "Group",
    "Node",
    "NodeKind",
    "Tone",
    "Verdict",
    "build_graph",
]

NodeKind = Literal["internet", "entry", "controller", "host", "path", "service", "workload"]
#: Left to right, the order a request meets them.
LAYERS: Final[tuple[NodeKind, ...]] = (
    "internet",
    "entry",
    "controller",
    "host",
    "path",
    "service",
    "workload",
)
Verdict = Literal["pass", "advisory", "mandatory"]
Tone = Literal["good", "warn", "bad", "info"]

_CONTROLLER_LABEL: Final = "app.kubernetes.io/component"
_INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
# https://kubernetes.io/docs/concepts/services-networking/ingress/#default-ingress-class
_DEFAULT_CLASS: Final = "ingressclass.kubernetes.io/is-default-class"
_CLUSTER_SCOPED: Final = frozenset(
    {"Namespace", "IngressClass", "ClusterRole", "ClusterRoleBinding"}
)
_RULE_FIELD: Final = re.compile(r"^spec\.rules\[(\d+)\](?:\.http\.paths\[(\d+)\])?")


@dataclass(frozen=True, slots=True)
class Finding:
    """One policy rule an object breaks, as the map shows it."""

    rule: str
    enforcement: str
    resource: str
    message: str

    @classmethod
    def of(cls, v: Violation) -> Finding:
        return cls(rule=v.rule, enforcement=v.enforcement, resource=v.resource, message=v.message)


@dataclass(frozen=True, slots=True)
class Badge:
    """A short fact shown as a coloured pill (TLS mode, auth, openness)."""

    label: str
    tone: Tone
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    """Stable and unique, derived from the objects (``svc:shop/shop-web``); not markup-safe."""
    kind: NodeKind
    title: str
    group: str | None
    """The namespace the node is drawn in; None for the internet."""
    details: tuple[str, ...] = ()
    badges: tuple[Badge, ...] = ()
    findings: tuple[Finding, ...] = ()
    objects: tuple[str, ...] = ()
    """``Kind/namespace/name`` of each object the node stands for."""
    missing: bool = False
    """Referenced by the stack but not part of it (e.g. a backend Service it does not create)."""
    exposed: bool = True
    """Reached from the internet."""

    @property
    def verdict(self) -> Verdict:
        if any(f.enforcement == "mandatory" for f in self.findings):
            return "mandatory"
        return "advisory" if self.findings else "pass"

    def search_text(self) -> str:
        """Everything a search box should match: names, hosts, paths, rule ids."""
        parts = [self.kind, self.title, self.group or "", *self.details, *self.objects]
        parts += [b.label for b in self.badges] + [f.rule for f in self.findings]
        return " ".join(parts).lower()


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class Group:
    """A namespace band, with findings on the Namespace object itself."""

    name: str
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True)
class ExposureGraph:
    stack: str
    environment: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    groups: tuple[Group, ...]
    other_findings: tuple[Finding, ...] = ()
    """Findings on objects no node stands for (RBAC of an app, objects of unknown kinds)."""

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    @property
    def findings(self) -> tuple[Finding, ...]:
        seen: dict[tuple[str, str, str], Finding] = {}
        for f in (
            *(f for n in self.nodes for f in n.findings),
            *(f for g in self.groups for f in g.findings),
            *self.other_findings,
        ):
            seen.setdefault((f.rule, f.resource, f.message), f)
        return tuple(seen.values())


def _key(m: Mapping[str, Any]) -> str:
    meta = m.get("metadata") or {}
    return f"{m.get('kind')}/{meta.get('namespace') or 'default'}/{meta.get('name')}"


def _ns(m: Mapping[str, Any]) -> str:
    return str((m.get("metadata") or {}).get("namespace") or "default")


def _name(m: Mapping[str, Any]) -> str:
    return str((m.get("metadata") or {}).get("name"))


def _labels(m: Mapping[str, Any], where: str = "metadata") -> dict[str, str]:
    if where == "pod":
        tpl = ((m.get("spec") or {}).get("template") or {}).get("metadata") or {}
        return dict(tpl.get("labels") or {})
    return dict((m.get("metadata") or {}).get("labels") or {})


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    # A Service selector is an equality-based label selector; an empty one selects nothing
    # that a Service would route to (https://kubernetes.io/docs/concepts/services-networking/service/#services-without-selectors).
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _ports(spec: Mapping[str, Any]) -> str:
    out = []
    for p in spec.get("ports") or []:
        target = p.get("targetPort")
        out.append(
            f":{p.get('port')}" + (f"→{target}" if target not in (None, p.get("port")) else "")
        )
    return " ".join(out) or "no ports"


def _pem_of(secret: Mapping[str, Any]) -> str | None:
    if pem := (secret.get("stringData") or {}).get("tls.crt"):
        return str(pem)
    if raw := (secret.get("data") or {}).get("tls.crt"):
        try:
            return base64.b64decode(str(raw), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


@dataclass(slots=True)
class _Builder:
    manifests: Sequence[Mapping[str, Any]]
    by_key: dict[str, list[Violation]]
    now: dt.datetime
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    placed: set[str] = field(default_factory=set)

    def findings(self, *keys: str) -> tuple[Finding, ...]:
        self.placed.update(keys)
        return tuple(Finding.of(v) for k in keys for v in self.by_key.get(k, []))

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, source: str, target: str, label: str = "") -> None:
        edge = Edge(source, target, label)
        if edge not in self.edges:
            self.edges.append(edge)

    def of_kind(self, kind: str) -> list[Mapping[str, Any]]:
        return [m for m in self.manifests if m.get("kind") == kind]


def build_graph(
    manifests: Iterable[Mapping[str, Any]],
    violations: Iterable[Violation],
    *,
    stack: str,
    environment: str,
    now: dt.datetime,
) -> ExposureGraph:
    """The exposure graph of a stack's objects; ``now`` dates certificate expiry."""
    objs = [m for m in manifests if isinstance(m, Mapping)]
    by_key: dict[str, list[Violation]] = {}
    for v in violations:
        by_key.setdefault(v.resource, []).append(v)
    b = _Builder(objs, by_key, now)
    internet = b.add(Node("internet", "internet", "Internet", None, details=("clients",)))

    deployments = b.of_kind("Deployment")
    controllers = [
        d for d in deployments if _labels(d).get(_CONTROLLER_LABEL) == "ingress-controller"
    ]
    classes = _controller_nodes(b, controllers)

    services = b.of_kind("Service")
    for svc in services:
        _service_nodes(b, svc, internet, deployments, controllers, classes)
    for ing in b.of_kind("Ingress"):
        _ingress_nodes(b, ing, classes)
    for route in [*b.of_kind("HTTPRoute"), *b.of_kind("GRPCRoute")]:
        _httproute_nodes(b, route, classes)

    # Whatever the stack holds and nothing reaches still belongs in the picture (greyed).
    for d in deployments:
        if d not in controllers:
            _workload(b, d)

    reachable = _reachable(internet, b.edges)
    nodes = tuple(n if n.id in reachable else _replace(n, exposed=False) for n in b.nodes.values())
    groups: dict[str, Group] = {}
    for n in nodes:
        if n.group is not None and n.group not in groups:
            groups[n.group] = Group(n.group)
    for ns in b.of_kind("Namespace"):
        name = _name(ns)
        if name in groups:
            groups[name] = Group(name, b.findings(_key(ns)))
    other = tuple(
        Finding.of(v) for k, vs in sorted(by_key.items()) if k not in b.placed for v in vs
    )
    return ExposureGraph(
        stack=stack,
        environment=environment,
        nodes=nodes,
        edges=tuple(b.edges),
        groups=tuple(groups.values()),
        other_findings=other,
    )


def _filter_label(f: Mapping[str, Any]) -> str:
    """An HTTPRoute filter as the map shows it: its type, or the object an ExtensionRef names
    (``EdgeAuth shop-web``: the edge auth of that rule)."""
    ref = f.get("extensionRef")
    if f.get("type") == "ExtensionRef" and isinstance(ref, Mapping):
        return f"{ref.get('kind')} {ref.get('name')}"
    return str(f.get("type"))


def _replace(n: Node, **changes: Any) -> Node:
    import dataclasses

    return dataclasses.replace(n, **changes)


def _reachable(start: str, edges: Sequence[Edge]) -> set[str]:
    out, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for e in edges:
            if e.source == here and e.target not in out:
                out.add(e.target)
                todo.append(e.target)
    return out


def _controller_nodes(b: _Builder, controllers: list[Mapping[str, Any]]) -> dict[str, str]:
    """A node per IngressClass, with the controller behind it; class name → node id."""
    out: dict[str, str] = {}
    for ic in b.of_kind("IngressClass"):
        name = _name(ic)
        instance = _labels(ic).get(_INSTANCE_LABEL)
        mine = [d for d in controllers if _labels(d).get(_INSTANCE_LABEL) == instance] or (
            controllers if len(controllers) == 1 else []
        )
        inst = {_labels(d).get(_INSTANCE_LABEL) for d in mine} - {None}
        # The controller's supporting objects (RBAC, its PDB) carry its instance label.
        support = [
            m
            for m in b.manifests
            if m.get("kind") not in {"Deployment", "Service", "IngressClass"}
            and _labels(m).get(_INSTANCE_LABEL) in inst
        ]
        default = (ic.get("metadata") or {}).get("annotations", {}).get(_DEFAULT_CLASS) == "true"
        details = ["default IngressClass" if default else "IngressClass"]
        details.append(str((ic.get("spec") or {}).get("controller", "")))
        for d in mine:
            replicas = (d.get("spec") or {}).get("replicas", 1)
            details.append(f"{_name(d)}, {replicas} replicas")
        keys = [_key(ic), *(_key(d) for d in mine), *(_key(m) for m in support)]
        group = _ns(mine[0]) if mine else "cluster"
        out[name] = b.add(
            Node(
                f"ctrl:{name}",
                "controller",
                name,
                group,
                details=tuple(details),
                findings=b.findings(*keys),
                objects=tuple(keys),
            )
        )
        for d in mine:
            b.placed.add(_key(d))
    for d in controllers:
        b.placed.add(_key(d))
    return out


def _default_class(b: _Builder) -> str | None:
    for ic in b.of_kind("IngressClass"):
        if (ic.get("metadata") or {}).get("annotations", {}).get(_DEFAULT_CLASS) == "true":
            return _name(ic)
    return None


def _entry(b: _Builder, svc: Mapping[str, Any], internet: str) -> str | None:
    """The way in a Service opens from outside the cluster, if any."""
    spec = svc.get("spec") or {}
    typ = spec.get("type") or "ClusterIP"
    ext_ips = list(spec.get("externalIPs") or [])
    if typ not in ("LoadBalancer", "NodePort") and not ext_ips:
        return None
    ns, name = _ns(svc), _name(svc)
    details = [f"Service {name}"]
    badges = []
    if typ == "LoadBalancer":
        details.append(f"ports {_ports(spec)}")
        ranges = list(spec.get("loadBalancerSourceRanges") or [])
        if ranges:
            details.append("sources " + ", ".join(ranges))
            badges.append(Badge(f"{len(ranges)} source range(s)", "good"))
        else:
            badges.append(Badge("sources: any (0.0.0.0/0)", "warn", "no loadBalancerSourceRanges"))
        if spec.get("allocateLoadBalancerNodePorts") is False:
            details.append("no node ports")
        else:
            # A LoadBalancer allocates node ports too unless told not to; they bypass the
            # source ranges on most providers (Service spec.allocateLoadBalancerNodePorts).
            badges.append(Badge("also opens node ports", "warn"))
    if typ == "NodePort":
        ports = [
            f":{p['nodePort']}→{p.get('port')}" if p.get("nodePort") else f"auto→{p.get('port')}"
            for p in spec.get("ports") or []
        ]
        details.append("node ports " + " ".join(ports))
        # NodePorts listen on every node address; the Service spec cannot narrow the sources.
        badges.append(Badge("sources: any node address", "warn"))
    if policy := spec.get("externalTrafficPolicy"):
        details.append(f"externalTrafficPolicy {policy}")
    if ext_ips:
        badges.append(Badge("external IPs " + ", ".join(ext_ips), "warn"))
    title = typ if typ != "ClusterIP" else "external IPs"
    node = b.add(
        Node(
            f"entry:{ns}/{name}",
            "entry",
            title,
            ns,
            details=tuple(details),
            badges=tuple(badges),
            findings=b.findings(_key(svc)),
            objects=(_key(svc),),
        )
    )
    b.link(internet, node)
    return node


def _service_nodes(
    b: _Builder,
    svc: Mapping[str, Any],
    internet: str,
    deployments: list[Mapping[str, Any]],
    controllers: list[Mapping[str, Any]],
    classes: dict[str, str],
) -> None:
    spec = svc.get("spec") or {}
    selector = dict(spec.get("selector") or {})
    ns = _ns(svc)
    behind = [d for d in deployments if _ns(d) == ns and _selects(selector, _labels(d, "pod"))]
    entry = _entry(b, svc, internet)
    if behind and all(d in controllers for d in behind):
        for node_id in classes.values():
            node = b.nodes[node_id]
            if entry and any(f"Deployment/{_ns(d)}/{_name(d)}" in node.objects for d in behind):
                listeners = ", ".join(
                    f"{p.get('name') or p.get('targetPort')} :{p.get('port')}"
                    for p in spec.get("ports") or []
                )
                b.nodes[node_id] = _replace(node, details=(*node.details, f"listeners {listeners}"))
                b.link(entry, node_id, _ports(spec))
        return
    svc_id = _service(b, svc)
    if entry:
        b.link(entry, svc_id)
    for d in behind:
        b.link(svc_id, _workload(b, d))
    if not behind:
        label = ", ".join(f"{k}={v}" for k, v in sorted(selector.items())) or "no selector"
        b.link(
            svc_id,
            b.add(
                Node(
                    f"wl:{ns}/?{label}",
                    "workload",
                    "not in stack",
                    ns,
                    details=(f"selector {label}",),
                    missing=True,
                )
            ),
        )


def _service(b: _Builder, svc: Mapping[str, Any]) -> str:
    spec = svc.get("spec") or {}
    ns, name = _ns(svc), _name(svc)
    return b.add(
        Node(
            f"svc:{ns}/{name}",
            "service",
            name,
            ns,
            details=(f"{spec.get('type') or 'ClusterIP'} {_ports(spec)}",),
            findings=b.findings(_key(svc)),
            objects=(_key(svc),),
        )
    )


def _workload(b: _Builder, d: Mapping[str, Any]) -> str:
    ns, name = _ns(d), _name(d)
    spec = d.get("spec") or {}
    pdbs = [
        p
        for p in b.of_kind("PodDisruptionBudget")
        if _ns(p) == ns
        and _selects(
            ((p.get("spec") or {}).get("selector") or {}).get("matchLabels") or {},
            _labels(d, "pod"),
        )
    ]
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    details = [f"{d.get('kind')}, {spec.get('replicas', 1)} replicas"]
    details += [str(c.get("image", "")) for c in containers[:2]]
    badges = [Badge(f"PDB {_name(p)}", "info") for p in pdbs]
    keys = [_key(d), *(_key(p) for p in pdbs)]
    return b.add(
        Node(
            f"wl:{ns}/{name}",
            "workload",
            name,
            ns,
            details=tuple(details),
            badges=tuple(badges),
            findings=b.findings(*keys),
            objects=tuple(keys),
        )
    )


def _tls_badges(b: _Builder, ing: Mapping[str, Any], host: str) -> tuple[list[Badge], list[str]]:
    """TLS of one host: mode, the hosts its certificate covers, expiry."""
    spec = ing.get("spec") or {}
    ns = _ns(ing)
    annotations = (ing.get("metadata") or {}).get("annotations") or {}
    entry = next(
        (t for t in spec.get("tls") or [] if any(covers(h, host) for h in t.get("hosts") or [])),
        None,
    )
    if entry is None:
        return [Badge("no TLS", "warn", "plain HTTP only")], []
    issuer = annotations.get("cert-manager.io/cluster-issuer") or annotations.get(
        "cert-manager.io/issuer"
    )
    return _certificate_badges(
        b, ns, entry.get("secretName") or "", list(entry.get("hosts") or []), issuer
    )


def _certificate_badges(
    b: _Builder, ns: str, secret_name: str, covered: list[str], issuer: str | None
) -> tuple[list[Badge], list[str]]:
    """The badge and details of one certificate: cert-manager's, or a Secret's in the stack."""
    details = [f"TLS covers {', '.join(covered)}"]
    secret = next(
        (s for s in b.of_kind("Secret") if _ns(s) == ns and _name(s) == secret_name), None
    )
    cert = next(
        (
            c
            for c in b.of_kind("Certificate")
            if _ns(c) == ns and (c.get("spec") or {}).get("secretName") == secret_name
        ),
        None,
    )
    if issuer or cert is not None:
        ref = issuer or ((cert or {}).get("spec") or {}).get("issuerRef", {}).get("name", "?")
        # cert-manager issues at apply time and renews before expiry (its default renewBefore
        # is a third of the duration), so no expiry is known before the first issuance.
        badge = Badge("TLS cert-manager", "good", f"issuer {ref}; expiry set at issuance")
        details += [f"issuer {ref}", "expiry: at issuance, renewed"]
        return [badge], details
    pem = _pem_of(secret) if secret is not None else None
    if secret is None:
        details.append(f"Secret {secret_name} not in stack; expiry unknown")
        return [Badge(f"TLS secret {secret_name}", "info", "not in stack")], details
    if pem is None:
        details.append("expiry unknown (no certificate in the Secret)")
        return [Badge(f"TLS secret {secret_name}", "warn")], details
    try:
        info = read_certificate(pem)
    except KexposeError:
        details.append("certificate unreadable")
        return [Badge(f"TLS secret {secret_name}", "bad", "unreadable certificate")], details
    days = (info.not_after - b.now).days
    self_signed = "self-signed" if _is_self_signed(pem) else "secret"
    tone: Tone = "good" if days >= 30 else ("warn" if days >= 0 else "bad")
    details.append(f"expires {info.not_after:%Y-%m-%d} ({days} d)")
    details.append(f"Secret {secret_name}")
    return [Badge(f"TLS {self_signed}", tone, f"{days} days left")], details


def _is_self_signed(pem: str) -> bool:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return cert.issuer == cert.subject


def _auth_badge(ing: Mapping[str, Any]) -> Badge:
    """The model has no auth yet; an auth annotation a controller reads is shown if present."""
    annotations = (ing.get("metadata") or {}).get("annotations") or {}
    keys = sorted(k for k in annotations if "auth" in k.lower())
    if keys:
        return Badge("auth: " + ", ".join(keys), "good")
    return Badge("auth: none", "info")


def _missing_controller(b: _Builder, cls: str, why: str) -> str:
    """A controller node for a class the stack names but does not hold."""
    return b.add(Node(f"ctrl:{cls}", "controller", cls, "cluster", details=(why,), missing=True))


def _host_node(
    b: _Builder,
    obj: Mapping[str, Any],
    i: int,
    host: str,
    ctrl: str,
    tls: list[Badge],
    tls_details: list[str],
    findings: tuple[Finding, ...],
) -> str:
    """The node for the ``i``-th host of an Ingress, HTTPRoute or GRPCRoute, linked from its
    controller (none: the route is attached to no Gateway)."""
    ns, name = _ns(obj), _name(obj)
    # A GRPCRoute's nodes stay apart from an HTTPRoute's of the same name.
    tag = f"GRPCRoute:{name}" if obj.get("kind") == "GRPCRoute" else name
    host_id = b.add(
        Node(
            f"host:{ns}/{tag}/{i}",
            "host",
            host if host != "*" else "* (any host)",
            ns,
            details=(f"{obj.get('kind')} {name}", *tls_details),
            badges=(*tls, _auth_badge(obj)),
            findings=findings,
            objects=(_key(obj),),
        )
    )
    if ctrl:
        b.link(ctrl, host_id, "https" if tls[0].label.startswith("TLS") else "http")
    return host_id


def _ingress_nodes(b: _Builder, ing: Mapping[str, Any], classes: dict[str, str]) -> None:
    spec = ing.get("spec") or {}
    ns, name, key = _ns(ing), _name(ing), _key(ing)
    b.placed.add(key)
    cls = spec.get("ingressClassName") or _default_class(b) or "(no class)"
    ctrl = classes.get(cls)
    if ctrl is None:
        ctrl = classes[cls] = _missing_controller(b, cls, f"IngressClass {cls} not in stack")
    per_rule: dict[tuple[int, int | None], list[Violation]] = {}
    general: list[Violation] = []
    for v in b.by_key.get(key, []):
        m = _RULE_FIELD.match(v.field)
        if m:
            per_rule.setdefault((int(m[1]), int(m[2]) if m[2] else None), []).append(v)
        else:
            general.append(v)
    rules = list(spec.get("rules") or [])
    if spec.get("defaultBackend"):
        rules.append({"host": None, "_default": spec["defaultBackend"]})
    for i, rule in enumerate(rules):
        host = rule.get("host") or "*"
        tls, tls_details = _tls_badges(b, ing, host)
        host_findings = tuple(Finding.of(v) for v in (*general, *per_rule.get((i, None), [])))
        host_id = _host_node(b, ing, i, host, ctrl, tls, tls_details, host_findings)
        paths = (
            [{"path": "(default backend)", "backend": rule["_default"]}]
            if "_default" in rule
            else list((rule.get("http") or {}).get("paths") or [])
        )
        for j, p in enumerate(paths):
            backend = (p.get("backend") or {}).get("service") or {}
            port = backend.get("port") or {}
            port_s = str(port.get("name") or port.get("number") or "?")
            path_id = b.add(
                Node(
                    f"path:{ns}/{name}/{i}/{j}",
                    "path",
                    str(p.get("path") or "/"),
                    ns,
                    details=(f"{p.get('pathType', 'Prefix')} → {backend.get('name')}:{port_s}",),
                    findings=tuple(Finding.of(v) for v in per_rule.get((i, j), [])),
                    objects=(key,),
                )
            )
            b.link(host_id, path_id)
            svc_name = backend.get("name")
            svc = next(
                (s for s in b.of_kind("Service") if _ns(s) == ns and _name(s) == svc_name), None
            )
            if svc is not None:
                b.link(path_id, _service(b, svc), port_s)
            else:
                missing = b.add(
                    Node(
                        f"svc:{ns}/{svc_name}",
                        "service",
                        str(svc_name),
                        ns,
                        details=("not in stack",),
                        missing=True,
                    )
                )
                b.link(path_id, missing, port_s)


def _redirect_only(route: Mapping[str, Any]) -> bool:
    rules = (route.get("spec") or {}).get("rules") or []
    return bool(rules) and all(
        not r.get("backendRefs")
        and any(f.get("type") == "RequestRedirect" for f in r.get("filters") or [])
        for r in rules
    )


def _listener_tls(
    b: _Builder, gateway: Mapping[str, Any] | None, listener: Mapping[str, Any] | None
) -> tuple[list[Badge], list[str]]:
    """TLS of a host as the Gateway listener a route attaches to terminates it."""
    if gateway is None or listener is None or listener.get("protocol") != "HTTPS":
        return [Badge("no TLS", "warn", "plain HTTP only")], []
    refs = list((listener.get("tls") or {}).get("certificateRefs") or [])
    if not refs:
        return [Badge("TLS: no certificate", "bad", "an HTTPS listener without one")], []
    annotations = (gateway.get("metadata") or {}).get("annotations") or {}
    issuer = annotations.get("cert-manager.io/cluster-issuer") or annotations.get(
        "cert-manager.io/issuer"
    )
    ref = refs[0]
    covered = [str(listener["hostname"])] if listener.get("hostname") else ["*"]
    badges, details = _certificate_badges(
        b, str(ref.get("namespace") or _ns(gateway)), str(ref.get("name")), covered, issuer
    )
    return badges, [f"Gateway {_name(gateway)}, listener {listener.get('name')}", *details]


def _match_text(rule: Mapping[str, Any]) -> tuple[str, str, list[str]]:
    """(path, path type, other conditions) of a rule's first match (a GRPCRoute's method match
    shown as the request path gRPC uses, ``/<service>/<method>``)."""
    match = (rule.get("matches") or [{}])[0]
    grpc = match.get("method")
    if isinstance(grpc, Mapping):
        shown = "/" + str(grpc.get("service") or "*") + "/" + str(grpc.get("method") or "*")
        extra = [f"{h.get('name')}: {h.get('value')}" for h in match.get("headers") or []]
        return shown, f"gRPC {grpc.get('type') or 'Exact'}", extra
    path = match.get("path") or {}
    extra = [f"{h.get('name')}: {h.get('value')}" for h in match.get("headers") or []]
    extra += [f"?{q.get('name')}={q.get('value')}" for q in match.get("queryParams") or []]
    if match.get("method"):
        extra.append(f"method {match['method']}")
    return str(path.get("value") or "/"), str(path.get("type") or "PathPrefix"), extra


def _httproute_nodes(b: _Builder, route: Mapping[str, Any], classes: dict[str, str]) -> None:
    spec = route.get("spec") or {}
    ns, name, key = _ns(route), _name(route), _key(route)
    # A GRPCRoute's nodes stay apart from an HTTPRoute's of the same name (as in _host_node).
    tag = f"GRPCRoute:{name}" if route.get("kind") == "GRPCRoute" else name
    if _redirect_only(route):
        return  # the controller's own redirect: its findings stay with the controller
    b.placed.add(key)
    gateways = {(_ns(g), _name(g)): g for g in b.of_kind("Gateway")}
    attached: list[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]] = []
    for parent in spec.get("parentRefs") or []:
        if (parent.get("kind") or "Gateway") != "Gateway":
            continue
        gateway = gateways.get((str(parent.get("namespace") or ns), str(parent.get("name"))))
        cls = str(((gateway or {}).get("spec") or {}).get("gatewayClassName") or parent["name"])
        ctrl = classes.get(cls)
        if ctrl is None:
            why = f"Gateway {parent.get('name')} not in stack"
            ctrl = classes[cls] = _missing_controller(b, cls, why)
        listeners = list(((gateway or {}).get("spec") or {}).get("listeners") or [])
        section = parent.get("sectionName")
        listener = next((x for x in listeners if x.get("name") == section), None)
        attached.append((ctrl, gateway, listener))
    findings = b.findings(key)
    for i, host in enumerate(spec.get("hostnames") or ["*"]):
        ctrl, gateway, listener = next(
            (
                a
                for a in attached
                if a[2] is None or covers(str(a[2].get("hostname") or "*"), host) or host == "*"
            ),
            attached[0] if attached else ("", None, None),
        )
        tls, tls_details = _listener_tls(b, gateway, listener)
        host_id = _host_node(b, route, i, host, ctrl, tls, tls_details, findings)
        for j, rule in enumerate(spec.get("rules") or []):
            path, path_type, extra = _match_text(rule)
            refs = list(rule.get("backendRefs") or [])
            to = ", ".join(
                f"{r.get('name')}:{r.get('port')}"
                + (f" ({r['weight']})" if r.get("weight") is not None else "")
                for r in refs
            )
            filters = [_filter_label(f) for f in rule.get("filters") or []]
            path_id = b.add(
                Node(
                    f"path:{ns}/{tag}/{i}/{j}",
                    "path",
                    path,
                    ns,
                    details=(f"{path_type} → {to or 'no backend'}", *extra, *filters),
                    objects=(key,),
                )
            )
            b.link(host_id, path_id)
            for r in refs:
                svc_ns, svc_name = str(r.get("namespace") or ns), r.get("name")
                label = str(r.get("port")) + (
                    f" ({r['weight']})" if r.get("weight") is not None else ""
                )
                svc = next(
                    (s for s in b.of_kind("Service") if _ns(s) == svc_ns and _name(s) == svc_name),
                    None,
                )
                if svc is not None:
                    b.link(path_id, _service(b, svc), label)
                else:
                    b.link(
                        path_id,
                        b.add(
                            Node(
                                f"svc:{svc_ns}/{svc_name}",
                                "service",
                                str(svc_name),
                                svc_ns,
                                details=("not in stack",),
                                missing=True,
                            )
                        ),
                        label,
                    )
