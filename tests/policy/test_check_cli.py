"""``kexpose check`` end to end: exit codes, JSON and table output, stdin, directories, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kexpose.cli import cli

from .objects import NOW, auth_stack, gateway_stack, realistic_stack, service, tls_secret

KEYS = {"rule", "severity", "enforcement", "resource", "field", "message", "fix", "file", "line"}


def _dump(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def _run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["check", *args], input=stdin)


@pytest.fixture
def clean_dir(tmp_path: Path) -> Path:
    stack = realistic_stack()
    (tmp_path / "controller").mkdir()
    (tmp_path / "controller" / "controller.yaml").write_text(_dump(stack[:3]))
    (tmp_path / "apps.yml").write_text(_dump(stack[3:]))
    return tmp_path


def test_clean_directory_exits_0_in_every_environment(clean_dir: Path) -> None:
    for env in ("dev", "staging", "prod"):
        result = _run(str(clean_dir), "--environment", env, "--output", "json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["violations"] == []


def test_mandatory_violation_exits_1_with_json_objects(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text(_dump([service("web", type="NodePort")]))
    result = _run(str(path), "-e", "prod", "-o", "json")
    assert result.exit_code == 1
    found = json.loads(result.stdout)["violations"]
    nodeport = [v for v in found if v["rule"] == "svc-no-nodeport"]
    assert nodeport == [
        {
            "rule": "svc-no-nodeport",
            "severity": "high",
            "enforcement": "mandatory",
            "resource": "Service/shop/web",
            "field": "spec.type",
            "message": nodeport[0]["message"],
            "fix": nodeport[0]["fix"],
            "file": str(path),
            "line": 1,
        }
    ]
    assert all(set(v) == KEYS for v in found)


def test_advisory_only_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text(_dump([service("web", type="NodePort", selector={"app": "web"})]))
    result = _run(str(path), "-e", "staging", "-o", "json")
    assert result.exit_code == 0
    assert {(v["rule"], v["enforcement"]) for v in json.loads(result.stdout)["violations"]} == {
        ("svc-no-nodeport", "advisory"),
        ("svc-selector-matches-workload", "advisory"),
    }


def test_dev_allows_nodeport() -> None:
    result = _run("-", "-e", "dev", "-o", "json", stdin=_dump([service("web", type="NodePort")]))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["violations"] == []


def test_table_output_names_rule_resource_and_field() -> None:
    result = _run("-", "-e", "prod", stdin=_dump([service("web", type="NodePort")]))
    assert result.exit_code == 1
    out = result.stdout
    for needle in (
        "svc-no-nodeport",
        "Service/shop/web",
        "spec.type",
        "mandatory",
        "1 mandatory",
        "project defaults",
    ):
        assert needle in out


def test_policy_config_changes_the_verdict(tmp_path: Path) -> None:
    secret = tls_secret(days=10)
    manifests = tmp_path / "secret.yaml"
    manifests.write_text(_dump([secret]))
    relaxed = tmp_path / "relaxed.yaml"
    relaxed.write_text(f"min_cert_days_remaining: 5\nnow: {NOW.isoformat()}\n")
    strict = tmp_path / "strict.yaml"
    strict.write_text(f"now: {NOW.isoformat()}\n")
    assert _run(str(manifests), "-e", "prod", "--policy-config", str(relaxed)).exit_code == 0
    result = _run(str(manifests), "-e", "prod", "--policy-config", str(strict), "-o", "json")
    assert result.exit_code == 1
    assert [v["rule"] for v in json.loads(result.stdout)["violations"]] == ["tls-cert-not-expiring"]


def test_policy_config_file_starts_from_spec_defaults(
    clean_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The shipped stack uses class kexpose: fine by the project defaults, not by the spec's.
    config = tmp_path_factory.mktemp("config") / "now.yaml"
    config.write_text(f"now: {NOW.isoformat()}\n")
    result = _run(str(clean_dir), "-e", "dev", "--policy-config", str(config), "-o", "json")
    assert result.exit_code == 1
    assert {v["rule"] for v in json.loads(result.stdout)["violations"]} == {
        "ing-class-allowed",
        "svc-no-loadbalancer",
    }


@pytest.mark.parametrize(
    ("stdin", "needle"),
    [
        (
            "kind: Service\nmetadata: {name: a}\n---\nkind: [oops\n",
            "<stdin>: document index 1, line 5: invalid YAML",
        ),
        ("apiVersion: v1\nmetadata: {name: a}\n", "<stdin>: document index 0: has no kind"),
        ("kind: Service\nmetadata: {}\n", "<stdin>: document index 0: Service has no metadata"),
    ],
    ids=["bad-yaml", "missing-kind", "missing-name"],
)
def test_unusable_input_exits_2_with_a_message_on_stderr(stdin: str, needle: str) -> None:
    result = _run("-", "-e", "prod", stdin=stdin)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stdout == ""


def test_bad_policy_config_and_missing_file_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("min_cert_days_remaining: soon\n")
    result = _run("-", "-e", "prod", "--policy-config", str(bad), stdin="")
    assert result.exit_code == 2
    assert f"{bad}: invalid policy config" in result.stderr
    result = _run(str(tmp_path / "absent.yaml"), "-e", "prod")
    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr


def test_usage_errors() -> None:
    assert _run("x.yaml").exit_code == 2  # --environment is required
    assert _run("x.yaml", "-e", "qa").exit_code == 2
    assert _run("-e", "prod").exit_code == 2  # at least one path


def test_installed_command_in_a_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text(_dump([service("web", type="NodePort")]))
    exe = Path(sys.executable).with_name("kexpose")
    done = subprocess.run(
        [str(exe), "check", str(path), "-e", "prod", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "svc-no-nodeport" in {v["rule"] for v in json.loads(done.stdout)["violations"]}


def test_gateway_api_and_auth_manifests_are_checked_from_yaml(tmp_path: Path) -> None:
    # The kinds arrive as YAML documents, as `kexpose render` writes them.
    (tmp_path / "gateway.yaml").write_text(_dump(gateway_stack()))
    (tmp_path / "auth.yaml").write_text(_dump(auth_stack()))
    for env in ("dev", "staging", "prod"):
        result = _run(str(tmp_path), "-e", env, "-o", "json")
        assert result.exit_code == 0, result.output
    broken = [o for o in gateway_stack() if o["kind"] != "ReferenceGrant"]
    text = _dump(broken)
    (tmp_path / "gateway.yaml").write_text(text)
    result = _run(str(tmp_path), "-e", "dev", "-o", "json")
    assert result.exit_code == 1
    found = json.loads(result.stdout)["violations"]
    assert sorted((v["rule"], v["resource"]) for v in found) == [
        ("route-cross-namespace-granted", "Gateway/kexpose-system/edge"),
        ("route-cross-namespace-granted", "HTTPRoute/shop/web"),
    ]
    lines = text.splitlines()
    for v in found:
        # Each finding points at the first line of its object's document.
        assert v["file"].endswith("gateway.yaml")
        assert lines[v["line"] - 1].startswith("apiVersion: gateway.networking.k8s.io/")
        assert lines[v["line"]] == f"kind: {v['resource'].split('/')[0]}"
