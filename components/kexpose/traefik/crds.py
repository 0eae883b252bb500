"""The committed Traefik CRDs (``crds.json``, made by ``scripts/gen-traefik-crds``)."""

from __future__ import annotations

from typing import Final

from kexpose.crdbundle import CrdBundle

__all__ = ["GROUP", "TRAEFIK_VERSION", "crds", "schema_of"]

TRAEFIK_VERSION: Final = "v3.7.13"
GROUP: Final = "traefik.io"

_BUNDLE: Final = CrdBundle("kexpose.traefik", {"traefikVersion": TRAEFIK_VERSION, "group": GROUP})
crds = _BUNDLE.crds
schema_of = _BUNDLE.schema_of
