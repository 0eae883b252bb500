"""The imported stack as the rest of kexpose reads it: ``kexpose preview`` passes it, and
``kexpose render`` of it gives the very objects ``kexpose import --to ingress`` printed.

Real processes (the ``kexpose`` entry point), since preview and render run the stack program
under Pulumi's mock runtime, which keeps process-wide state.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MIXED = REPO / "tests" / "fixtures" / "import" / "mixed"
KEXPOSE = str(Path(sys.executable).with_name("kexpose"))


def kexpose(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEXPOSE, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def test_the_imported_stack_previews_clean_and_renders_what_import_printed(
    tmp_path: Path,
) -> None:
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "stacks").mkdir()
    stack = tmp_path / "stacks" / "Pulumi.imported.yaml"
    made = kexpose(
        "import",
        str(MIXED),
        "-e",
        "dev",
        "--ingress-class",
        "nginx",
        "--stack-file",
        str(stack),
        cwd=tmp_path,
    )
    # 1: shop/admin's basic auth names the cluster's existing Secret; see below.
    assert made.returncode == 1, made.stderr
    # What the CHOICE comments ask of the user: the kept Secrets' PEM in secret config (here
    # encrypted placeholders, which preview and render never decrypt).
    config = yaml.safe_load(stack.read_text())["config"]
    keys = sorted(
        {
            app["tls"][field]
            for app in config["kexpose:apps"]
            for field in ("certificateConfig", "privateKeyConfig")
            if field in app.get("tls", {})
        }
    )
    assert keys
    with stack.open("a") as f:
        for k in keys:
            f.write(f"  {k}:\n    secure: v1:placeholder\n")
    preview = kexpose("preview", "--stack", "imported", "-o", "json", cwd=tmp_path)
    verdicts = json.loads(preview.stdout)
    # The only mandatory verdict, as import reported it: the model lets auth.secret name an
    # existing Secret, and the auth-secret-provisioned rule wants the stack to provision it.
    assert preview.returncode == 1, preview.stdout + preview.stderr
    assert {
        (v["rule"], v["resource"])
        for v in verdicts["violations"]
        if v["enforcement"] == "mandatory"
    } == {("auth-secret-provisioned", "Ingress/shop/admin")}
    # Render refuses such a stack. The user's fix (users with passwordConfig, or the Secret
    # kept on the old controller) is theirs to choose; here the app is taken out of the stack.
    refused = kexpose(
        "render", "--stack", "imported", "--out", str(tmp_path / "refused"), cwd=tmp_path
    )
    assert refused.returncode == 1, refused.stderr
    assert "auth-secret-provisioned" in refused.stderr
    whole = yaml.safe_load(stack.read_text())
    apps = whole["config"]["kexpose:apps"]
    whole["config"]["kexpose:apps"] = [a for a in apps if a["name"] != "admin"]
    stack.write_text(yaml.safe_dump(whole, sort_keys=False))
    assert kexpose("preview", "--stack", "imported", cwd=tmp_path).returncode == 0

    rendered = kexpose(
        "render", "--stack", "imported", "--out", str(tmp_path / "out"), cwd=tmp_path
    )
    assert rendered.returncode == 0, rendered.stderr
    by_render = {
        key(o): o
        for f in sorted((tmp_path / "out").glob("*.yaml"))
        for o in yaml.safe_load_all(f.read_text())
        if o is not None
    }
    printed = kexpose(
        "import",
        str(MIXED),
        "-e",
        "dev",
        "--ingress-class",
        "nginx",
        "--to",
        "ingress",
        "--out",
        str(tmp_path / "ingress.yaml"),
        cwd=tmp_path,
    )
    assert printed.returncode == 1, printed.stderr
    by_import = {
        key(o): o
        for o in yaml.safe_load_all((tmp_path / "ingress.yaml").read_text())
        if key(o)[1:] != ("shop", "admin")
    }
    # Render adds the TLS Secrets of mode 'secret' (from the config); import leaves them to the
    # cluster, where they exist already. Everything else is the same object.
    only_render = {k for k in by_render if k not in by_import}
    assert {k[0] for k in only_render} == {"Secret"}
    assert not [k for k in by_import if k not in by_render]
    for k, obj in by_import.items():
        assert obj == by_render[k], k
