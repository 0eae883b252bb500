"""The committed Gateway API CRDs (``crds.json``, made by ``scripts/gen-gateway-types``)."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any, Final

__all__ = ["BUNDLE_VERSION", "CHANNEL", "crds", "schema_of"]

BUNDLE_VERSION: Final = "v1.6.3"
CHANNEL: Final = "standard"


@cache
def _data() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("crds.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    if (data["bundleVersion"], data["channel"]) != (BUNDLE_VERSION, CHANNEL):
        raise RuntimeError(f"crds.json holds {data['bundleVersion']} {data['channel']}")
    return data


def crds() -> list[dict[str, Any]]:
    """Every CustomResourceDefinition of the release's standard channel, as manifests (copies:
    callers may add labels)."""
    return copy.deepcopy(_data()["crds"])


def schema_of(api_version: str, kind: str) -> dict[str, Any] | None:
    """The ``openAPIV3Schema`` of ``kind`` in ``api_version``, or None if the release does not
    serve it."""
    group, _, version = api_version.rpartition("/")
    for crd in _data()["crds"]:
        spec = crd["spec"]
        if spec["group"] != group or spec["names"]["kind"] != kind:
            continue
        for v in spec["versions"]:
            if v["name"] == version and v["served"]:
                schema: dict[str, Any] = v["schema"]["openAPIV3Schema"]
                return schema
    return None
