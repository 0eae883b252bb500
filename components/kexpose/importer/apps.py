"""The apps of an imported stack: one per Service an Ingress routes to, each with at most one
Ingress.

A Service of the input gives the app its selector, type and ports (unnamed ports are named
``port-<number>``: the model names every port, and Ingresses keep referring to them by number).
A Service missing from the input is guessed (selector ``app.kubernetes.io/name``, the ports the
Ingresses name) and said so. A Service without a selector cannot be an app.

Each Ingress is owned by the first Service it routes to that owns none yet; when all of them do,
it is merged into the first one's Ingress if nothing conflicts (same TLS, same converted
annotations, no repeated host and path), and otherwise reported as not convertible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kexpose.importer.findings import Findings, Item
from kexpose.importer.source import BackendRef, Source, SourceIngress, SourceService

__all__ = ["AppDraft", "Apps", "IngressDraft"]


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
    auth: dict[str, Any] | None = None
    allow_source_ranges: list[str] | None = None

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
        if self.auth is not None:
            out["auth"] = self.auth
        if self.allow_source_ranges is not None:
            out["allowSourceRanges"] = self.allow_source_ranges
        return out


@dataclass(slots=True)
class IngressDraft:
    """What one Ingress becomes before it is given to an app."""

    source: SourceIngress
    rules: list[dict[str, Any]]
    default_backend: dict[str, Any] | None
    annotations: dict[str, str]
    tls: dict[str, Any]
    tls_comment: str | None
    targets: list[tuple[str, str]]
    """Every Service it routes to, ``(namespace, name)``, in order."""
    auth: dict[str, Any] | None = None
    """The app's ``auth:`` the Ingress's protection becomes (it covers all its routes)."""
    ranges: list[str] | None = None


class Apps:
    """The apps made so far, by ``(namespace, Service name)``."""

    def __init__(self, source: Source, findings: Findings) -> None:
        self.source = source
        self.findings = findings
        self.apps: dict[tuple[str, str], AppDraft] = {}

    def backend(self, ing: SourceIngress, ref: BackendRef) -> dict[str, Any] | None:
        """The model backend for ``ref`` (port, and service when not the owner's), making the
        Service's app on the way; None when the Service cannot be an app."""
        key = (ing.namespace, ref.service)
        svc = self.source.services.get(key)
        if svc is not None and (svc.selector is None or svc.type == "ExternalName"):
            self.findings.add(
                ing,
                ref.field,
                "not-convertible",
                f"{svc.ref} has no selector (type {svc.type}); a kexpose app selects its pods",
                todo="route to a Service that selects pods",
            )
            return None
        if svc is not None and svc.port_for(ref.port) is None:
            self.findings.add(
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
            assert svc.selector is not None  # checked by backend()
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

    def assign(self, c: IngressDraft) -> None:
        ing = c.source
        candidates = list(dict.fromkeys(c.targets))
        owner_key = next((k for k in candidates if self.apps[k].ingress is None), None)
        if owner_key is not None:
            app = self.apps[owner_key]
            app.ingress = self.ingress_raw(app, c.rules, c.default_backend, c.annotations)
            app.tls = c.tls
            app.auth, app.allow_source_ranges = c.auth, c.ranges
            if c.tls_comment:
                app.comments.append(c.tls_comment)
            app.sources.append(f"{ing.namespace}/{ing.name}")
            self.findings.add(
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
            self.findings.add(
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
        self.findings.add(
            ing,
            "metadata.name",
            "approximated",
            f"merged into the Ingress of app {app.namespace}/{app.name} (named {app.name}), "
            f"with Ingress {app.sources[0]}",
        )

    @staticmethod
    def merge_conflict(app: AppDraft, c: IngressDraft) -> str | None:
        assert app.ingress is not None
        if app.tls != c.tls:
            return f"TLS differs ({app.tls.get('mode')} vs {c.tls.get('mode')})"
        if dict(app.ingress.get("annotations", {})) != c.annotations:
            return "their converted annotations differ"
        if (app.auth, app.allow_source_ranges) != (c.auth, c.ranges):
            return "their auth or source ranges differ (the model protects a whole app)"
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
