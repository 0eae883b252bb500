"""Traefik's own API (``traefik.io``, release v3.7.13) as kexpose needs it: its CRDs.

The ``kind: traefik`` controller enforces an app's edge auth with Traefik ``Middleware``
objects (``kexpose.manifests.middleware``), which its Kubernetes CRD provider reads; that
provider needs every Traefik CRD installed. ``crds.json`` holds them without their prose
``description`` fields, extracted by ``scripts/gen-traefik-crds`` from the Go module
``github.com/traefik/traefik/v3@v3.7.13`` that ``scripts/toolchain.sh`` downloads, and committed
so that CI, the tests and the components need neither that cache nor the network.
"""

from __future__ import annotations

from kexpose.traefik.crds import GROUP, TRAEFIK_VERSION, crds, schema_of

__all__ = ["GROUP", "TRAEFIK_VERSION", "crds", "schema_of"]
