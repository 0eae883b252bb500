"""Canary Ingresses as the model's weighted backends and header-matched paths (api: gateway).

ingress-nginx ("Canary" in the annotations guide) merges an Ingress with ``canary: "true"``
into the main Ingress of the same host and path: a request goes to the canary Service when
``canary-by-header`` is ``always`` (``never``: never), or equals ``canary-by-header-value``, or
matches ``canary-by-header-pattern``; otherwise ``canary-weight`` of ``canary-weight-total``
(default 100) requests go to it. Headers win over cookies, cookies over the weight.

In the model: the main path gets ``weight`` and ``backends`` (HTTPBackendRef weights), and a
path of the same host and path with a header match goes to the canary (``never``: to the main
Service), since a more specific match wins in HTTPRoute precedence (Gateway API spec,
HTTPRouteRule: "Largest number of header matches").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kexpose.importer.catalogue import NGINX_PREFIX, doc_url
from kexpose.importer.findings import Findings
from kexpose.importer.source import BackendRef, SourceIngress

__all__ = ["Canary", "read_canary"]

_DOC = doc_url("canary")


@dataclass(slots=True)
class Canary:
    """One canary Ingress path, waiting for the main path of its host and path."""

    ing: SourceIngress
    host: str | None
    path: str
    backend: BackendRef
    weight: int
    total: int
    header: str | None = None
    value: str | None = None
    pattern: str | None = None
    used: bool = False
    notes: list[str] = field(default_factory=list)

    def paths(self, main: dict[str, Any], canary_ref: dict[str, Any]) -> list[dict[str, Any]]:
        """The main path with its weighted canary, and the header-matched paths before it."""
        out: list[dict[str, Any]] = []
        # A canary takes the main Ingress's other annotations ("Canary" in the annotations
        # guide: the canary's own are ignored), so its paths keep the main path's filters and
        # timeouts.
        keep = ("path", "pathType", "filters", "timeouts")
        base: dict[str, Any] = {k: main[k] for k in keep if k in main}
        if self.header is not None:
            if self.value is not None:
                out.append({**base, "headers": [{"name": self.header, "value": self.value}]})
                out[-1].update(canary_ref)
            elif self.pattern is not None:
                match = {"name": self.header, "value": self.pattern, "type": "RegularExpression"}
                out.append({**base, "headers": [match], **canary_ref})
            else:
                out.append({**base, "headers": [{"name": self.header, "value": "always"}]})
                out[-1].update(canary_ref)
                never = {k: v for k, v in main.items() if k not in ("weight", "backends")}
                out.append({**never, "headers": [{"name": self.header, "value": "never"}]})
        weighted = dict(main)
        if self.weight > 0:
            weighted["weight"] = self.total - self.weight
            weighted["backends"] = [{**canary_ref, "weight": self.weight}]
        out.append(weighted)
        return out


def _int(value: str | None, default: int) -> int | None:
    if value is None:
        return default
    v = value.strip()
    return int(v) if v.isdigit() else None


def read_canary(ing: SourceIngress, findings: Findings, *, api: str) -> list[Canary]:
    """The canary paths of ``ing`` (annotation ``canary: "true"``), reporting its annotations."""
    a = {k.removeprefix(NGINX_PREFIX): v for k, v in ing.annotations.items()}

    def add(key: str, verdict: str, detail: str, todo: str = "") -> None:
        findings.add(ing, f"{NGINX_PREFIX}{key}", verdict, detail, todo=todo, doc=_DOC)  # type: ignore[arg-type]

    keys = sorted(k for k in a if k.startswith("canary"))
    if api != "gateway":
        for key in keys:
            add(
                key,
                "not-convertible",
                "weighted and header-matched backends render with controller api: gateway "
                "only, and this stack uses api: ingress (see the stack's row); the main "
                "Ingress keeps all traffic",
                "import with --to gateway, or shift the traffic fully before importing",
            )
        return []
    weight = _int(a.get("canary-weight"), 0)
    total = _int(a.get("canary-weight-total"), 100)
    if weight is None or total is None or total == 0 or weight > total:
        for key in ("canary-weight", "canary-weight-total"):
            if key in a:
                add(key, "not-convertible", f"{a[key]!r} is not a weight within the total")
        weight, total = 0, 100
    header = a.get("canary-by-header", "").strip() or None
    value = a.get("canary-by-header-value", "").strip() or None
    pattern = a.get("canary-by-header-pattern", "").strip() or None
    if header is None:
        value = pattern = None
    elif value is not None:
        pattern = None  # the value wins over the pattern (annotations guide)
    out: list[Canary] = []
    for rule in ing.rules:
        for p in rule.paths:
            if p.backend is not None:
                out.append(Canary(ing, rule.host, p.path, p.backend, weight, total))
                out[-1].header, out[-1].value, out[-1].pattern = header, value, pattern
    for key in keys:
        if key == "canary":
            add(key, "converted", "merged into the main Ingress of the same host and path")
        elif key in ("canary-weight", "canary-weight-total"):
            add(
                key,
                "converted",
                f"the main path keeps weight {total - weight} and the canary Service gets "
                f"{weight} (HTTPBackendRef weights)",
            )
        elif key == "canary-by-header":
            what = (
                f"equal to {value!r}"
                if value
                else f"matching {pattern!r}"
                if pattern
                else "'always' (and 'never' to the main Service)"
            )
            add(key, "converted", f"a path with the header match {header}: {what}")
        elif key == "canary-by-header-value":
            add(key, "converted", "the header match's exact value")
        elif key == "canary-by-header-pattern":
            if value is not None:
                add(key, "converted", "ignored by ingress-nginx when a value is given too")
            else:
                add(
                    key,
                    "approximated",
                    "a RegularExpression header match: kexpose-proxy's expressions are Python's "
                    "re, nginx's were PCRE",
                    "check the pattern is plain (no PCRE-only syntax)",
                )
        elif key == "canary-by-cookie":
            add(
                key,
                "not-convertible",
                "the Gateway API has no cookie match; clients with the cookie get the "
                "weighted split",
                "use canary-by-header instead",
            )
        else:
            add(key, "not-convertible", "not in kexpose's canary mapping")
    return out
