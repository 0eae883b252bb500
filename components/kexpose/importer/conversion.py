"""From Ingresses and their Services to a kexpose stack: apps, routes, TLS, and what was lost.

One app per Service an Ingress routes to (``selector:`` apps: the workloads exist already), in
the Service's namespace. The stack gives each app at most one Ingress, named after the app, so
each Ingress is owned by the first Service it routes to that owns none yet; when all of them do,
it is merged into the first one's Ingress if nothing conflicts (same TLS, same converted
annotations, no repeated host and path), and otherwise reported as not convertible.

Every annotation, field and choice leaves an :class:`Item` in the report: converted,
approximated (and how), not convertible (why, what to do), refused (snippets) or skipped.
Annotation semantics come from :mod:`kexpose.importer.catalogue`.

Pure: source objects in, a validated :class:`StackSpec` and the raw stack config out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import ValidationError

from kexpose.defaults import INGRESS_CLASS
from kexpose.environment import Environment
from kexpose.errors import ConfigError, InputError
from kexpose.hosts import covers
from kexpose.importer.catalogue import (
    CERT_MANAGER_ANNOTATIONS,
    CONVERTED,
    NEEDS_MODEL,
    NGINX_PREFIX,
    Entry,
    Verdict,
    doc_url,
    is_snippet,
    lookup,
)
from kexpose.importer.source import (
    LEGACY_CLASS_ANNOTATION,
    BackendRef,
    Origin,
    Source,
    SourceIngress,
    SourceService,
)
from kexpose.model import StackSpec
from kexpose.proxy.routes import SSL_REDIRECT_ANNOTATION
from kexpose.validation import parse_stack

__all__ = ["AppDraft", "Conversion", "Item", "ItemVerdict", "convert"]

ItemVerdict = Verdict | Literal["skipped"]

_INGRESS_DOC: Final = "https://kubernetes.io/docs/concepts/services-networking/ingress/"
_TLS_DOC: Final = "https://kubernetes.github.io/ingress-nginx/user-guide/tls/"
#: Characters that make a path a regular expression rather than a literal (PCRE metacharacters).
_REGEX_CHARS: Final = re.compile(r"[.^$*+?()\[\]{}|\\]")
#: Annotations that protect or make a route work at all: an Ingress with one the model cannot
#: express is withheld whole, since importing the rest would open a protected route to everyone
#: or send traffic a backend cannot read.
_WITHHOLD: Final = {
    "auth-type": "its basic auth would be dropped, opening the routes to everyone",
    "auth-url": "its forward auth would be dropped, opening the routes to everyone",
    "auth-tls-secret": "its client-certificate check would be dropped",
    "whitelist-source-range": "its source-range allow list would be dropped, opening the "
    "routes to everyone",
    "denylist-source-range": "its source-range deny list would be dropped",
    "ssl-passthrough": "kexpose-proxy would terminate TLS the backend expects to terminate",
}
#: Where the user guide documents each snippet annotation.
_SNIPPET_ANCHORS: Final = {
    "configuration-snippet": "configuration-snippet",
    "server-snippet": "server-snippet",
    "stream-snippet": "stream-snippet",
    "auth-snippet": "external-authentication",
    "modsecurity-snippet": "modsecurity",
}
_TRUE: Final = ("true", "1", "yes", "on")
_FALSE: Final = ("false", "0", "no", "off")


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the migration report."""

    subject: str
    """``Ingress/ns/name`` or ``Service/ns/name``."""
    topic: str
    """The annotation key or field it is about."""
    verdict: ItemVerdict
    detail: str
    todo: str = ""
    doc: str = ""
    origin: Origin | None = None

    def as_dict(self) -> dict[str, str | int | None]:
        return {
            "subject": self.subject,
            "topic": self.topic,
            "verdict": self.verdict,
            "detail": self.detail,
            "todo": self.todo,
            "doc": self.doc,
            "file": self.origin.file if self.origin else None,
            "line": self.origin.line if self.origin else None,
        }


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


def _bool(value: str) -> bool | None:
    v = value.strip().lower()
    return True if v in _TRUE else False if v in _FALSE else None


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
        self.items: list[Item] = []
        self.apps: dict[tuple[str, str], AppDraft] = {}
        self.regex_hosts: dict[str, str] = {}

    # --- report --------------------------------------------------------------------------------

    def item(
        self,
        ing: SourceIngress | SourceService,
        topic: str,
        verdict: ItemVerdict,
        detail: str,
        *,
        todo: str = "",
        doc: str = "",
    ) -> None:
        self.items.append(Item(ing.ref, topic, verdict, detail, todo, doc, ing.origin))

    def entry_item(self, ing: SourceIngress, key: str, entry: Entry) -> None:
        detail = entry.note
        if entry.feature is not None:
            detail = f"not convertible in this version: {entry.note}; needs {entry.feature}"
        self.item(ing, key, entry.verdict, detail, todo=entry.todo, doc=entry.doc)

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
            if _bool(ing.annotations.get(f"{NGINX_PREFIX}canary", "")):
                self.canary(ing)
                continue
            chosen.append(ing)
        # use-regex (or rewrite-target) on one Ingress makes ingress-nginx match *every* path of
        # that host as a case-insensitive regex ("Use Regex" in the annotations guide).
        for ing in chosen:
            if self.regex_of(ing):
                for host in ing.hosts():
                    self.regex_hosts.setdefault(host, f"{ing.namespace}/{ing.name}")
        for ing in chosen:
            converted = self.ingress(ing)
            if converted is not None:
                self.assign(converted)

    def canary(self, ing: SourceIngress) -> None:
        for key in sorted(ing.annotations):
            if key.startswith(f"{NGINX_PREFIX}canary"):
                entry = NEEDS_MODEL[key.removeprefix(NGINX_PREFIX)]
                self.entry_item(ing, key, entry)
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

    @staticmethod
    def regex_of(ing: SourceIngress) -> bool:
        a = ing.annotations
        return bool(_bool(a.get(f"{NGINX_PREFIX}use-regex", ""))) or (
            f"{NGINX_PREFIX}rewrite-target" in a
        )

    # --- one Ingress ---------------------------------------------------------------------------

    def annotations(self, ing: SourceIngress) -> tuple[dict[str, str], bool]:
        """The model annotations of ``ing``, and whether HTTPS is enforced by redirect."""
        a = ing.annotations
        out: dict[str, str] = {}
        has_tls = bool(ing.tls)
        # A value that is not a boolean leaves ingress-nginx's default in place.
        ssl_redirect = _bool(a.get(f"{NGINX_PREFIX}ssl-redirect", "true")) is not False
        force = bool(_bool(a.get(f"{NGINX_PREFIX}force-ssl-redirect", "false")))
        # lua_ingress.lua, redirect_to_https: force-ssl-redirect, or ssl-redirect on a
        # location with TLS.
        redirect = force or (ssl_redirect and has_tls)
        for key in sorted(a):
            value = a[key]
            if key == LEGACY_CLASS_ANNOTATION:
                self.item(
                    ing,
                    key,
                    "converted",
                    f"class {value!r} becomes spec.ingressClassName of the stack's controller "
                    "(the annotation is deprecated)",
                    doc=f"{_INGRESS_DOC}#deprecated-annotation",
                )
            elif key in CERT_MANAGER_ANNOTATIONS:
                self.item(
                    ing,
                    key,
                    "converted",
                    f"tls.mode cert-manager with issuer {value!r} "
                    f"({CERT_MANAGER_ANNOTATIONS[key]})",
                    doc="https://cert-manager.io/docs/usage/ingress/",
                )
            elif key.startswith("kubectl.kubernetes.io/"):
                self.item(ing, key, "skipped", "kubectl's own bookkeeping; not part of the stack")
            elif not key.startswith(NGINX_PREFIX):
                if key.startswith(("nginx.org/", "ingress.kubernetes.io/")):
                    self.item(
                        ing,
                        key,
                        "not-convertible",
                        "an annotation of another controller, which kexpose does not read",
                        todo="check what it did and drop it",
                    )
                else:
                    out[key] = value
                    self.item(ing, key, "converted", "kept unchanged on the Ingress")
            else:
                self.nginx(ing, key, value, redirect=redirect, has_tls=has_tls, out=out)
        if has_tls and redirect and not _bool(a.get(f"{NGINX_PREFIX}preserve-trailing-slash", "")):
            self.item(
                ing,
                "ssl-redirect",
                "approximated",
                "plain HTTP gets a 308 to https://host/uri as from ingress-nginx, but "
                "ingress-nginx drops a trailing '/' of the URI (unless preserve-trailing-slash "
                "is 'true') and kexpose keeps it",
                doc=doc_url("server-side-https-enforcement-through-redirect"),
            )
        if has_tls and not redirect:
            out[SSL_REDIRECT_ANNOTATION] = "false"
        return out, redirect

    def nginx(
        self,
        ing: SourceIngress,
        key: str,
        value: str,
        *,
        redirect: bool,
        has_tls: bool,
        out: dict[str, str],
    ) -> None:
        short = key.removeprefix(NGINX_PREFIX)
        doc = doc_url(CONVERTED[short].anchor) if short in CONVERTED else ""
        if is_snippet(short):
            self.item(
                ing,
                key,
                "refused",
                "snippets paste raw nginx configuration into the controller: the "
                "IngressNightmare attack surface (CVE-2025-1974); never converted",
                todo="express what the snippet did with kexpose features, or drop it",
                doc=doc_url(_SNIPPET_ANCHORS.get(short, "configuration-snippet")),
            )
            return
        flag = _bool(value)
        booleans = ("ssl-redirect", "force-ssl-redirect", "preserve-trailing-slash", "use-regex")
        if short in booleans and flag is None:
            self.item(
                ing,
                key,
                "not-convertible",
                f"{value!r} is not 'true' or 'false' (ingress-nginx ignores it)",
                todo="fix or drop the annotation",
                doc=doc,
            )
            return
        if short == "ssl-redirect":
            if flag:
                self.item(ing, key, "converted", "kexpose's default for hosts with TLS", doc=doc)
            elif redirect:
                self.item(
                    ing, key, "converted", "force-ssl-redirect wins; HTTPS is enforced", doc=doc
                )
            else:
                self.item(
                    ing,
                    key,
                    "converted",
                    f"plain HTTP is served: {SSL_REDIRECT_ANNOTATION}: 'false'"
                    if has_tls
                    else "no TLS, so nothing is redirected either way",
                    doc=doc,
                )
        elif short == "force-ssl-redirect":
            if flag and not has_tls:
                self.entry_item(ing, key, NEEDS_MODEL["force-ssl-redirect-without-tls"])
            else:
                self.item(
                    ing,
                    key,
                    "converted",
                    "HTTPS enforced by the default 308 for hosts with TLS"
                    if flag
                    else "ingress-nginx's default",
                    doc=doc,
                )
        elif short == "preserve-trailing-slash":
            self.item(
                ing,
                key,
                "converted",
                "kexpose's redirect keeps the URI as sent"
                if flag
                else "ingress-nginx's default (see the ssl-redirect row)",
                doc=doc,
            )
        elif short == "use-regex":
            self.item(
                ing,
                key,
                "converted" if not flag else "approximated",
                "each path is listed in the paths rows" if flag else "ingress-nginx's default",
                doc=doc,
            )
        elif short == "backend-protocol":
            self.backend_protocol(ing, key, value)
        elif short == "auth-type" and value.strip().lower() == "digest":
            self.item(
                ing,
                key,
                "not-convertible",
                "digest auth is in no kexpose plan (RFC 7616 is rarely used; basic over TLS, "
                "forward auth or JWT replace it)",
                todo="move the users to basic auth or forward auth",
                doc=doc_url("authentication"),
            )
        else:
            entry = lookup(short)
            if entry is None:
                self.item(
                    ing,
                    key,
                    "not-convertible",
                    "not in kexpose's annotation catalogue",
                    todo="check what it did and how to get it without nginx",
                )
            else:
                self.entry_item(ing, key, entry)

    def backend_protocol(self, ing: SourceIngress, key: str, value: str) -> None:
        proto = value.strip().upper()
        doc = doc_url("backend-protocol")
        if proto in ("HTTP", "AUTO_HTTP"):
            self.item(ing, key, "converted", CONVERTED["backend-protocol"].note, doc=doc)
        elif proto in ("GRPC", "GRPCS"):
            self.item(
                ing,
                key,
                "not-convertible",
                f"not convertible in this version: {proto} needs HTTP/2 to the backend; needs "
                "gRPC backends in kexpose-proxy and a backend protocol on the Service port "
                "(issue 11)",
                todo="keep this app on its current controller until issue 11 lands",
                doc=doc,
            )
        elif proto == "HTTPS":
            self.item(
                ing,
                key,
                "not-convertible",
                "kexpose-proxy speaks plain HTTP to backends (no backend TLS)",
                todo="serve plain HTTP inside the cluster, or keep this app where it is",
                doc=doc,
            )
        else:
            self.item(
                ing,
                key,
                "not-convertible",
                f"{value!r}: kexpose-proxy speaks HTTP/1.1 to backends only",
                todo="keep this app where it is",
                doc=doc,
            )

    def withheld(self, ing: SourceIngress) -> str | None:
        """Why ``ing`` must not be imported without what the model cannot express, if so."""
        for key, why in _WITHHOLD.items():
            if f"{NGINX_PREFIX}{key}" in ing.annotations:
                return f"{key}: {why}"
        proto = ing.annotations.get(f"{NGINX_PREFIX}backend-protocol", "HTTP").strip().upper()
        if proto not in ("HTTP", "AUTO_HTTP"):
            return f"backend-protocol {proto}: the backend would get plain HTTP/1.1 it cannot read"
        return None

    def ingress(self, ing: SourceIngress) -> _Converted | None:
        annotations, _ = self.annotations(ing)
        why = self.withheld(ing)
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
        own_regex = self.regex_of(ing)
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
                        doc=f"{_INGRESS_DOC}#resource-backend",
                    )
                    continue
                if own_regex and path_type != "Exact":
                    if _REGEX_CHARS.search(p.path):
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
                    doc=f"{_INGRESS_DOC}#default-backend",
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
        tls, comment = self.tls(ing, [r.get("host") for r in out_rules])
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
            self.items.append(
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

    def tls(
        self, ing: SourceIngress, hosts: Iterable[str | None]
    ) -> tuple[dict[str, Any], str | None]:
        rule_hosts = [h for h in hosts if h is not None]
        issuer = next(
            ((k, v) for k, v in ing.annotations.items() if k in CERT_MANAGER_ANNOTATIONS), None
        )
        if not ing.tls:
            if issuer is not None:
                self.item(
                    ing,
                    issuer[0],
                    "not-convertible",
                    "cert-manager's ingress-shim acts only on spec.tls entries, and there are "
                    "none; the app gets no TLS",
                    doc="https://cert-manager.io/docs/usage/ingress/",
                )
            return {"mode": "none"}, (
                "CHOICE: the Ingress has no TLS, so tls.mode is none (the environment's default "
                "would add it)"
                if rule_hosts
                else None
            )
        first = ing.tls[0]
        tls_hosts: list[str] = []
        for entry in ing.tls:
            if entry.secret_name != first.secret_name:
                self.item(
                    ing,
                    entry.field,
                    "not-convertible",
                    f"a second certificate Secret ({entry.secret_name}); the model gives an app "
                    f"one, {first.secret_name}",
                    todo="split the Ingress per certificate, or use one certificate for all hosts",
                    doc=_TLS_DOC,
                )
                continue
            for h in entry.hosts:
                if any(covers(h, rh) for rh in rule_hosts):
                    if h not in tls_hosts:
                        tls_hosts.append(h)
                else:
                    self.item(
                        ing,
                        f"{entry.field}.hosts",
                        "approximated",
                        f"TLS host {h!r} has no rule; left out",
                    )
        if not tls_hosts and first.hosts:
            return {"mode": "none"}, None
        out: dict[str, Any] = {}
        if sorted(tls_hosts) != sorted(rule_hosts) and tls_hosts:
            out["hosts"] = tls_hosts
        if first.secret_name is not None:
            out["secretName"] = first.secret_name
        if issuer is not None:
            kind = CERT_MANAGER_ANNOTATIONS[issuer[0]]
            out = {"mode": "cert-manager", "issuer": issuer[1], "issuerKind": kind, **out}
            return out, None
        if first.secret_name is None:
            self.item(
                ing,
                first.field,
                "approximated",
                "TLS without a secretName: ingress-nginx served its default certificate; "
                "kexpose makes a self-signed one",
                todo="set tls.mode cert-manager or secret for a trusted certificate",
                doc=_TLS_DOC,
            )
            return {"mode": "self-signed", **out}, (
                "CHOICE: TLS without a Secret: tls.mode self-signed"
            )
        stem = f"{ing.namespace}-{first.secret_name}"
        out = {
            "mode": "secret",
            **out,
            "certificateConfig": f"{stem}-crt",
            "privateKeyConfig": f"{stem}-key",
        }
        self.item(
            ing,
            first.field,
            "converted",
            f"tls.mode secret, Secret {first.secret_name}: its PEM goes into secret stack config "
            f"kexpose:{stem}-crt and kexpose:{stem}-key (never read by kexpose import)",
            doc=_TLS_DOC,
        )
        comment = (
            f"CHOICE: tls.mode secret keeps Secret {ing.namespace}/{first.secret_name}; copy its "
            f"PEM into secret config: kubectl -n {ing.namespace} get secret "
            f"{first.secret_name} -o jsonpath='{{.data.tls\\.crt}}' | base64 -d | pulumi "
            f"config set --secret kexpose:{stem}-crt (and tls.key into kexpose:{stem}-key)"
        )
        return out, comment

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
    except ValidationError as exc:  # pragma: no cover - parse_stack wraps these
        raise InputError(str(exc)) from None
    return Conversion(environment, controller, apps, tuple(conv.items), spec)
