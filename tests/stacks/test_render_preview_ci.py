"""``render`` and ``preview`` as CI uses them: proper YAML documents that ``check -`` reads
whole, deterministic renders, exit codes, the secrets warning and machine output formats."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kexpose.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin)


def _render(out: Path, stack: str = "staging", *extra: str) -> Result:
    return _cli("render", "-s", stack, "--out", str(out), "--project-dir", str(ROOT), *extra)


def _variant(tmp_path: Path, name: str, edit: Any) -> Path:
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", project)
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{name}.yaml").read_text())
    edit(doc["config"])
    (project / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return project


def test_rendered_files_are_documents_that_check_reads_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _render(out).exit_code == 0
    files = sorted(out.glob("*.yaml"))
    for f in files:
        lines = f.read_text().splitlines()
        assert lines[0] == "---"
        assert lines[1].startswith("apiVersion: ")
        assert lines[2].startswith("kind: ")
    secret = next(f for f in files if "secret" in f.name and "-tls" in f.name).read_text()
    assert "tls.crt: |\n    -----BEGIN CERTIFICATE-----\n" in secret
    joined = "".join(f.read_text() for f in files)
    result = _cli("check", "-", "-e", "staging", "-o", "json", stdin=joined)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["objects"] == len(files)


def test_renders_are_deterministic_unless_secrets_are_shown(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert _render(first).exit_code == 0
    assert _render(second).exit_code == 0
    names = sorted(p.name for p in first.glob("*.yaml"))
    assert names == sorted(p.name for p in second.glob("*.yaml"))
    for name in names:
        assert (first / name).read_text() == (second / name).read_text(), name
    shown = tmp_path / "c"
    assert _render(shown, "staging", "--show-secrets").exit_code == 0
    key = next(shown.glob("*secret*-tls.yaml")).read_text()
    assert "PRIVATE KEY" in key
    assert key != next(first.glob("*secret*-tls.yaml")).read_text()
    # Staging's basic-auth users: offline there is no password to hash, and a hash of the
    # placeholder would be a working login with a published password.
    users = next(shown.glob("*secret*-basic-auth.yaml")).read_text()
    assert "$2" not in users
    assert "made at deployment" in users


def test_unwritable_out_exits_3_and_foreign_out_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _render(blocker / "out", "dev")
    assert result.exit_code == 3, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "cannot write to" in result.stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    result = _render(foreign, "dev")
    assert result.exit_code == 2
    assert "not written by kexpose render" in result.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_show_secrets_warns_outside_a_git_ignored_path(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("/ignored/\n")
    result = _render(tmp_path / "keys", "staging", "--show-secrets")
    assert result.exit_code == 0
    assert "not ignored by git" in result.stderr
    result = _render(tmp_path / "ignored", "staging", "--show-secrets")
    assert result.exit_code == 0
    assert "not ignored by git" not in result.stderr
    result = _render(tmp_path / "plain", "staging")
    assert "not ignored by git" not in result.stderr


def test_preview_sarif_points_mandatory_violations_at_the_stack_file(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["kexpose:apps"][2]["service"]["type"] = "NodePort"

    project = _variant(tmp_path, "prod", edit)
    result = _cli("preview", "-s", "prod", "--project-dir", str(project), "-o", "sarif")
    assert result.exit_code == 1, result.output
    run = json.loads(result.stdout)["runs"][0]
    (res,) = [r for r in run["results"] if r["ruleId"] == "svc-no-nodeport"]
    location = res["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("stacks/Pulumi.prod.yaml")
    stack_text = (project / "stacks" / "Pulumi.prod.yaml").read_text().splitlines()
    line = location["region"]["startLine"]
    # the line is inside apps[2] (inventory), at its service mapping
    assert "type: NodePort" in stack_text[line - 1]


def test_preview_json_has_file_and_line_and_structured_errors(tmp_path: Path) -> None:
    result = _cli("preview", "-s", "dev", "--project-dir", str(ROOT), "-o", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["resources"]
    assert all(v["file"].endswith("Pulumi.dev.yaml") and v["line"] for v in doc["violations"])
    project = _variant(tmp_path, "dev", lambda c: c.update({"kexpose:apps": "oops"}))
    for output in ("json", "sarif", "junit", "github"):
        bad = _cli("preview", "-s", "dev", "--project-dir", str(project), "-o", output)
        assert bad.exit_code == 2
        assert "kexpose:apps" in bad.stdout


def test_preview_junit_has_testcases(tmp_path: Path) -> None:
    result = _cli("preview", "-s", "prod", "--project-dir", str(ROOT), "-o", "junit")
    assert result.exit_code == 0
    assert result.stdout.count("<testcase ") > 20
    assert 'failures="0"' in result.stdout


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        ({"bad key!": "x"}, "key 'bad key!'"),
        ({"tier": "v" * 5_000_000}, "(5,000,000 chars)"),
    ],
)
def test_preview_and_render_refuse_bad_labels(
    tmp_path: Path, labels: dict[str, str], needle: str
) -> None:
    project = _variant(tmp_path, "dev", lambda c: c["kexpose:apps"][0].update(labels=labels))
    for command in (["preview"], ["render", "--out", str(tmp_path / "out")]):
        result = _cli(*command, "-s", "dev", "--project-dir", str(project))
        assert result.exit_code == 2, result.output
        assert "kexpose:apps[0].labels" in result.stderr
        assert needle in result.stderr


def test_repeated_config_problems_are_grouped(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        app = config["kexpose:apps"][0]
        config["kexpose:apps"] = [
            {**app, "name": f"a{i}", "service": {"type": "Bogus", "ports": app["service"]["ports"]}}
            for i in range(300)
        ]

    project = _variant(tmp_path, "dev", edit)
    result = _cli("preview", "-s", "dev", "--project-dir", str(project))
    assert result.exit_code == 2, result.output
    assert "(300 problems, 1 distinct)" in result.stderr
    assert "... and 297 more like this" in result.stderr
    assert len(result.stderr.splitlines()) < 10


@pytest.mark.parametrize("command", [[], ["check"], ["preview"], ["render"]])
def test_exit_codes_are_documented_in_help(command: list[str]) -> None:
    result = _cli(*command, "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "1 a mandatory policy rule" in text
    assert "2 invalid input or usage" in text
    assert "3 an I/O failure" in text
    assert "unwritable --out" in text
