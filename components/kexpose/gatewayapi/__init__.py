"""The Gateway API (standard channel v1.6.3) as kexpose writes it: typed inputs and the CRDs.

pulumi-kubernetes has no classes for Gateway API kinds, so ``scripts/gen-gateway-types``
generates them from the release's CRDs:

- ``crds.json``: the standard-channel CRDs without their prose ``description`` fields
  (everything else, schemas and CEL rules included, is kept). Extracted from the Go module
  ``sigs.k8s.io/gateway-api@v1.6.3`` that ``scripts/toolchain.sh`` downloads, and committed, so
  that CI, the tests and the components need neither that cache nor the network;
- ``types``: a ``TypedDict`` per object of each kind's schema (pure; the builders use them);
- ``kexpose.resources.gatewayapi``: the Pulumi resources (the shell side).

``crds()`` gives the CRD manifests the controller component installs; ``schema_of`` the
OpenAPI v3 schema a rendered object is validated against in the tests.
"""

from __future__ import annotations

from kexpose.gatewayapi.crds import BUNDLE_VERSION, CHANNEL, crds, schema_of

__all__ = ["BUNDLE_VERSION", "CHANNEL", "crds", "schema_of"]
