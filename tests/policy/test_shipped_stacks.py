"""The three shipped stacks pass their own environment's mandatory rules, and a deliberately bad
prod variant fails with the right ids. The objects are the stacks rendered offline by
``kexpose.preview.run_preview`` (the stack program under Pulumi's mocks)."""

from __future__ import annotations

import copy
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from kexpose.environment import Environment
from kexpose.preview import run_preview

from .objects import mandatory_violations

PROJECT = Path(__file__).resolve().parents[2]


@cache
def _rendered(stack: Environment) -> tuple[dict[str, Any], ...]:
    result = run_preview(stack, project=PROJECT)
    return tuple(dict(manifest) for _, manifest in result.manifests())


@cache
def _rendered_prod_on_ingress() -> tuple[dict[str, Any], ...]:
    """The prod stack with ``api: ingress`` (the shipped one is on the Gateway API): the Ingress
    rules' own bad variant below."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "stacks").mkdir()
        shutil.copy(PROJECT / "Pulumi.yaml", project)
        doc = yaml.safe_load((PROJECT / "stacks" / "Pulumi.prod.yaml").read_text())
        doc["config"]["kexpose:controller"]["api"] = "ingress"
        for app in doc["config"]["kexpose:apps"]:  # a path's own auth needs the Gateway API
            for rule in (app.get("ingress") or {}).get("rules", []):
                for path in rule.get("paths", []):
                    path.pop("auth", None)
        (project / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc))
        result = run_preview("prod", project=project)
        return tuple(dict(manifest) for _, manifest in result.manifests())


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stack_passes_its_own_environment(stack: Environment) -> None:
    objects = _rendered(stack)
    # dev exposes its apps through Ingress, staging and prod through the Gateway API.
    route = "Ingress" if stack == "dev" else "HTTPRoute"
    assert any(o["kind"] == route for o in objects)
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


def test_the_prod_stack_on_ingress_passes_too() -> None:
    objects = _rendered_prod_on_ingress()
    assert any(o["kind"] == "Ingress" for o in objects)
    found = mandatory_violations(list(objects), "prod")
    assert found == [], "\n".join(v.message for v in found)


def test_a_bad_prod_variant_fails_with_the_right_ids() -> None:
    objects = copy.deepcopy(list(_rendered_prod_on_ingress()))
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
