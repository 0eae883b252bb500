"""``kexpose render`` of a stack whose Traefik enforces edge auth: the Middlewares are rendered,
and no credential is, not even with ``--show-secrets`` (offline there is no password to hash)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner

from kexpose.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def test_render_of_staging_under_traefik_shows_middlewares_and_no_credential(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", project)
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.staging.yaml").read_text())
    doc["config"]["kexpose:controller"]["kind"] = "traefik"
    (project / "stacks" / "Pulumi.staging.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    out = tmp_path / "out"
    args = ["render", "-s", "staging", "--out", str(out), "--project-dir", str(project)]
    result = CliRunner().invoke(cli, [*args, "--show-secrets"])
    assert result.exit_code == 0, result.output
    objects = [yaml.safe_load(f.read_text()) for f in sorted(out.glob("*.yaml"))]
    middlewares = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Middleware"}
    assert middlewares == {
        "shop-web-auth": {
            "basicAuth": {
                "secret": "shop-web-basic-auth",
                "realm": "shop staging",
                "headerField": "X-Forwarded-User",
                "removeHeader": False,
            }
        }
    }
    text = "".join(f.read_text() for f in out.glob("*.yaml")) + result.output
    # The tester's password is Pulumi secret config: render has no way to it, and shows no
    # hash of a placeholder either (that would be a working login with a published password).
    assert "$2" not in text
    (users,) = [
        o for o in objects if o["kind"] == "Secret" and "basic-auth" in o["metadata"]["name"]
    ]
    assert users["stringData"]["auth"].startswith("#")
    assert not [o for o in objects if o["kind"] == "EdgeAuth"]
