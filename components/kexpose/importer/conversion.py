"""From Ingresses and their Services to a kexpose stack: apps, routes, TLS, and what was lost.

One app per Service an Ingress routes to (``selector:`` apps: the workloads exist already), in
the Service's namespace. The stack gives each app at most one Ingress, named after the app, so
each Ingress is owned by the first Service it routes to that owns none yet; when all of them do,
it is merged into the first one's Ingress if nothing conflicts (same TLS, same converted
annotations, no repeated host and path), and otherwise reported as not convertible.

Every annotation, field and choice leaves a report line: converted, approximated (and how),
not convertible (why, what to do), refused (snippets) or skipped. Annotations are read by
:mod:`kexpose.importer.annotations`, TLS by :mod:`kexpose.importer.tls`.

Pure: source objects in, a validated :class:`StackSpec` and the raw stack config out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kexpose.defaults import INGRESS_CLASS
from kexpose.environment import Environment
from kexpose.errors import ConfigError, InputError
from kexpose.importer.annotations import (
    INGRESS_DOC,
    REGEX_CHARS,
    flag,
    is_regex,
    read_annotations,
    redirects,
)
from kexpose.importer.catalogue import NEEDS_MODEL, NGINX_PREFIX, doc_url
from kexpose.importer.findings import Findings, Item
from kexpose.importer.source import BackendRef, Source, SourceIngress, SourceService
from kexpose.importer.tls import tls_of
from kexpose.model import StackSpec
from kexpose.validation import parse_stack

__all__ = ["AppDraft", "Conversion", "convert"]


@dataclass(slots=True)
class AppDraft:
    """One app of the stack as it will be written, with the comments that explain it."""

    namespace: str
    name: str
    selector: dict[str, str]
    service: dict[str, Any]
    ingress: dict[str, Any] | None = None
    tls: dict[str, Any] = field(default_factory=lambda: {"mode": "none"})
    comments: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def raw(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "selector": dict(self.selector),
            "service": self.service,
        }
        if self.ingress is not None:
            out["ingress"] = self.ingress
            out["tls"] = self.tls
        return out


@dataclass(frozen=True, slots=True)
class Conversion:
    environment: Environment
    controller: Mapping[str, Any]
    apps: tuple[AppDraft, ...]
    items: tuple[Item, ...]
    spec: StackSpec
    """The stack as ``kexpose preview`` would read it (validated, profile applied)."""

    def raw(self) -> dict[str, Any]:
        """The stack config's ``kexpose:`` keys (without the prefix)."""
        return {
            "environment": self.environment,
            "controller": dict(self.controller),
            "apps": [a.raw() for a in self.apps],
        }


@dataclass(slots=True)
class _Converted:
    """What one Ingress becomes before it is given to an app."""

    source: SourceIngress
    rules: list[dict[str, Any]]
    default_backend: dict[str, Any] | None
    annotations: dict[str, str]
    tls: dict[str, Any]
    tls_comment: str | None
    targets: list[tuple[str, str]]
    """Every Service it routes to, ``(namespace, name)``, in order."""


class _Converter:
    def __init__(
        self, source: Source, *, environment: Environment, ingress_class: str | None
    ) -> None:
        self.source = source
        self.environment = environment
        self.ingress_class = ingress_class
        self.findings = Findings()
        self.item = self.findings.add
        self.tls_hosts: set[str] = set()
        self.apps: dict[tuple[str, str], AppDraft] = {}
        self.regex_hosts: dict[str, str] = {}

    # --- the whole input -----------------------------------------------------------------------

    def run(self) -> None:
        chosen: list[SourceIngress] = []
        for ing in self.source.ingresses:
            cls = ing.class_name
            if self.ingress_class is not None and cls is not None and cls != self.ingress_class:
                self.item(
                    ing,
                    "class",
                    "skipped",
                    f"class {cls!r} is not {self.ingress_class!r} (--ingress-class)",
                )
                continue
            if flag(ing.annotations.get(f"{NGINX_PREFIX}canary", "")):
                self.canary(ing)
                continue
            chosen.append(ing)
        # use-regex (or rewrite-target) on one Ingress makes ingress-nginx match *every* path of
        # that host as a case-insensitive regex ("Use Regex" in the annotations guide).
        for ing in chosen:
            if is_regex(ing):
                for host in ing.hosts():
                    self.regex_hosts.setdefault(host, f"{ing.namespace}/{ing.name}")
        # A certificate configured for a host (by any Ingress) is what makes ingress-nginx
        # redirect the plain HTTP of every path on it (lua redirect_to_https).
        for ing in chosen:
            for entry in ing.tls:
                self.tls_hosts.update(entry.hosts)
        self.redirect_disagreements(chosen)
        for ing in chosen:
            converted = self.ingress(ing)
            if converted is not None:
                self.assign(converted)

    def redirect_disagreements(self, chosen: list[SourceIngress]) -> None:
        """ingress-nginx decides the HTTPS redirect per Ingress (location); kexpose-proxy per
        host. Where the Ingresses of a host disagree, one choice will apply to all of them."""
        by_host: dict[str, dict[str, bool]] = {}
        for ing in chosen:
            for host in ing.hosts():
                label = f"{ing.namespace}/{ing.name}"
                by_host.setdefault(host, {})[label] = redirects(
                    ing, host_tls=host in self.tls_hosts
                )
        for host, choices in by_host.items():
            if len(set(choices.values())) < 2:
                continue
            said = ", ".join(
                f"{label} {'redirects' if on else 'does not'}" for label, on in choices.items()
            )
            for ing in chosen:
                if f"{ing.namespace}/{ing.name}" in choices:
                    self.item(
                        ing,
                        "ssl-redirect",
                        "approximated",
                        f"the Ingresses of host {host} disagree on the HTTPS redirect ({said}); "
                        "kexpose-proxy decides it per host, so one choice applies to all",
                        todo="align ssl-redirect on the Ingresses of the host",
                        doc=doc_url("server-side-https-enforcement-through-redirect"),
                    )

    def canary(self, ing: SourceIngress) -> None:
        for key in sorted(ing.annotations):
            if key.startswith(f"{NGINX_PREFIX}canary"):
                entry = NEEDS_MODEL[key.removeprefix(NGINX_PREFIX)]
                self.findings.entry(ing, key, entry)
        self.item(
            ing,
            "Ingress",
            "not-convertible",
            "not convertible in this version: a canary Ingress only adds a weighted or "
            "header-matched share to its main Ingress, which keeps all traffic; needs "
            + str(NEEDS_MODEL["canary"].feature),
            todo=NEEDS_MODEL["canary"].todo,
            doc=doc_url("canary"),
        )

    def ingress(self, ing: SourceIngress) -> _Converted | None:
        host_tls = bool(ing.tls) or any(h in self.tls_hosts for h in ing.hosts())
        reading = read_annotations(ing, self.findings, host_tls=host_tls)
        annotations, why = reading.annotations, reading.withheld
        if why is not None:
            self.item(
                ing,
                "Ingress",
                "not-convertible",
                f"withheld whole: {why}",
                todo="keep it on its current controller until kexpose can express it",
            )
            return None
        if ing.api_version != "networking.k8s.io/v1":
            self.item(
                ing,
                "apiVersion",
                "converted",
                f"{ing.api_version} read as networking.k8s.io/v1 (serviceName/servicePort, "
                "spec.backend and the pathType default mapped)",
                doc="https://kubernetes.io/docs/reference/using-api/deprecation-guide/#ingress-v122",
            )
        own_regex = is_regex(ing)
        targets: list[tuple[str, str]] = []
        rules: dict[str | None, dict[str, Any]] = {}
        for rule in ing.rules:
            host_regex = rule.host is not None and rule.host in self.regex_hosts
            for p in rule.paths:
                path_type = p.path_type
                if p.backend is None:
                    self.item(
                        ing,
                        p.field,
                        "not-convertible",
                        "a resource backend: the model routes to Services only",
                        todo="serve it from a Service",
                        doc=f"{INGRESS_DOC}#resource-backend",
                    )
                    continue
                if own_regex and path_type != "Exact":
                    if REGEX_CHARS.search(p.path):
                        self.item(
                            ing,
                            f"{p.field}.path",
                            "not-convertible",
                            f"not convertible in this version: {p.path!r} is a regular "
                            "expression; needs RegularExpression path matches (issue 9)",
                            todo="list the literal prefixes it stands for as Prefix paths",
                            doc=doc_url("use-regex"),
                        )
                        continue
                    path_type = "ImplementationSpecific"
                    self.item(
                        ing,
                        f"{p.field}.path",
                        "approximated",
                        f"{p.path!r} is literal: ingress-nginx's '~* ^{p.path}' becomes an "
                        "ImplementationSpecific path (the same character prefix), matched "
                        "case-sensitively",
                        doc=doc_url("use-regex"),
                    )
                elif host_regex and path_type != "Exact":
                    owner = self.regex_hosts[rule.host or ""]
                    self.item(
                        ing,
                        f"{p.field}.path",
                        "approximated",
                        f"Ingress {owner} uses regex paths on host {rule.host}, so ingress-nginx "
                        f"matched {p.path!r} as a case-insensitive character prefix; kexpose "
                        f"keeps pathType {p.path_type}",
                        doc=doc_url("use-regex"),
                    )
                ref = self.backend(ing, p.backend)
                if ref is None:
                    continue
                targets.append((ing.namespace, p.backend.service))
                entry = {"path": p.path, "pathType": path_type, **ref}
                host_rule = rules.setdefault(rule.host, {"paths": []})
                if any(
                    q["path"] == p.path and q["pathType"] == path_type for q in host_rule["paths"]
                ):
                    self.item(
                        ing,
                        p.field,
                        "approximated",
                        "repeats an earlier path of the same host, which wins (as in nginx); "
                        "left out",
                    )
                    continue
                host_rule["paths"].append(entry)
        default: dict[str, Any] | None = None
        if ing.default_backend is not None:
            ref = self.backend(ing, ing.default_backend)
            if ref is not None:
                default = ref
                targets.insert(0, (ing.namespace, ing.default_backend.service))
                self.item(
                    ing,
                    ing.default_backend.field,
                    "converted",
                    "the Ingress's default backend: requests no rule matches",
                    doc=f"{INGRESS_DOC}#default-backend",
                )
        out_rules = [
            ({"host": h} if h is not None else {}) | {"paths": r["paths"]}
            for h, r in rules.items()
            if r["paths"]
        ]
        if not out_rules and default is None:
            self.item(
                ing,
                "Ingress",
                "not-convertible",
                "nothing of it could be converted (see the rows above)",
            )
            return None
        tls, comment = tls_of(ing, [r.get("host") for r in out_rules], self.findings)
        return _Converted(ing, out_rules, default, annotations, tls, comment, targets)

    def backend(self, ing: SourceIngress, ref: BackendRef) -> dict[str, Any] | None:
        """The model backend for ``ref`` (port, and service when not the owner's), making the
        Service's app on the way; None when the Service cannot be an app."""
        key = (ing.namespace, ref.service)
        svc = self.source.services.get(key)
        if svc is not None and svc.port_for(ref.port) is None:
            self.item(
                ing,
                f"{ref.field}",
                "not-convertible",
                f"port {ref.port!r} is not a port of {svc.ref} (ingress-nginx answers 503); "
                "left out",
                todo="fix the port or drop the path",
            )
            return None
        app = self.app_for(ing, ref, svc)
        if app is None:
            return None
        return {"port": ref.port, "service": ref.service}

    def app_for(
        self, ing: SourceIngress, ref: BackendRef, svc: SourceService | None
    ) -> AppDraft | None:
        key = (ing.namespace, ref.service)
        app = self.apps.get(key)
        if app is not None:
            if svc is None:
                self.guess_port(app, ref.port)
            return app
        if svc is not None:
            if svc.selector is None or svc.type == "ExternalName":
                self.item(
                    ing,
                    ref.field,
                    "not-convertible",
                    f"{svc.ref} has no selector (type {svc.type}); a kexpose app selects its pods",
                    todo="route to a Service that selects pods",
                )
                return None
            ports = []
            for p in svc.ports:
                port: dict[str, Any] = {"name": p.name or f"port-{p.port}", "port": p.port}
                if p.target_port is not None:
                    port["targetPort"] = p.target_port
                if p.protocol != "TCP":
                    port["protocol"] = p.protocol
                if p.node_port is not None and svc.type in ("NodePort", "LoadBalancer"):
                    port["nodePort"] = p.node_port
                ports.append(port)
            service: dict[str, Any] = {"ports": ports}
            if svc.type != "ClusterIP":
                service = {"type": svc.type, **service}
            app = AppDraft(ing.namespace, ref.service, dict(svc.selector), service)
            app.comments.append(f"Service {svc.namespace}/{svc.name} from {svc.origin}")
            if any(p.name is None for p in svc.ports):
                app.comments.append(
                    "CHOICE: unnamed Service ports are named port-<number> (the model names "
                    "every port; Ingresses refer to them by number as before)"
                )
        else:
            app = AppDraft(
                ing.namespace,
                ref.service,
                {"app.kubernetes.io/name": ref.service},
                {"ports": []},
            )
            app.comments.append(
                f"CHOICE: Service {ing.namespace}/{ref.service} was not in the input: its "
                "selector and ports are guesses; check them against the cluster"
            )
            self.findings.items.append(
                Item(
                    f"Service/{ing.namespace}/{ref.service}",
                    "selector",
                    "approximated",
                    "not in the input: selector app.kubernetes.io/name="
                    f"{ref.service} and the ports the Ingresses name are guesses",
                    todo="add the Service's manifest to the input, or check the stack file",
                    origin=ing.origin,
                )
            )
            self.guess_port(app, ref.port)
        self.apps[key] = app
        return app

    @staticmethod
    def guess_port(app: AppDraft, ref: int | str) -> None:
        ports: list[dict[str, Any]] = app.service["ports"]
        if any(p["port"] == ref or p["name"] == ref for p in ports):
            return
        if isinstance(ref, int):
            ports.append({"name": f"port-{ref}", "port": ref})
            return
        taken = {p["port"] for p in ports}
        number = next(n for n in (80, *range(8080, 8180)) if n not in taken)
        ports.append({"name": ref, "port": number})
        app.comments.append(f"CHOICE: port {ref!r} was given number {number}, a guess")

    # --- apps ----------------------------------------------------------------------------------

    def assign(self, c: _Converted) -> None:
        ing = c.source
        candidates = list(dict.fromkeys(c.targets))
        owner_key = next((k for k in candidates if self.apps[k].ingress is None), None)
        if owner_key is not None:
            app = self.apps[owner_key]
            app.ingress = self.ingress_raw(app, c.rules, c.default_backend, c.annotations)
            app.tls = c.tls
            if c.tls_comment:
                app.comments.append(c.tls_comment)
            app.sources.append(f"{ing.namespace}/{ing.name}")
            self.item(
                ing,
                "metadata.name",
                "converted",
                f"becomes the Ingress of app {app.namespace}/{app.name} (named {app.name})",
            )
            return
        app = self.apps[candidates[0]]
        assert app.ingress is not None
        conflict = self.merge_conflict(app, c)
        if conflict is not None:
            self.item(
                ing,
                "Ingress",
                "not-convertible",
                f"the model gives each app one Ingress, and app {app.name} holds Ingress "
                f"{', '.join(app.sources)} already; merging fails: {conflict}",
                todo="align the two Ingresses (TLS, annotations, paths) or route to another "
                "Service",
            )
            return
        merged = self.ingress_raw(app, c.rules, c.default_backend, c.annotations)
        by_host = {r.get("host"): r for r in app.ingress["rules"]}
        for r in merged.get("rules", []):
            if r.get("host") in by_host:
                by_host[r.get("host")]["paths"].extend(r["paths"])
            else:
                app.ingress["rules"].append(r)
                by_host[r.get("host")] = r
        if "defaultBackend" in merged:
            app.ingress["defaultBackend"] = merged["defaultBackend"]
        app.sources.append(f"{ing.namespace}/{ing.name}")
        self.item(
            ing,
            "metadata.name",
            "approximated",
            f"merged into the Ingress of app {app.namespace}/{app.name} (named {app.name}), "
            f"with Ingress {app.sources[0]}",
        )

    @staticmethod
    def merge_conflict(app: AppDraft, c: _Converted) -> str | None:
        assert app.ingress is not None
        if app.tls != c.tls:
            return f"TLS differs ({app.tls.get('mode')} vs {c.tls.get('mode')})"
        if dict(app.ingress.get("annotations", {})) != c.annotations:
            return "their converted annotations differ"
        if c.default_backend is not None and "defaultBackend" in app.ingress:
            return "both have a default backend"
        have = {
            (r.get("host"), p["pathType"], p["path"])
            for r in app.ingress["rules"]
            for p in r["paths"]
        }
        for r in c.rules:
            for p in r["paths"]:
                if (r.get("host"), p["pathType"], p["path"]) in have:
                    return f"both route {r.get('host') or '*'}{p['path']}"
        return None

    @staticmethod
    def ingress_raw(
        app: AppDraft,
        rules: list[dict[str, Any]],
        default: dict[str, Any] | None,
        annotations: dict[str, str],
    ) -> dict[str, Any]:
        def own(ref: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in ref.items() if not (k == "service" and v == app.name)}

        out: dict[str, Any] = {}
        if rules:
            out["rules"] = [
                {
                    **({"host": r["host"]} if "host" in r else {}),
                    "paths": [own(p) for p in r["paths"]],
                }
                for r in rules
            ]
        else:
            out["rules"] = []
        if default is not None:
            out["defaultBackend"] = own(default)
        if annotations:
            out["annotations"] = dict(annotations)
        return out


def convert(
    source: Source,
    *,
    environment: Environment,
    ingress_class: str | None = None,
    target_class: str = INGRESS_CLASS,
    stack_file: str = "<imported stack>",
) -> Conversion:
    """The stack that exposes what ``source`` exposed, and the report of what changed.

    ``ingress_class``: import only Ingresses of this class (and those with none).
    Raises :class:`InputError` when the result is not a valid stack (the message names the
    Ingresses it came from).
    """
    conv = _Converter(source, environment=environment, ingress_class=ingress_class)
    conv.run()
    apps = tuple(sorted(conv.apps.values(), key=lambda a: (a.namespace, a.name)))
    controller = {"kind": "kexpose", "className": target_class}
    raw = {
        "environment": environment,
        "controller": controller,
        "apps": [a.raw() for a in apps],
    }
    try:
        spec = parse_stack(raw, stack_file=stack_file)
    except ConfigError as exc:
        sources = {f"{a.namespace}/{a.name}": ", ".join(a.sources) or "-" for a in apps}
        raise InputError(
            f"the imported stack is not valid: {exc}\n(apps come from the Ingresses: "
            + "; ".join(f"{k} <- {v}" for k, v in sorted(sources.items()))
            + ")"
        ) from None
    return Conversion(environment, controller, apps, tuple(conv.findings.items), spec)
