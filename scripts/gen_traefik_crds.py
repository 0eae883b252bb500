#!/usr/bin/env python3
"""Extract Traefik's CustomResourceDefinitions (v3.7.13) into ``kexpose/traefik/crds.json``.

Traefik's Kubernetes CRD provider, which the ``kind: traefik`` controller runs to read the apps'
``Middleware`` objects (basicAuth, forwardAuth, ipAllowList), waits for an informer of every
``traefik.io`` kind it knows, so all of its CRDs must be installed, not just ``Middleware``
(Traefik docs, "Kubernetes CRD provider", Requirements: "Add/update **all** the Traefik
resources definitions"). This script reads the release's single CRD file from the Go module
cache that ``scripts/toolchain.sh`` fills
(``github.com/traefik/traefik/v3@v3.7.13/docs/content/reference/dynamic-configuration/
kubernetes-crd-definition-v1.yml``), drops every prose ``description`` (most of the bytes) and
writes the rest, the full structural CRDs, as JSON. The file is committed, so the components,
CI and the tests need neither that cache nor the network; the Gateway API CRDs are embedded
the same way (``scripts/gen-gateway-types``).

    scripts/gen-traefik-crds [--source FILE] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

ROOT: Final = Path(__file__).resolve().parent.parent
CRDS_JSON: Final = ROOT / "components" / "kexpose" / "traefik" / "crds.json"
#: The release the ``kind: traefik`` controller pins (kexpose.manifests.controller) and the
#: e2e toolchain builds (scripts/toolchain.sh TRAEFIK_VERSION).
VERSION: Final = "v3.7.13"
GROUP: Final = "traefik.io"


def default_source() -> Path:
    gomod = Path(os.environ.get("GOMODCACHE", Path.home() / ".cache/kexpose/go/mod"))
    return (
        gomod
        / f"github.com/traefik/traefik/v3@{VERSION}"
        / "docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml"
    )


def _strip(node: Any) -> Any:
    # Only prose: a string-valued "description". A schema property that happens to be named
    # "description" is a mapping and stays.
    if isinstance(node, dict):
        return {
            k: _strip(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def extract(source: Path) -> dict[str, Any]:
    """The release's CRDs without descriptions, checked to be ``traefik.io`` CRDs."""
    crds: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(source.read_text(encoding="utf-8")):
        if not doc:
            continue
        if doc.get("kind") != "CustomResourceDefinition" or doc["spec"]["group"] != GROUP:
            what = f"{doc.get('kind')} {doc.get('metadata')}"
            raise SystemExit(f"{source}: {what} is not a {GROUP} CRD")
        crds.append(_strip(doc))
    if not crds:
        raise SystemExit(f"no CRDs in {source}")
    crds.sort(key=lambda c: str(c["metadata"]["name"]))
    return {"traefikVersion": VERSION, "group": GROUP, "crds": crds}


def dump_crds(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gen-traefik-crds", description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=None, help="the CRD definition file")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if different")
    args = parser.parse_args(argv)
    source = args.source or default_source()
    if not source.is_file():
        print(f"{source}: missing; run scripts/toolchain.sh (step traefik)", file=sys.stderr)
        return 2
    text = dump_crds(extract(source))
    if args.check:
        if CRDS_JSON.read_text(encoding="utf-8") != text:
            print(f"{CRDS_JSON}: differs; run scripts/gen-traefik-crds", file=sys.stderr)
            return 1
        return 0
    CRDS_JSON.write_text(text, encoding="utf-8")
    print(f"wrote {CRDS_JSON} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
