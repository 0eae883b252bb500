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
from dataclasses import dataclass
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
from kexpose.importer.apps import AppDraft, Apps, IngressDraft
from kexpose.importer.catalogue import NEEDS_MODEL, NGINX_PREFIX, doc_url
from kexpose.importer.findings import Findings, Item
from kexpose.importer.source import Source, SourceIngress
from kexpose.importer.tls import tls_of
from kexpose.model import StackSpec
from kexpose.validation import parse_stack

__all__ = ["AppDraft", "Conversion", "convert"]


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


class _Converter:
    def __init__(
        self, source: Source, *, environment: Environment, ingress_class: str | None
    ) -> None:
        self.source = source
        self.environment = environment
        self.ingress_class = ingress_class
        self.findings = Findings()
        self.tls_hosts: set[str] = set()
        self.apps = Apps(source, self.findings)
        self.regex_hosts: dict[str, str] = {}

    # --- the whole input -----------------------------------------------------------------------

    def run(self) -> None:
        chosen: list[SourceIngress] = []
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
                self.apps.assign(converted)

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
        for key in sorted(ing.annotations):
            if key.startswith(f"{NGINX_PREFIX}canary"):
                entry = NEEDS_MODEL[key.removeprefix(NGINX_PREFIX)]
                self.findings.entry(ing, key, entry)
        self.findings.add(
            ing,
            "Ingress",
            "not-convertible",
            "not convertible in this version: a canary Ingress only adds a weighted or "
            "header-matched share to its main Ingress, which keeps all traffic; needs "
            + str(NEEDS_MODEL["canary"].feature),
            todo=NEEDS_MODEL["canary"].todo,
            doc=doc_url("canary"),
        )

    def ingress(self, ing: SourceIngress) -> IngressDraft | None:
        host_tls = bool(ing.tls) or any(h in self.tls_hosts for h in ing.hosts())
        reading = read_annotations(ing, self.findings, host_tls=host_tls)
        annotations, why = reading.annotations, reading.withheld
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
                path_type = p.path_type
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
                if own_regex and path_type != "Exact":
                    if REGEX_CHARS.search(p.path):
                        self.findings.add(
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
                    self.findings.add(
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
                    self.findings.add(
                        ing,
                        f"{p.field}.path",
                        "approximated",
                        f"Ingress {owner} uses regex paths on host {rule.host}, so ingress-nginx "
                        f"matched {p.path!r} as a case-insensitive character prefix; kexpose "
                        f"keeps pathType {p.path_type}",
                        doc=doc_url("use-regex"),
                    )
                ref = self.apps.backend(ing, p.backend)
                if ref is None:
                    continue
                targets.append((ing.namespace, p.backend.service))
                entry = {"path": p.path, "pathType": path_type, **ref}
                host_rule = rules.setdefault(rule.host, {"paths": []})
                if any(
                    q["path"] == p.path and q["pathType"] == path_type for q in host_rule["paths"]
                ):
                    self.findings.add(
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
            ref = self.apps.backend(ing, ing.default_backend)
            if ref is not None:
                default = ref
                targets.insert(0, (ing.namespace, ing.default_backend.service))
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
        tls, comment = tls_of(ing, [r.get("host") for r in out_rules], self.findings)
        return IngressDraft(ing, out_rules, default, annotations, tls, comment, targets)


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
    apps = tuple(sorted(conv.apps.apps.values(), key=lambda a: (a.namespace, a.name)))
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
