"""Validation of rendered Gateway API objects against the CRDs' OpenAPI v3 schemas (and of
Traefik's ``traefik.io`` objects against its CRDs, ``kexpose.traefik``, the same way).

The schemas are the committed standard-channel v1.6.3 CRDs (``kexpose.gatewayapi``), read with
jsonschema (Draft 7 covers the OpenAPI subset CRDs use: types, enums, patterns, lengths, item
counts, required). Strict like the API server's strict field validation: an unknown field is an
error (a structural schema would prune it silently). Not evaluated: the CEL rules
(``x-kubernetes-validations``), which only an API server runs; the e2e tests cover those.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from jsonschema import Draft7Validator

from kexpose import traefik
from kexpose.gatewayapi import schema_of

__all__ = ["GATEWAY_GROUP", "gateway_errors", "is_gateway_object"]

GATEWAY_GROUP = "gateway.networking.k8s.io"


def is_gateway_object(manifest: Mapping[str, Any]) -> bool:
    return str(manifest.get("apiVersion", "")).startswith(GATEWAY_GROUP + "/")


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
        if node.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["type"] = ["integer", "string"]
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@cache
def _validator(api_version: str, kind: str) -> Draft7Validator | None:
    lookup = traefik.schema_of if api_version.startswith(traefik.GROUP + "/") else schema_of
    schema = lookup(api_version, kind)
    if schema is None:
        return None
    strict = _strict(schema)
    # status is the controller's to write; what kexpose renders never carries one.
    strict["properties"].pop("status", None)
    return Draft7Validator(strict)


def gateway_errors(manifest: Mapping[str, Any]) -> list[str]:
    """Every schema error of one object, as ``path: message``; [] when it is valid."""
    validator = _validator(str(manifest["apiVersion"]), str(manifest["kind"]))
    if validator is None:
        return [f"{manifest['apiVersion']} {manifest['kind']} is not served by the CRDs"]
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(dict(manifest))
    ]
