"""Ingress rules that judge one Ingress at a time: TLS, hosts, class, API version, paths.

Field semantics from the Ingress API reference
(https://kubernetes.io/docs/reference/kubernetes-api/service-resources/ingress-v1/); sources and
anchor comparisons per rule in ``policy-anchors.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from kexpose.hosts import covers
from kexpose.policy.rules._kube import (
    CLASS_ANNOTATION,
    Context,
    Finding,
    Obj,
    annotation_field,
    annotations_of,
    as_map,
    as_seq,
    as_str,
    is_false,
    is_true,
    spec,
)

__all__ = [
    "class_allowed",
    "host_required",
    "no_default_backend",
    "no_deprecated_api",
    "no_deprecated_class_annotation",
    "no_plain_http",
    "no_wildcard_host",
    "path_safe",
    "require_tls",
    "tls_covers_hosts",
]

DEPRECATED_APIS: Final = frozenset({"extensions/v1beta1", "networking.k8s.io/v1beta1"})


def _rules(obj: Obj) -> Iterator[tuple[int, object]]:
    """(index, host) of each rule; host is whatever is written, None when absent."""
    for i, rule in enumerate(as_seq(spec(obj).get("rules"))):
        yield i, as_map(rule).get("host")


def require_tls(obj: Obj, ctx: Context) -> Iterator[Finding]:
    tls = as_seq(spec(obj).get("tls"))
    if not tls:
        yield Finding(
            obj,
            "spec.tls",
            "is missing or empty, so the Ingress serves plain HTTP only.",
            "Add a spec.tls entry with the hosts and the secretName of a TLS Secret.",
        )
        return
    for i, entry in enumerate(tls):
        item = as_map(entry)
        if as_str(item.get("secretName")):
            continue
        # allow_default_certificate: the controller's default certificate may serve listed hosts;
        # an entry without hosts (`tls: [{}]`, accepted by Gatekeeper's sample) still fails.
        if ctx.config.allow_default_certificate and as_seq(item.get("hosts")):
            continue
        yield Finding(
            obj,
            f"spec.tls[{i}].secretName",
            "is missing, so the controller falls back to its default (usually self-signed) "
            "certificate.",
            "Name the TLS Secret holding the certificate for these hosts in secretName.",
        )


def tls_covers_hosts(obj: Obj, ctx: Context) -> Iterator[Finding]:
    patterns = [
        h
        for entry in as_seq(spec(obj).get("tls"))
        for h in as_seq(as_map(entry).get("hosts"))
        if isinstance(h, str)
    ]
    for i, host in _rules(obj):
        if not isinstance(host, str) or not host:
            continue  # ing-host-required reports host-less rules
        if not any(covers(p, host) for p in patterns):
            listed = ", ".join(patterns) or "none"
            yield Finding(
                obj,
                f"spec.rules[{i}].host",
                f"{host!r} is not covered by any spec.tls[].hosts entry (listed: {listed}); "
                "it would be served without its certificate.",
                f"Add {host!r} (or a one-label wildcard over it) to the hosts of a tls entry.",
            )


def host_required(obj: Obj, ctx: Context) -> Iterator[Finding]:
    for i, host in _rules(obj):
        if host is None or host == "":
            yield Finding(
                obj,
                f"spec.rules[{i}].host",
                "is missing or empty, so the rule matches requests for every host name.",
                "Set the host this rule serves.",
            )


def no_wildcard_host(obj: Obj, ctx: Context) -> Iterator[Finding]:
    for i, host in _rules(obj):
        if isinstance(host, str) and "*" in host:
            yield Finding(
                obj,
                f"spec.rules[{i}].host",
                f"{host!r} is a wildcard and would route every matching host name to this app.",
                "List each host name explicitly (wildcards stay allowed in spec.tls[].hosts).",
            )


def no_default_backend(obj: Obj, ctx: Context) -> Iterator[Finding]:
    s = spec(obj)
    for key in ("defaultBackend", "backend"):  # v1, then the v1beta1 name
        if s.get(key) is not None:
            yield Finding(
                obj,
                f"spec.{key}",
                "is set, so this Ingress catches every request that no rule matches, on any host.",
                f"Remove spec.{key} and route by host and path.",
            )


def class_allowed(obj: Obj, ctx: Context) -> Iterator[Finding]:
    allowed = ctx.config.allowed_ingress_classes
    listed = ", ".join(allowed) or "none"
    field_value = as_str(spec(obj).get("ingressClassName")) or None
    note_value = as_str(annotations_of(obj).get(CLASS_ANNOTATION)) or None
    if field_value and note_value and field_value != note_value:
        # The API server refuses to create such an Ingress (kubernetes#115447).
        yield Finding(
            obj,
            annotation_field(CLASS_ANNOTATION),
            f"says {note_value!r} but spec.ingressClassName says {field_value!r}.",
            "Remove the annotation and keep spec.ingressClassName.",
        )
    effective = field_value or note_value
    if effective is None:
        yield Finding(
            obj,
            "spec.ingressClassName",
            f"is not set (nor the class annotation), so whichever controller is the cluster "
            f"default serves it; allowed classes: {listed}.",
            f"Set spec.ingressClassName to one of: {listed}.",
        )
    elif effective not in allowed:
        field = "spec.ingressClassName" if field_value else annotation_field(CLASS_ANNOTATION)
        yield Finding(
            obj,
            field,
            f"class {effective!r} is not allowed (allowed_ingress_classes: {listed}).",
            f"Set spec.ingressClassName to one of: {listed}.",
        )


def no_deprecated_class_annotation(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if CLASS_ANNOTATION in annotations_of(obj):
        yield Finding(
            obj,
            annotation_field(CLASS_ANNOTATION),
            "is deprecated since Kubernetes 1.18 (the API server warns on it).",
            "Remove the annotation and set spec.ingressClassName.",
        )


def no_deprecated_api(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if obj.api_version in DEPRECATED_APIS:
        yield Finding(
            obj,
            "apiVersion",
            f"is {obj.api_version}, which Kubernetes 1.22 removed.",
            "Use networking.k8s.io/v1 (spec.defaultBackend, backend.service.name/port).",
        )


def _kexpose_false(value: object) -> bool:
    """``kexpose.dev/ssl-redirect`` as kexpose-proxy reads it (``proxy.routes._table``): the
    redirect is off for ``"false"`` in any case, and for nothing else."""
    return value is False or (isinstance(value, str) and value.lower() == "false")


# The specification names the three annotations of ingress-nginx and ingress-gce. The fourth is
# kexpose-proxy's own opt-out, the only one it reads, and what ``kexpose import`` turns an
# nginx ``ssl-redirect: "false"`` into: without it, importing an Ingress would hide the very
# downgrade the rule exists to flag ("Flag explicit opt-outs of HTTPS", policy-anchors.md).
_HTTPS_OPT_OUTS: Final = (
    ("nginx.ingress.kubernetes.io/ssl-redirect", is_false, "false"),
    ("nginx.ingress.kubernetes.io/force-ssl-redirect", is_false, "false"),
    ("kubernetes.io/ingress.allow-http", is_true, "true"),
    ("kexpose.dev/ssl-redirect", _kexpose_false, "false"),
)


def no_plain_http(obj: Obj, ctx: Context) -> Iterator[Finding]:
    notes = annotations_of(obj)
    for key, matches, meaning in _HTTPS_OPT_OUTS:
        value = notes.get(key)
        if value is not None and matches(value):
            yield Finding(
                obj,
                annotation_field(key),
                f"is {value!r} (read as {meaning}), which serves the app over plain HTTP.",
                "Remove the annotation; the controller then redirects HTTP to HTTPS.",
            )


# Whitespace, nginx directive characters, quotes and backslash: the shape of path injection
# into the generated nginx configuration (CVE-2021-25745, CVE-2026-24512).
_UNSAFE_CHARS = re.compile(r"[\s;{}\"'\\]")
_SENSITIVE_SEGMENTS: Final = (
    "/etc",
    "/root",
    "/var/run/secrets",
    "/var/run/kubernetes/serviceaccount",
)
# A segment ends at "/" or the end; regex paths (use-regex) may also end it with a group or an
# anchor, so "/etc(/|$)" is caught while "/roots-and-shoots" and "/etcetera" are not.
_SEGMENT_END: Final = frozenset("/($|?*+[")


def _sensitive(path: str) -> str | None:
    for segment in _SENSITIVE_SEGMENTS:
        if path.startswith(segment) and (
            len(path) == len(segment) or path[len(segment)] in _SEGMENT_END
        ):
            return segment
    return None


def path_safe(obj: Obj, ctx: Context) -> Iterator[Finding]:
    fix = "Use an absolute path made of plain URL segments, away from filesystem locations."
    for i, rule in enumerate(as_seq(spec(obj).get("rules"))):
        paths = as_seq(as_map(as_map(rule).get("http")).get("paths"))
        for j, entry in enumerate(paths):
            path = as_map(entry).get("path")
            if path is None or path == "":
                continue  # allowed for ImplementationSpecific; the controller uses "/"
            field = f"spec.rules[{i}].http.paths[{j}].path"
            text = str(path)
            if not text.startswith("/"):
                yield Finding(obj, field, f"{text!r} does not start with '/'.", fix)
                continue
            bad = _UNSAFE_CHARS.search(text)
            if bad is not None:
                yield Finding(
                    obj,
                    field,
                    f"{text!r} contains {bad.group()!r}, which can inject configuration into "
                    "the controller (CVE-2021-25745).",
                    fix,
                )
                continue
            segment = _sensitive(text)
            if segment is not None:
                yield Finding(
                    obj,
                    field,
                    f"{text!r} starts with the sensitive path segment {segment!r}.",
                    fix,
                )
