"""From Ingresses and their Services to a kexpose stack: routes, TLS, and what was lost.

The whole-input decisions live here: which Ingresses are imported (``--ingress-class``; canary
Ingresses are left to their main one), which hosts ingress-nginx matched as regex (use-regex on
one Ingress applies to every path of its host), which hosts have a certificate (it decides the
HTTPS redirect of every Ingress on the host), and each Ingress's paths and default backend.
Annotations are read by :mod:`kexpose.importer.annotations`, TLS by
:mod:`kexpose.importer.tls`, and the apps the routes land in are made by
:mod:`kexpose.importer.apps`. Every annotation, field and choice leaves a report line:
converted, approximated (and how), not convertible (why, what to do), refused (snippets) or
skipped.

Pure: source objects in, a validated :class:`StackSpec` and the raw stack config out.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Final, Literal

from kexpose.defaults import INGRESS_CLASS
from kexpose.environment import Environment
from kexpose.errors import ConfigError, InputError
from kexpose.importer.access import ACCESS_KEYS, read_access
from kexpose.importer.annotations import (
    INGRESS_DOC,
    REGEX_CHARS,
    PlainHttp,
    flag,
    is_regex,
    read_annotations,
    redirects,
)
from kexpose.importer.apps import AppDraft, Apps, IngressDraft
from kexpose.importer.canary import Canary, read_canary
from kexpose.importer.catalogue import NGINX_PREFIX, doc_url
from kexpose.importer.cors import CORS_KEYS, read_cors
from kexpose.importer.findings import Findings, Item
from kexpose.importer.routing import GATEWAY_KEYS, Routing
from kexpose.importer.source import Source, SourceIngress
from kexpose.importer.timeouts import TIMEOUT_KEYS, read_timeouts
from kexpose.importer.tls import tls_of
from kexpose.model import StackSpec
from kexpose.profile import PROFILES
from kexpose.validation import parse_stack

__all__ = ["Api", "AppDraft", "Conversion", "convert"]

Api = Literal["ingress", "gateway"]
_STACK = "Stack"
#: Annotations whose conversion needs ``api: gateway`` (without the nginx prefix).
ROUTE_KEYS: Final = GATEWAY_KEYS | TIMEOUT_KEYS | CORS_KEYS


@dataclass(frozen=True, slots=True)
class Conversion:
    environment: Environment
    controller: Mapping[str, Any]
    apps: tuple[AppDraft, ...]
    items: tuple[Item, ...]
    spec: StackSpec
    """The stack as ``kexpose preview`` would read it (validated, profile applied)."""
    api_reason: str = ""
    """Why the stack's controller has the API it has (a comment in the stack file)."""

    def raw(self) -> dict[str, Any]:
        """The stack config's ``kexpose:`` keys (without the prefix)."""
        return {
            "environment": self.environment,
            "controller": dict(self.controller),
            "apps": [a.raw() for a in self.apps],
        }


def _needs_gateway(ing: SourceIngress, key: str) -> bool:
    """Whether the annotation ``key`` of ``ing`` does something only api gateway can say
    (cors-* only with CORS on; a timeout ingress-nginx ignores needs nothing)."""
    value = ing.annotations.get(f"{NGINX_PREFIX}{key}", "").strip()
    if key in CORS_KEYS:
        return flag(ing.annotations.get(f"{NGINX_PREFIX}enable-cors", "")) is True
    if key in TIMEOUT_KEYS:
        return value.isdigit() and int(value) > 0
    return key in GATEWAY_KEYS


class _Converter:
    def __init__(
        self,
        source: Source,
        *,
        environment: Environment,
        ingress_class: str | None,
        api: Api | None,
        gateway_refused: str | None = None,
    ) -> None:
        self.source = source
        self.wanted_api = api
        self.gateway_refused = gateway_refused
        """Why the stack is not valid with ``api: gateway`` (a first attempt found), if so."""
        self.api: Api = api or "ingress"
        self.api_reason = ""
        self.canaries: dict[tuple[str, str | None, str], Canary] = {}
        self.environment = environment
        self.ingress_class = ingress_class
        self.findings = Findings()
        self.tls_hosts: set[str] = set()
        self.apps = Apps(source, self.findings)
        self.regex_hosts: dict[str, str] = {}

    # --- the whole input -----------------------------------------------------------------------

    def run(self) -> None:
        chosen: list[SourceIngress] = []
        canaries: list[SourceIngress] = []
        for ing in self.source.ingresses:
            cls = ing.class_name
            if self.ingress_class is not None and cls is not None and cls != self.ingress_class:
                self.findings.add(
                    ing,
                    "class",
                    "skipped",
                    f"class {cls!r} is not {self.ingress_class!r} (--ingress-class)",
                )
                continue
            if flag(ing.annotations.get(f"{NGINX_PREFIX}canary", "")):
                canaries.append(ing)
                continue
            chosen.append(ing)
        self.choose_api(chosen, canaries)
        for ing in canaries:
            self.canary(ing)
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
                self.apps.assign(converted)
        for c in self.canaries.values():
            if not c.used:
                self.findings.add(
                    c.ing,
                    f"spec.rules (host {c.host or '*'}, path {c.path})",
                    "not-convertible",
                    "no imported main Ingress has this host and path; ingress-nginx ignores a "
                    "canary without one",
                    todo="import the main Ingress too, or drop the canary",
                    doc=doc_url("canary"),
                )

    def choose_api(self, chosen: list[SourceIngress], canaries: list[SourceIngress]) -> None:
        """``--to stack`` picks ``api: gateway`` when an annotation needs it: edge auth and
        source ranges convert with either API, so nothing is lost by it."""
        needs = sorted(
            {
                f"{k.removeprefix(NGINX_PREFIX)} ({ing.namespace}/{ing.name})"
                for ing in chosen
                for k in ing.annotations
                if _needs_gateway(ing, k.removeprefix(NGINX_PREFIX))
            }
            | {f"canary ({ing.namespace}/{ing.name})" for ing in canaries}
        )
        if self.wanted_api is not None:
            self.api_reason = f"api {self.wanted_api}: asked for (--to)"
        elif needs and self.gateway_refused is not None:
            self.api_reason = (
                "CHOICE: api ingress although "
                + ", ".join(needs[:6])
                + (" and more" if len(needs) > 6 else "")
                + " need api gateway: with api gateway the stack is not valid for "
                + f"{self.environment} ({self.gateway_refused}); import with --to gateway to "
                "see all of it"
            )
        elif needs:
            self.api = "gateway"
            self.api_reason = (
                "CHOICE: api gateway (HTTPRoutes): needed by "
                + ", ".join(needs[:6])
                + (" and more" if len(needs) > 6 else "")
            )
        else:
            self.api_reason = "api ingress: no annotation needs the Gateway API"
        self.findings.items.append(
            Item(
                _STACK,
                "kexpose:controller.api",
                "converted" if not (needs and self.api == "ingress") else "approximated",
                self.api_reason,
            )
        )

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
                    self.findings.add(
                        ing,
                        "ssl-redirect",
                        "approximated",
                        f"the Ingresses of host {host} disagree on the HTTPS redirect ({said}); "
                        "kexpose-proxy decides it per host, so one choice applies to all",
                        todo="align ssl-redirect on the Ingresses of the host",
                        doc=doc_url("server-side-https-enforcement-through-redirect"),
                    )

    def canary(self, ing: SourceIngress) -> None:
        found = read_canary(ing, self.findings, api=self.api)
        if not found:
            self.findings.add(
                ing,
                "Ingress",
                "not-convertible",
                "a canary Ingress only adds a weighted or header-matched share to its main "
                "Ingress, which keeps all traffic"
                + ("; that needs controller api: gateway" if self.api != "gateway" else ""),
                todo="import with --to gateway, or shift the traffic fully before importing",
                doc=doc_url("canary"),
            )
        for c in found:
            self.canaries.setdefault((ing.namespace, c.host, c.path), c)

    def ingress(self, ing: SourceIngress) -> IngressDraft | None:
        host_tls = bool(ing.tls) or any(h in self.tls_hosts for h in ing.hosts())
        plain_http: PlainHttp = "served"
        if self.api == "gateway":
            enforced = PROFILES[self.environment].http_redirect_only
            plain_http = "enforced" if enforced else "http-listener"
        reading = read_annotations(
            ing,
            self.findings,
            host_tls=host_tls,
            handled=ACCESS_KEYS | ROUTE_KEYS,
            plain_http=plain_http,
        )
        access = read_access(ing, self.findings)
        routing = Routing(ing, self.findings, self.api)
        routing.read()
        timeouts = read_timeouts(ing, self.findings, api=self.api)
        cors = read_cors(
            ing,
            self.findings,
            api=self.api,
            authenticated=access.auth is not None,
            restricted=access.ranges is not None,
        )
        annotations = reading.annotations
        why = reading.withheld or access.withheld or routing.withheld
        gateway = self.api == "gateway"
        if why is not None:
            self.findings.add(
                ing,
                "Ingress",
                "not-convertible",
                f"withheld whole: {why}",
                todo="keep it on its current controller until kexpose can express it",
            )
            return None
        if ing.api_version != "networking.k8s.io/v1":
            self.findings.add(
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
                path_type: str = p.path_type
                if p.backend is None:
                    self.findings.add(
                        ing,
                        p.field,
                        "not-convertible",
                        "a resource backend: the model routes to Services only",
                        todo="serve it from a Service",
                        doc=f"{INGRESS_DOC}#resource-backend",
                    )
                    continue
                if own_regex and path_type != "Exact" and routing.rewrite_target is None:
                    if REGEX_CHARS.search(p.path):
                        self.findings.add(
                            ing,
                            f"{p.field}.path",
                            "not-convertible",
                            f"not convertible in this version: {p.path!r} is a regular "
                            "expression (PCRE); kexpose import does not translate them",
                            todo="list the literal prefixes it stands for as Prefix paths",
                            doc=doc_url("use-regex"),
                        )
                        continue
                    path_type = "ImplementationSpecific"
                    if not gateway:  # else the path's plan says what it becomes
                        self.findings.add(
                            ing,
                            f"{p.field}.path",
                            "approximated",
                            f"{p.path!r} is literal: ingress-nginx's '~* ^{p.path}' becomes an "
                            "ImplementationSpecific path (the same character prefix), matched "
                            "case-sensitively",
                            doc=doc_url("use-regex"),
                        )
                elif host_regex and path_type != "Exact" and not own_regex:
                    owner = self.regex_hosts[rule.host or ""]
                    self.findings.add(
                        ing,
                        f"{p.field}.path",
                        "approximated",
                        f"Ingress {owner} uses regex paths on host {rule.host}, so ingress-nginx "
                        f"matched {p.path!r} as a case-insensitive character prefix; kexpose "
                        f"keeps pathType {p.path_type}",
                        doc=doc_url("use-regex"),
                    )
                path = p.path
                extra: dict[str, Any] = {}
                if gateway:
                    plan = routing.plan(p.field, p.path, path_type, own_regex)
                    if plan is None:
                        continue
                    path, path_type, extra = plan.path, plan.path_type, plan.extra
                    # Copies: the stack file is YAML, where a shared object would be an alias.
                    if cors is not None:
                        extra["filters"] = {**extra.get("filters", {}), "cors": deepcopy(cors)}
                    if timeouts is not None:
                        extra["timeouts"] = dict(timeouts)
                ref = self.apps.backend(ing, p.backend)
                if ref is None:
                    continue
                targets.append((ing.namespace, p.backend.service))
                entry = {"path": path, "pathType": path_type, **ref, **extra}
                host_rule = rules.setdefault(rule.host, {"paths": []})
                if any(
                    q["path"] == path and q["pathType"] == path_type and "headers" not in q
                    for q in host_rule["paths"]
                ):
                    self.findings.add(
                        ing,
                        p.field,
                        "approximated",
                        "repeats an earlier path of the same host, which wins (as in nginx); "
                        "left out",
                    )
                    continue
                canary = self.canaries.get((ing.namespace, rule.host, p.path))
                canary_ref = (
                    self.apps.backend(canary.ing, canary.backend)
                    if canary is not None and gateway
                    else None
                )
                if canary is not None and canary_ref is not None:
                    canary.used = True
                    targets.append((ing.namespace, canary.backend.service))
                    host_rule["paths"].extend(canary.paths(entry, canary_ref))
                    self.findings.add(
                        ing,
                        p.field,
                        "converted",
                        f"shares its traffic with canary Ingress {canary.ing.namespace}/"
                        f"{canary.ing.name} (see its rows)",
                        doc=doc_url("canary"),
                    )
                else:
                    host_rule["paths"].append(entry)
        for r in rules.values():
            first = next((q for q in r["paths"] if "headers" not in q), None)
            has_root = any(q["path"] == "/" and q["pathType"] == "Exact" for q in r["paths"])
            if first is None or has_root:
                continue
            backend = {k: first[k] for k in ("port", "service") if k in first}
            r["paths"][:0] = [{**q, **backend} for q in routing.root_paths()]
        default: dict[str, Any] | None = None
        if ing.default_backend is not None:
            ref = self.apps.backend(ing, ing.default_backend)
            if ref is not None:
                targets.insert(0, (ing.namespace, ing.default_backend.service))
                if gateway:
                    self.gateway_default(ing, rules, ref)
                else:
                    default = ref
                    self.findings.add(
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
            self.findings.add(
                ing,
                "Ingress",
                "not-convertible",
                "nothing of it could be converted (see the rows above)",
            )
            return None
        tls, comment = tls_of(
            ing, [r.get("host") for r in out_rules], self.findings, gateway=gateway
        )
        draft = IngressDraft(ing, out_rules, default, annotations, tls, comment, targets)
        draft.auth, draft.ranges = access.auth, access.ranges
        return draft

    def gateway_default(
        self, ing: SourceIngress, rules: dict[str | None, dict[str, Any]], ref: dict[str, Any]
    ) -> None:
        """An HTTPRoute has no default backend: a host-less '/' Prefix path takes its place
        (the least specific match of the Gateway, Gateway API HTTPRoute precedence)."""
        assert ing.default_backend is not None
        catch_all = rules.setdefault(None, {"paths": []})
        if any(q["path"] == "/" and q["pathType"] == "Prefix" for q in catch_all["paths"]):
            self.findings.add(
                ing,
                ing.default_backend.field,
                "approximated",
                "a host-less '/' path exists already and takes every unmatched request; the "
                "default backend would never be reached; left out",
                doc=f"{INGRESS_DOC}#default-backend",
            )
            return
        catch_all["paths"].append({"path": "/", "pathType": "Prefix", **ref})
        self.findings.add(
            ing,
            ing.default_backend.field,
            "approximated",
            "an HTTPRoute has no default backend: it becomes a host-less '/' Prefix path, the "
            "least specific route of the Gateway, so requests for hosts of other Gateway "
            "routes that match none of their paths get 404 instead of reaching it",
            doc=f"{INGRESS_DOC}#default-backend",
        )


def convert(
    source: Source,
    *,
    environment: Environment,
    ingress_class: str | None = None,
    target_class: str = INGRESS_CLASS,
    stack_file: str = "<imported stack>",
    api: Api | None = None,
) -> Conversion:
    """The stack that exposes what ``source`` exposed, and the report of what changed.

    ``ingress_class``: import only Ingresses of this class (and those with none).
    ``api``: the controller's API (``--to gateway``/``--to ingress``); None chooses it
    (``api: gateway`` when an annotation needs it).
    Raises :class:`InputError` when the result is not a valid stack (the message names the
    Ingresses it came from).
    """
    conv = _Converter(source, environment=environment, ingress_class=ingress_class, api=api)
    conv.run()
    try:
        return _conversion(conv, target_class=target_class, stack_file=stack_file)
    except InputError as exc:
        if api is not None or conv.api != "gateway":
            raise
        # Chosen, not asked for: a stack that the Gateway API makes invalid (prod's Gateway
        # serves plain HTTP only as a redirect, so every host needs TLS) is imported with api
        # ingress, where the same gaps are policy verdicts the report lists.
        first = str(exc).split("\n  - ", 1)[-1].split("\n", 1)[0]
    conv = _Converter(
        source,
        environment=environment,
        ingress_class=ingress_class,
        api=None,
        gateway_refused=first,
    )
    conv.run()
    return _conversion(conv, target_class=target_class, stack_file=stack_file)


def _conversion(conv: _Converter, *, target_class: str, stack_file: str) -> Conversion:
    apps = tuple(sorted(conv.apps.apps.values(), key=lambda a: (a.namespace, a.name)))
    controller: dict[str, Any] = {"kind": "kexpose", "className": target_class}
    if conv.api == "gateway":
        controller["api"] = "gateway"
    raw = {
        "environment": conv.environment,
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
    return Conversion(
        conv.environment, controller, apps, tuple(conv.findings.items), spec, conv.api_reason
    )
