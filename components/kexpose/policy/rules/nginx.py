"""ingress-nginx hardening: snippets, annotation injection, version floor, admission webhook.

The controller turns annotations into nginx configuration text, which made it the target of a
series of injection CVEs (CVE-2021-25742, -25745, -25746, CVE-2025-1974 "IngressNightmare" and
its siblings). Sources per rule in ``policy-anchors.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from kexpose.policy.rules._kube import (
    Context,
    Finding,
    Obj,
    annotation_field,
    annotations_of,
    as_map,
    as_seq,
    as_str,
    backends,
    data_field,
    is_true,
    labels,
    spec,
)
from kexpose.policy.rules._stack import Stack

__all__ = ["admission_not_exposed", "annotation_injection", "controller_patched", "no_snippets"]

NGINX_PREFIX: Final = "nginx.ingress.kubernetes.io/"
_SNIPPET_PREFIXES: Final = (NGINX_PREFIX, "nginx.org/")
_SNIPPET_SUFFIXES: Final = ("-snippet", "-snippets")
SNIPPETS_SETTING: Final = "allow-snippet-annotations"


def _is_snippet(key: str) -> bool:
    return key.startswith(_SNIPPET_PREFIXES) and key.endswith(_SNIPPET_SUFFIXES)


def no_snippets(obj: Obj, ctx: Context) -> Iterator[Finding]:
    if obj.kind == "ConfigMap":
        value = as_map(obj.raw.get("data")).get(SNIPPETS_SETTING)
        if value is not None and is_true(value):
            yield Finding(
                obj,
                data_field(SNIPPETS_SETTING),
                f"is {value!r}: every Ingress author may then inject raw nginx configuration "
                "(CVE-2021-25742).",
                f'Set {SNIPPETS_SETTING}: "false" (the default since ingress-nginx 1.9).',
            )
        return
    for key in annotations_of(obj):
        if isinstance(key, str) and _is_snippet(key):
            yield Finding(
                obj,
                annotation_field(key),
                "is a configuration snippet, raw nginx configuration that can read the "
                "controller's secrets (CVE-2021-25742).",
                "Remove the snippet; use the dedicated annotation for the setting you need.",
            )


# Directive separators, Lua hooks, credential paths and file-serving directives: the markers of
# CVE-2021-25746 and of the 2025 injection CVEs (kubernetes#131006, #131007, #131008).
_INJECTION: Final = re.compile(
    r"[;{}\n\r]"
    r"|_by_lua"
    r"|/var/run/secrets"
    r"|/etc/(?:passwd|shadow|group|nginx|ingress-controller)"
    r"|(?:^|\s)(?:alias|root)\s"
)


def annotation_injection(obj: Obj, ctx: Context) -> Iterator[Finding]:
    notes = annotations_of(obj)
    for key in notes:
        if not isinstance(key, str) or not key.startswith(NGINX_PREFIX) or _is_snippet(key):
            continue
        value = notes[key]
        text = value if isinstance(value, str) else str(value)
        found = _INJECTION.search(text)
        if found is not None:
            yield Finding(
                obj,
                annotation_field(key),
                f"contains {found.group().strip() or found.group()!r}, which can inject "
                "directives into the controller's nginx configuration.",
                "Use a plain value: no ';', braces, newlines, Lua, alias/root or system paths.",
            )


_CONTROLLER_IMAGE: Final = re.compile(
    r"^(?:.*/)?ingress-nginx/controller(?:-chroot)?:v(\d+)\.(\d+)\.(\d+)(?:@.*)?$"
)
_FLOOR: Final = (1, 11, 0)


def _version(text: str) -> tuple[int, int, int]:
    major, minor, patch = text.split(".")
    return int(major), int(minor), int(patch)


def _first_fixed(releases: Iterable[str]) -> str:
    """The oldest configured fixed release: where a line without one should go."""
    oldest = min((_version(r) for r in releases), default=_FLOOR)
    return ".".join(map(str, oldest))


def _containers(obj: Obj) -> Iterator[tuple[str, object]]:
    pod = as_map(as_map(spec(obj).get("template")).get("spec"))
    for group in ("initContainers", "containers"):
        for i, container in enumerate(as_seq(pod.get(group))):
            yield f"spec.template.spec.{group}[{i}].image", as_map(container).get("image")


def controller_patched(stack: Stack, ctx: Context) -> Iterator[Finding]:
    fixed = ctx.config.nginx_fixed_versions
    for obj in stack.workloads:
        for field, image in _containers(obj):
            match = _CONTROLLER_IMAGE.match(image) if isinstance(image, str) else None
            if match is None:
                continue  # not the controller, or a tag without a version we can judge
            version = (int(match[1]), int(match[2]), int(match[3]))
            line = f"{version[0]}.{version[1]}"
            floor = _version(fixed[line]) if line in fixed else _FLOOR
            if version < _FLOOR or version < floor:
                needed = fixed.get(line) or _first_fixed(fixed.values())
                yield Finding(
                    obj,
                    field,
                    f"runs ingress-nginx controller v{'.'.join(map(str, version))}, older than "
                    f"the fixed release {needed} (CVE-2025-1974 and related).",
                    f"Upgrade the controller image to v{needed} or later.",
                )


def _is_admission_service(obj: Obj, stack: Stack) -> bool:
    if obj.key in stack.webhook_services:
        return True
    return obj.name.endswith("-admission") and (
        labels(obj.raw).get("app.kubernetes.io/name") == "ingress-nginx"
    )


def admission_not_exposed(stack: Stack, ctx: Context) -> Iterator[Finding]:
    admission = {s.key for s in stack.services.values() if _is_admission_service(s, stack)}
    fix = "Keep the admission webhook Service ClusterIP-only and never route an Ingress to it."
    for key in sorted(admission):
        svc = stack.services[key]
        kind = as_str(spec(svc).get("type")) or "ClusterIP"
        if kind != "ClusterIP":
            yield Finding(
                svc,
                "spec.type",
                f"is {kind}: the ingress-nginx admission webhook must only be reachable from "
                "the API server (CVE-2025-1974).",
                fix,
            )
        if as_seq(spec(svc).get("externalIPs")):
            yield Finding(
                svc,
                "spec.externalIPs",
                "exposes the ingress-nginx admission webhook on external IPs (CVE-2025-1974).",
                fix,
            )
    if not admission:
        return
    for ingress in stack.ingresses:
        for backend in backends(ingress):
            if (ingress.namespace, backend.service) in admission:
                yield Finding(
                    ingress,
                    backend.service_field,
                    f"routes to {backend.service!r}, the ingress-nginx admission webhook "
                    "Service (CVE-2025-1974).",
                    fix,
                )
