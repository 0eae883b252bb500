"""The committed Traefik CRDs (``kexpose/traefik/crds.json``): what ``scripts/gen-traefik-crds``
extracts from the release, complete, without prose, and looked up by served version."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kexpose.traefik import GROUP, TRAEFIK_VERSION, crds, schema_of

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_traefik_crds", ROOT / "scripts" / "gen_traefik_crds.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.e2e
def test_the_committed_crds_are_what_the_generator_makes_of_the_release() -> None:
    """Regenerate from the release in the Go module cache (scripts/toolchain.sh) and diff."""
    gen = generator()
    source = gen.default_source()
    if not source.is_file():
        pytest.fail(f"{source}: missing; run scripts/toolchain.sh")
    assert gen.dump_crds(gen.extract(source)) == gen.CRDS_JSON.read_text(encoding="utf-8")
    assert gen.main(["--check"]) == 0


def test_a_changed_release_fails_the_check(tmp_path: Path) -> None:
    # The diff above can fail: the extract follows the source, field by field.
    gen = generator()
    source = tmp_path / "crds.yml"
    source.write_text(
        "apiVersion: apiextensions.k8s.io/v1\n"
        "kind: CustomResourceDefinition\n"
        "metadata: {name: middlewares.traefik.io}\n"
        "spec:\n"
        "  group: traefik.io\n"
        "  names: {kind: Middleware, plural: middlewares}\n"
        "  versions: []\n",
        encoding="utf-8",
    )
    assert gen.main(["--check", "--source", str(source)]) == 1


def test_only_prose_is_stripped() -> None:
    gen = generator()
    schema = {
        "description": "prose",
        "properties": {"description": {"type": "string", "description": "more prose"}},
    }
    assert gen._strip(schema) == {"properties": {"description": {"type": "string"}}}


def test_a_file_of_other_objects_is_refused(tmp_path: Path) -> None:
    gen = generator()
    source = tmp_path / "rbac.yml"
    source.write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n")
    with pytest.raises(SystemExit, match=r"is not a traefik\.io CRD"):
        gen.extract(source)


def test_the_extract_holds_every_traefik_kind_without_prose() -> None:
    kinds = {c["spec"]["names"]["kind"] for c in crds()}
    assert kinds == {
        "IngressRoute",
        "IngressRouteTCP",
        "IngressRouteUDP",
        "Middleware",
        "MiddlewareTCP",
        "ServersTransport",
        "ServersTransportTCP",
        "TLSOption",
        "TLSStore",
        "TraefikService",
    }
    for crd in crds():
        assert crd["spec"]["group"] == GROUP
        assert '"description": "' not in str(crd).replace("'", '"')
    assert TRAEFIK_VERSION == generator().VERSION


def test_schemas_are_found_by_served_version_only() -> None:
    schema = schema_of("traefik.io/v1alpha1", "Middleware")
    assert schema is not None
    middleware = schema["properties"]["spec"]["properties"]
    assert {"basicAuth", "forwardAuth", "ipAllowList", "chain"} <= set(middleware)
    assert "secret" in middleware["basicAuth"]["properties"]
    assert schema_of("traefik.io/v1", "Middleware") is None
    assert schema_of("traefik.io/v1alpha1", "Ingress") is None


def test_crds_are_copies() -> None:
    first = crds()
    first[0]["metadata"]["labels"] = {"x": "y"}
    assert "labels" not in crds()[0]["metadata"]
