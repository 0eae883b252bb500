"""The policy config a stack is held to: one function for preview, components and the pack."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kexpose.policy.config import PolicyConfig


def test_no_controller_keeps_the_project_defaults() -> None:
    assert PolicyConfig.for_stack(None) == PolicyConfig.project()


def test_defaults_of_an_unnamed_controller_are_the_projects() -> None:
    assert PolicyConfig.for_stack({"kind": "kexpose"}) == PolicyConfig.project()


def test_aimed_at_the_stacks_controller() -> None:
    config = PolicyConfig.for_stack({"className": "edge", "namespace": "net", "name": "front"})
    assert config.allowed_ingress_classes == ("edge",)
    assert config.allowed_loadbalancers == ("net/front",)
    assert config.public_loadbalancers == ("net/front",)


def test_overrides_win() -> None:
    config = PolicyConfig.for_stack(
        {"className": "edge"},
        {"allowed_loadbalancers": ["a/b", "c/d"], "min_cert_days_remaining": 7},
    )
    assert config.allowed_ingress_classes == ("edge",)
    assert config.allowed_loadbalancers == ("a/b", "c/d")
    assert config.min_cert_days_remaining == 7


def test_bad_override_is_refused() -> None:
    with pytest.raises(ValidationError, match="allowed_loadbalancers"):
        PolicyConfig.for_stack(None, {"allowed_loadbalancers": ["nope"]})
    with pytest.raises(ValidationError, match="Extra inputs"):
        PolicyConfig.for_stack(None, {"allowed_lbs": []})
