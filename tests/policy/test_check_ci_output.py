"""``kexpose check`` for CI: SARIF, JUnit and GitHub output with file and line, structured
errors, skipped non-Kubernetes files, label checks, strict YAML and grouped problems."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kexpose.cli import cli

from .objects import service

SVC_YAML = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n"
    "---\n"
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n"
    "spec:\n  type: NodePort\n  selector: {app: web}\n  ports: [{port: 80}]\n"
)


def _run(*args: str, stdin: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, ["check", *args], input=stdin)


@pytest.fixture
def nodeport(tmp_path: Path) -> Path:
    path = tmp_path / "manifests.yaml"
    path.write_text(SVC_YAML)
    return path


def test_json_findings_carry_file_and_line(nodeport: Path) -> None:
    result = _run(str(nodeport), "-e", "prod", "-o", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    found = [v for v in doc["violations"] if v["rule"] == "svc-no-nodeport"]
    assert [(v["file"], v["line"]) for v in found] == [(str(nodeport), 5)]
    assert doc["exit_code"] == 1


def test_sarif_has_rules_and_results_on_file_and_line(nodeport: Path) -> None:
    result = _run(str(nodeport), "-e", "prod", "-o", "sarif")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(rules) == 42
    assert all(r["id"] and r["help"]["text"] and r["shortDescription"]["text"] for r in rules)
    (res,) = [r for r in run["results"] if r["ruleId"] == "svc-no-nodeport"]
    assert rules[res["ruleIndex"]]["id"] == "svc-no-nodeport"
    assert res["level"] == "error"
    physical = res["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"].endswith("manifests.yaml")
    assert physical["region"]["startLine"] == 5
    assert run["invocations"][0]["executionSuccessful"] is True


def test_junit_has_a_testcase_per_object_and_rule(nodeport: Path) -> None:
    result = _run(str(nodeport), "-e", "prod", "-o", "junit")
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)  # noqa: S314 - our own output, not untrusted input
    cases = root.findall(".//testcase")
    services = {c.get("name") for c in cases if c.get("classname") == "Service/shop/web"}
    assert {"svc-no-nodeport", "svc-no-external-ips", "svc-lb-source-ranges"} <= services
    (failing,) = [c for c in cases if c.find("failure") is not None]
    assert (failing.get("classname"), failing.get("name")) == (
        "Service/shop/web",
        "svc-no-nodeport",
    )
    assert failing.get("line") == "5"
    assert root.get("failures") == "1"
    assert int(root.get("tests") or 0) == len(cases)


def test_github_annotations(nodeport: Path) -> None:
    result = _run(str(nodeport), "-e", "staging", "-o", "github")
    assert result.exit_code == 0  # advisory in staging
    lines = result.stdout.splitlines()
    (note,) = [ln for ln in lines if "svc-no-nodeport" in ln]
    assert note.startswith(f"::warning file={str(nodeport).replace(':', '%3A')},line=5,title=")
    assert "\n" not in note
    assert "%0Afix: " in note


@pytest.mark.parametrize("output", ["json", "sarif", "junit", "github"])
def test_errors_are_structured_output_never_an_empty_stdout(output: str) -> None:
    result = _run("-", "-e", "prod", "-o", output, stdin="kind: Service\nmetadata: {}\n")
    assert result.exit_code == 2
    assert result.stdout.strip()
    assert "Service has no metadata.name" in result.stdout
    if output == "sarif":
        invocation = json.loads(result.stdout)["runs"][0]["invocations"][0]
        assert invocation["executionSuccessful"] is False
        assert invocation["exitCode"] == 2


def test_binary_stdin_is_a_message_not_a_traceback() -> None:
    result = _run("-", "-e", "prod", stdin=b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00garbage")
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "<stdin>: not UTF-8 text (a binary file?)" in result.stderr


def test_non_kubernetes_yaml_in_a_folder_is_skipped_with_a_note(
    tmp_path: Path, nodeport: Path
) -> None:
    folder = nodeport.parent
    (folder / "values.yaml").write_text("replicaCount: 2\nimage: {tag: x}\n")
    (folder / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n"
    )
    result = _run(str(folder), "-e", "staging", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    notes = {Path(p["file"]).name: p for p in doc["problems"]}
    assert set(notes) == {"values.yaml", "kustomization.yaml"}
    assert all(p["level"] == "note" for p in notes.values())
    assert "values.yaml: skipped" in _run(str(folder), "-e", "staging").stderr
    strict = _run(str(folder), "-e", "staging", "--strict")
    assert strict.exit_code == 2
    assert "kustomization.yaml: document index 0: is a Kustomization file" in strict.stderr


def test_duplicate_keys_are_refused_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  type: ClusterIP\n"
        "  type: NodePort\n"
    )
    result = _run(str(path), "-e", "prod")
    assert result.exit_code == 2
    assert f"{path}: document index 0, line 6: invalid YAML: duplicate key 'type'" in result.stderr


def test_an_alias_bomb_on_stdin_is_refused_fast() -> None:
    bomb = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n"
    bomb += '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    bomb += "".join(
        f"  {b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    start = time.perf_counter()
    result = _run("-", "-e", "prod", stdin=bomb)
    assert time.perf_counter() - start < 2.0
    assert result.exit_code == 2
    assert "alias bomb" in result.stderr


@pytest.mark.parametrize(
    ("labels", "annotations", "needle"),
    [
        ({"bad key!": "x"}, {}, "key 'bad key!'"),
        ({"app": "v" * 64}, {}, "must be empty or at most 63 characters"),
        ({"app": "x" * 5_000_000}, {}, "(5,000,000 chars)"),
        ({"Example.COM/x": "y"}, {}, "must be a DNS subdomain"),
        ({}, {"big": "x" * (256 * 1024)}, "the API server allows at most 262,144"),
        ({}, {"/no-prefix": "x"}, "the prefix before '/' is empty"),
    ],
)
def test_labels_and_annotations_are_checked_as_the_api_server_does(
    labels: dict[str, str], annotations: dict[str, str], needle: str
) -> None:
    obj: dict[str, Any] = service("web")
    obj["metadata"]["labels"] = labels
    obj["metadata"]["annotations"] = annotations
    result = _run("-", "-e", "dev", stdin=yaml.safe_dump(obj))
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert "<stdin>:1: Service metadata." in result.stderr


def test_valid_labels_pass() -> None:
    obj: dict[str, Any] = service("web")
    obj["metadata"]["labels"] = {"app.kubernetes.io/name": "web", "tier": "", "a_b.c-d": "X_y.z-1"}
    obj["metadata"]["annotations"] = {"Example.com/Note": "free text: anything\n" * 100}
    result = _run("-", "-e", "dev", "-o", "json", stdin=yaml.safe_dump(obj))
    assert result.exit_code == 0, result.output


def test_repeated_problems_are_grouped_with_a_summary() -> None:
    objs = []
    for n in range(500):
        obj: dict[str, Any] = service(f"web{n}")
        obj["metadata"]["labels"] = {"bad key!": "x"}
        objs.append(obj)
    result = _run("-", "-e", "dev", stdin=yaml.safe_dump_all(objs))
    assert result.exit_code == 2
    err = result.stderr
    assert "(500 problems, 1 distinct)" in err
    assert "... and 497 more like this" in err
    assert len(err.splitlines()) < 10
