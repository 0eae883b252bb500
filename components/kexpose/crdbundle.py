"""A committed bundle of CustomResourceDefinitions: a ``crds.json`` beside a package.

The Gateway API's (``kexpose.gatewayapi``) and Traefik's (``kexpose.traefik``) CRDs are read
the same way: generated from a pinned release by a script, committed without their prose, and
checked on first read against the release the code was written for, so that a regenerated file
of another release fails loudly instead of installing CRDs the builders do not match.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cached_property
from importlib import resources
from typing import Any

__all__ = ["CrdBundle"]


class CrdBundle:
    """The ``crds.json`` of ``package``, whose top-level ``stamp`` keys must hold these values."""

    def __init__(self, package: str, stamp: Mapping[str, str]) -> None:
        self._package = package
        self._stamp = dict(stamp)

    @cached_property
    def _data(self) -> dict[str, Any]:
        text = resources.files(self._package).joinpath("crds.json").read_text(encoding="utf-8")
        data: dict[str, Any] = json.loads(text)
        found = {key: data.get(key) for key in self._stamp}
        if found != self._stamp:
            raise RuntimeError(f"{self._package} crds.json holds {found}, not {self._stamp}")
        return data

    def crds(self) -> list[dict[str, Any]]:
        """Every CustomResourceDefinition of the bundle, as manifests (copies: callers may add
        labels)."""
        return copy.deepcopy(self._data["crds"])

    def schema_of(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """The ``openAPIV3Schema`` of ``kind`` in ``api_version``, or None if the bundle does
        not serve it."""
        group, _, version = api_version.rpartition("/")
        for crd in self._data["crds"]:
            spec = crd["spec"]
            if spec["group"] != group or spec["names"]["kind"] != kind:
                continue
            for v in spec["versions"]:
                if v["name"] == version and v["served"]:
                    schema: dict[str, Any] = v["schema"]["openAPIV3Schema"]
                    return schema
        return None
