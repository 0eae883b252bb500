"""The committed Gateway API CRDs (``crds.json``, made by ``scripts/gen-gateway-types``)."""

from __future__ import annotations

from typing import Final

from kexpose.crdbundle import CrdBundle

__all__ = ["BUNDLE_VERSION", "CHANNEL", "crds", "schema_of"]

BUNDLE_VERSION: Final = "v1.6.3"
CHANNEL: Final = "standard"


_BUNDLE: Final = CrdBundle(
    "kexpose.gatewayapi", {"bundleVersion": BUNDLE_VERSION, "channel": CHANNEL}
)
#: Every CustomResourceDefinition of the release's standard channel (copies).
crds = _BUNDLE.crds
schema_of = _BUNDLE.schema_of
