"""The committed Traefik CRDs (``crds.json``, made by ``scripts/gen-traefik-crds``)."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any, Final

__all__ = ["GROUP", "TRAEFIK_VERSION", "crds", "schema_of"]

TRAEFIK_VERSION: Final = "v3.7.13"
GROUP: Final = "traefik.io"


@cache
def _data() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("crds.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    if (data["traefikVersion"], data["group"]) != (TRAEFIK_VERSION, GROUP):
        raise RuntimeError(f"crds.json holds {data['traefikVersion']} {data['group']}")
    return data


def crds() -> list[dict[str, Any]]:
    """Every CustomResourceDefinition of the release, as manifests (copies: callers may add
    labels)."""
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
