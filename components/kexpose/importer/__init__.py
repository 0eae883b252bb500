"""``kexpose import``'s core: existing Ingresses (and ingress-nginx annotations) into a stack.

Pure and sans-IO: parsed objects in; a validated stack, its file text, the objects it renders
and a migration report out. The CLI (``kexpose.cli.importing``) reads files or a cluster and
prints.
"""

from __future__ import annotations

from kexpose.importer.catalogue import (
    CONVERTED,
    CONVERTED_NOW,
    NEEDS_MODEL,
    UNSUPPORTED,
    Entry,
    Verdict,
    is_snippet,
    lookup,
)
from kexpose.importer.conversion import AppDraft, Conversion, convert
from kexpose.importer.findings import Item, ItemVerdict
from kexpose.importer.migration import MigrationReport, assess, planned_manifests
from kexpose.importer.rendering import gateway_manifests, ingress_manifests, manifests_text
from kexpose.importer.source import (
    INGRESS_VERSIONS,
    Origin,
    Source,
    SourceIngress,
    SourceService,
    read_objects,
)
from kexpose.importer.stackfile import stack_file_text

__all__ = [
    "CONVERTED",
    "CONVERTED_NOW",
    "INGRESS_VERSIONS",
    "NEEDS_MODEL",
    "UNSUPPORTED",
    "AppDraft",
    "Conversion",
    "Entry",
    "Item",
    "ItemVerdict",
    "MigrationReport",
    "Origin",
    "Source",
    "SourceIngress",
    "SourceService",
    "Verdict",
    "assess",
    "convert",
    "gateway_manifests",
    "ingress_manifests",
    "is_snippet",
    "lookup",
    "manifests_text",
    "planned_manifests",
    "read_objects",
    "stack_file_text",
]
