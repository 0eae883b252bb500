"""kexpose as a component package: the schema Pulumi infers, and the adapters under mocks.

The package served to other languages (kexpose.provider) must offer the same outputs as the
Python components, take numbers the way Pulumi's wire format carries them, and refuse bad input
the way the Python components do. tests/e2e/test_journey.py runs it from a Pulumi YAML program.
"""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from kexpose import provider
from kexpose.errors import ConfigError
from kexpose.preview import Recorded, run_program
from kexpose.resources import ExposedApp, IngressController

from .test_components import APP, by_type


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def floats(value: Any) -> Any:
    """``value`` as it crosses Pulumi's wire: every number a double."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [floats(v) for v in value]
    return value


def schema() -> dict[str, Any]:
    found = Analyzer(provider.NAME).analyze([provider.ExposedApp, provider.IngressController])
    return dict(found["component_definitions"])


@pytest.mark.parametrize(
    ("served", "python"),
    [(provider.ExposedApp, ExposedApp), (provider.IngressController, IngressController)],
)
def test_the_schema_offers_every_output_of_the_python_component(
    served: type[Any], python: type[Any]
) -> None:
    definition = schema()[served.__name__]
    # The component's own annotations (PEP 563 strings): its outputs.
    outputs = {k for k, v in python.__annotations__.items() if "Output[" in str(v)}
    assert outputs
    assert set(definition.outputs) == {camel(k) for k in outputs}
    # Inputs arrive plain (kexpose validates them before registering anything).
    assert all(p.plain for p in definition.inputs.values())


def test_the_schema_inputs_are_the_stack_file_shapes() -> None:
    found = schema()
    app = found["ExposedApp"].inputs
    assert set(app) == {"app", "environment", "ingressClass", "gateway"}
    assert [k for k, p in app.items() if not p.optional] == ["app", "environment"]
    controller = found["IngressController"].inputs
    assert set(controller) == {"environment", "controller", "apps"}
    assert controller["controller"].optional


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (9000.0, 9000),
        (0.5, 0.5),
        ("80", "80"),
        (True, True),
        ({"ports": [{"port": 80.0, "name": "http"}]}, {"ports": [{"port": 80, "name": "http"}]}),
        ([1.0, [2.0]], [1, [2]]),
    ],
)
def test_integral_gives_whole_numbers_back_as_ints(given: Any, expected: Any) -> None:
    got = provider.integral(given)
    assert got == expected
    assert type(got) is type(expected)


def _records(program: Any, stack: str = "staging") -> list[Recorded]:
    return run_program(program, stack=stack, config={})


def test_an_app_from_the_wire_registers_as_the_python_component_does() -> None:
    served = _records(
        lambda: provider.ExposedApp("web", {"app": floats(APP), "environment": "staging"})
    )
    direct = _records(lambda: ExposedApp("web", APP, environment="staging"))
    assert sorted((r.type, r.name) for r in served) == sorted((r.type, r.name) for r in direct)
    (deployment,) = by_type(served)["kubernetes:apps/v1:Deployment"]
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == 8080
    assert type(container["ports"][0]["containerPort"]) is int


def test_a_controller_from_the_wire_registers_as_the_python_component_does() -> None:
    spec = {"kind": "kexpose", "className": "edge", "replicas": 2.0}
    served = _records(
        lambda: provider.IngressController("edge", {"environment": "staging", "controller": spec})
    )
    direct = _records(
        lambda: IngressController("edge", provider.integral(spec), environment="staging")
    )
    assert sorted((r.type, r.name) for r in served) == sorted((r.type, r.name) for r in direct)
    assert "kexpose:index:IngressController" in by_type(served)


def test_an_unknown_environment_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        _records(lambda: provider.ExposedApp("web", {"app": APP, "environment": "production"}))
    message = str(caught.value)
    assert "web: environment is 'production'" in message
    assert "allowed: dev, staging, prod" in message
    assert caught.value.field == "environment"


def test_a_bad_app_from_the_wire_is_refused_before_anything_registers() -> None:
    bad = {**APP, "service": {"type": "NodePort", "ports": [{"name": "http", "port": 80}]}}
    registered: list[Recorded] = []
    with pytest.raises(ConfigError, match="svc-no-nodeport"):
        run_program(
            lambda: provider.ExposedApp("web", {"app": floats(bad), "environment": "prod"}),
            stack="prod",
            config={},
            on_resource=registered.append,
        )
    assert registered == []
