"""The three shipped stacks pass their own environment's mandatory rules, and a deliberately bad
prod variant fails with the right ids. The objects are the stacks rendered offline by
``kexpose.preview.run_preview`` (the stack program under Pulumi's mocks)."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from kexpose.environment import Environment
from kexpose.preview import run_preview

from .objects import mandatory_violations

PROJECT = Path(__file__).resolve().parents[2]


@cache
def _rendered(stack: Environment) -> tuple[dict[str, Any], ...]:
    result = run_preview(stack, project=PROJECT)
    return tuple(dict(manifest) for _, manifest in result.manifests())


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stack_passes_its_own_environment(stack: Environment) -> None:
    objects = _rendered(stack)
    assert any(o["kind"] in ("Ingress", "HTTPRoute") for o in objects)
    found = mandatory_violations(list(objects), stack)
    assert found == [], "\n".join(v.message for v in found)


def _first(objects: list[dict[str, Any]], kind: str, **where: Any) -> dict[str, Any]:
    return next(
        o
        for o in objects
        if o["kind"] == kind and all(o["spec"].get(k) == v for k, v in where.items())
    )


def _ref(o: dict[str, Any]) -> str:
    return f"{o['kind']}/{o['metadata']['namespace']}/{o['metadata']['name']}"


def test_a_bad_prod_variant_fails_with_the_right_ids() -> None:
    objects = copy.deepcopy(list(_rendered("prod")))
    app_service = _first(objects, "Service", type="ClusterIP")
    app_service["spec"]["type"] = "NodePort"
    ingresses = [o for o in objects if o["kind"] == "Ingress"]
    routes = [o for o in objects if o["kind"] == "HTTPRoute" and o["spec"].get("rules")]
    expected = {("svc-no-nodeport", _ref(app_service))}
    if ingresses:  # prod exposes its apps through Ingresses
        no_tls, dangling = ingresses[0], ingresses[-1]
        del no_tls["spec"]["tls"]
        backend = dangling["spec"]["rules"][0]["http"]["paths"][0]["backend"]
        backend["service"]["name"] = "no-such-service"
        expected |= {
            ("ing-require-tls", _ref(no_tls)),
            ("ing-tls-covers-hosts", _ref(no_tls)),
            ("ing-backend-service-exists", _ref(dangling)),
        }
    else:  # prod exposes its apps through the Gateway API
        app_routes = [
            r
            for r in routes
            if any(b for x in r["spec"]["rules"] for b in x.get("backendRefs", []))
        ]
        no_hosts, dangling = app_routes[0], app_routes[-1]
        del no_hosts["spec"]["hostnames"]
        dangling["spec"]["rules"][0]["backendRefs"][0]["name"] = "no-such-service"
        expected |= {
            ("route-hostnames-required", _ref(no_hosts)),
            ("route-backend-exists", _ref(dangling)),
        }
    found = {(v.rule, v.resource) for v in mandatory_violations(objects, "prod")}
    assert found == expected
    # The same objects in dev, where NodePort, missing TLS and host-less routes are allowed.
    dangling_rule = "ing-backend-service-exists" if ingresses else "route-backend-exists"
    assert {v.rule for v in mandatory_violations(objects, "dev")} == {dangling_rule}
