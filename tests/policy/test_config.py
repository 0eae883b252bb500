"""PolicyConfig: the two sets of defaults, validation, and loading YAML with clear errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from kexpose.errors import InputError
from kexpose.policy.config import CONFIG_KEYS, PolicyConfig, load_policy_config


def test_spec_defaults_are_the_specifications() -> None:
    cfg = PolicyConfig.spec()
    assert cfg == PolicyConfig()
    assert cfg.allowed_ingress_classes == ("nginx",)
    assert cfg.allowed_loadbalancers == ("ingress-nginx/ingress-nginx-controller",)
    assert cfg.public_loadbalancers == ("ingress-nginx/ingress-nginx-controller",)
    assert cfg.allowed_external_ips == ()
    assert cfg.allow_default_certificate is False
    assert cfg.min_cert_days_remaining == 30
    assert dict(cfg.nginx_fixed_versions) == {"1.11": "1.11.5", "1.12": "1.12.1"}
    assert cfg.allowed_gateway_classes == ("kexpose",)
    assert cfg.now is None


def test_project_defaults_are_the_shipped_stacks() -> None:
    cfg = PolicyConfig.project()
    assert cfg.allowed_ingress_classes == ("kexpose",)
    assert cfg.allowed_loadbalancers == ("kexpose-system/kexpose-controller",)
    assert cfg.public_loadbalancers == ("kexpose-system/kexpose-controller",)
    assert cfg.min_cert_days_remaining == 30
    assert cfg.allowed_gateway_classes == ("kexpose",)


def test_a_stack_s_gateway_class_is_its_controller_class() -> None:
    # One class name per stack: the IngressClass and the GatewayClass are both `className`.
    config = PolicyConfig.for_stack({"className": "edge"})
    assert config.allowed_gateway_classes == ("edge",)
    assert config.allowed_ingress_classes == ("edge",)
    widened = PolicyConfig.for_stack({"className": "edge"}, {"allowed_gateway_classes": ["a"]})
    assert widened.allowed_gateway_classes == ("a",)
    with pytest.raises(ValidationError, match="class name cannot be empty"):
        PolicyConfig.for_stack(None, {"allowed_gateway_classes": [""]})


def test_keys_are_exactly_the_specs_plus_now() -> None:
    assert CONFIG_KEYS == (
        "allowed_ingress_classes",
        "allowed_loadbalancers",
        "public_loadbalancers",
        "allowed_external_ips",
        "allow_default_certificate",
        "min_cert_days_remaining",
        "nginx_fixed_versions",
        "allowed_gateway_classes",
        "now",
    )


def test_frozen_and_closed() -> None:
    cfg = PolicyConfig()
    with pytest.raises(ValidationError):
        cfg.min_cert_days_remaining = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        PolicyConfig.model_validate({"allowed_classes": ["x"]})


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_load_layers_the_file_over_the_spec_defaults(tmp_path: Path) -> None:
    cfg = load_policy_config(
        _write(
            tmp_path,
            (
                "allowed_ingress_classes: [kexpose, nginx]\n"
                "min_cert_days_remaining: 14\n"
                "now: 2026-01-02T03:04:05Z\n"
                "nginx_fixed_versions: {'1.12': '1.12.5', '1.13': '1.13.7'}\n"
            ),
        )
    )
    assert cfg.allowed_ingress_classes == ("kexpose", "nginx")
    assert cfg.min_cert_days_remaining == 14
    assert cfg.now == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert cfg.nginx_fixed_versions == {"1.12": "1.12.5", "1.13": "1.13.7"}
    assert cfg.allowed_loadbalancers == PolicyConfig().allowed_loadbalancers


def test_empty_file_is_the_spec_defaults(tmp_path: Path) -> None:
    assert load_policy_config(_write(tmp_path, "")) == PolicyConfig()


def test_naive_now_is_utc(tmp_path: Path) -> None:
    cfg = load_policy_config(_write(tmp_path, "now: '2026-01-02T03:04:05'\n"))
    assert cfg.now is not None
    assert cfg.now.tzinfo is dt.UTC


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("allowed_classes: [x]\n", ["'allowed_classes'", "unknown key", "allowed_ingress_classes"]),
        ("min_cert_days_remaining: soon\n", ["'min_cert_days_remaining'", "'soon'"]),
        ("min_cert_days_remaining: -1\n", ["'min_cert_days_remaining'", "-1", "greater"]),
        (
            "allowed_loadbalancers: [just-a-name]\n",
            ["'allowed_loadbalancers", "'just-a-name'", "namespace/name"],
        ),
        ("allowed_external_ips: [example.com]\n", ["'allowed_external_ips", "not an IP"]),
        ("allow_default_certificate: 'yes'\n", ["'allow_default_certificate'", "'yes'"]),
        (
            "nginx_fixed_versions: {'1.12': '1.13.0'}\n",
            ["nginx_fixed_versions", "not on that line"],
        ),
        ("nginx_fixed_versions: {'1': '1.0.0'}\n", ["'1'", "X.Y"]),
        ("now: yesterday\n", ["'now'", "'yesterday'"]),
        ("[1, 2]\n", ["mapping", "list"]),
        ("a: [unclosed\n", ["not valid YAML"]),
    ],
)
def test_load_errors_name_file_key_value_and_what_is_allowed(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_policy_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for needle in needles:
        assert needle in message


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_policy_config(tmp_path / "absent.yaml")
