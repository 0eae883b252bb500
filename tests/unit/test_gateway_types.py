"""The generated Gateway API types: up to date with the committed CRDs, and usable."""

from __future__ import annotations

import importlib.util
import sys
import typing
from pathlib import Path
from types import ModuleType

import pytest

from kexpose.gatewayapi import BUNDLE_VERSION, crds, schema_of
from kexpose.gatewayapi import types as gw

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_gateway_types", ROOT / "scripts" / "gen_gateway_types.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_committed_python_is_what_the_generator_makes_of_the_committed_crds() -> None:
    gen = generator()
    files = gen.generated(gen.load_crds())
    assert set(files) == {gen.TYPES_PY, gen.RESOURCES_PY}
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, f"{path}: run scripts/gen-gateway-types"


def test_a_changed_schema_changes_the_generated_types() -> None:
    # The diff above can fail: the output follows the schema, field by field.
    gen = generator()
    data = gen.load_crds()
    for crd in data["crds"]:
        if crd["spec"]["names"]["kind"] == "ReferenceGrant":
            for version in crd["spec"]["versions"]:
                props = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                props["to"]["items"]["properties"]["extra"] = {"type": "integer"}
    text = gen.render_types(data)
    assert "    extra: int\n" in text


@pytest.mark.e2e
def test_the_committed_crds_are_the_release_the_toolchain_fetched() -> None:
    gen = generator()
    source = gen.default_crd_dir()
    if not source.is_dir():
        pytest.fail(f"{source}: missing; run scripts/toolchain.sh")
    assert gen.dump_crds(gen.extract(source)) == gen.CRDS_JSON.read_text(encoding="utf-8")


def test_the_extract_holds_the_standard_channel_crds_without_prose() -> None:
    kinds = {c["spec"]["names"]["kind"] for c in crds()}
    assert {"GatewayClass", "Gateway", "HTTPRoute", "GRPCRoute", "ReferenceGrant"} <= kinds
    for crd in crds():
        annotations = crd["metadata"]["annotations"]
        assert annotations["gateway.networking.k8s.io/bundle-version"] == BUNDLE_VERSION
        assert annotations["gateway.networking.k8s.io/channel"] == "standard"
        assert '"description"' not in str(crd).replace("'", '"')


def test_schemas_are_found_by_served_version_only() -> None:
    assert schema_of("gateway.networking.k8s.io/v1", "HTTPRoute") is not None
    assert schema_of("gateway.networking.k8s.io/v1beta1", "ReferenceGrant") is not None
    assert schema_of("gateway.networking.k8s.io/v1alpha2", "HTTPRoute") is None
    assert schema_of("gateway.networking.k8s.io/v1", "Ingress") is None


def test_types_follow_the_schema_required_fields_and_enums() -> None:
    hints = typing.get_type_hints(gw.HTTPRouteSpecRulesMatchesPath, include_extras=True)
    assert typing.get_args(hints["type"]) == ("Exact", "PathPrefix", "RegularExpression")
    assert gw.HTTPRouteSpecRulesBackendRefs.__required_keys__ == {"name"}
    assert "from" in gw.ReferenceGrantSpec.__required_keys__
    assert gw.API_VERSIONS["ReferenceGrant"] == "gateway.networking.k8s.io/v1beta1"


def test_the_resources_carry_the_type_tokens_crossguard_sees() -> None:
    from kexpose.resources import gatewayapi

    for (api_version, kind), cls in gatewayapi.CLASSES.items():
        assert gw.API_VERSIONS[kind] == api_version
        assert cls.__mro__[1].__name__ == "CustomResource"
