"""Environment profiles: defaults filled in and requirements enforced, per environment."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kexpose.environment import Environment
from kexpose.model import StackSpec
from kexpose.profile import PROFILES, resolve


def stack(env: str, **app_over: Any) -> StackSpec:
    app: dict[str, Any] = {
        "name": "web",
        "workload": {"image": "x", "ports": [{"name": "http", "containerPort": 80}]},
        "service": {"ports": [{"name": "http", "port": 80}]},
        "ingress": {"rules": [{"host": "a.example.com", "paths": [{"port": "http"}]}]},
    }
    app.update(app_over)
    return StackSpec.model_validate({"environment": env, "controller": {}, "apps": [app]})


@pytest.mark.parametrize(
    ("env", "replicas", "pdb", "tls", "ctrl_type"),
    [
        ("dev", 1, False, "none", "NodePort"),
        ("staging", 1, False, "self-signed", "LoadBalancer"),
    ],
)
def test_defaults(env: Environment, replicas: int, pdb: bool, tls: str, ctrl_type: str) -> None:
    spec = resolve(stack(env))
    app = spec.apps[0]
    assert app.workload is not None
    assert app.workload.replicas == replicas
    assert app.disruption_budget is pdb
    assert app.tls.mode == tls
    assert spec.controller is not None
    assert spec.controller.service.type == ctrl_type


def test_prod_defaults_to_cert_manager_and_asks_for_an_issuer() -> None:
    with pytest.raises(ValidationError) as caught:
        resolve(stack("prod"))
    assert "needs an issuer" in str(caught.value)
    spec = resolve(stack("prod", tls={"issuer": "le"}))
    app = spec.apps[0]
    assert app.tls.mode == "cert-manager"
    assert app.workload is not None
    assert app.workload.replicas == 2
    assert app.disruption_budget is True


def test_prod_refuses_one_replica_and_no_pdb() -> None:
    workload = {"image": "x", "replicas": 1, "ports": [{"name": "http", "containerPort": 80}]}
    with pytest.raises(ValidationError) as caught:
        resolve(stack("prod", workload=workload, disruptionBudget=False, tls={"issuer": "le"}))
    text = str(caught.value)
    assert "at least 2 replicas" in text
    assert "requires a PodDisruptionBudget" in text


def test_no_hosts_means_no_tls() -> None:
    spec = resolve(stack("staging", ingress=None))
    assert spec.apps[0].tls.mode == "none"


def test_every_environment_has_a_profile() -> None:
    assert set(PROFILES) == {"dev", "staging", "prod"}
    assert all(p.min_replicas <= p.default_replicas for p in PROFILES.values())
    assert all(
        p.controller_service_default in p.controller_service_allowed for p in PROFILES.values()
    )
