"""The imported stack as the rest of kexpose reads it: ``kexpose preview`` passes it, and
``kexpose render`` of it gives the very objects ``kexpose import --to gateway`` printed (the
mixed folder's rewrites and canaries make ``--to stack`` choose the Gateway API).

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
    # 1: shop/admin's basic auth becomes an EdgeAuth object (api gateway) naming its users
    # Secret, which is in the cluster and not in the stack: auth-secret-provisioned, as with
    # --to ingress (the rules read EdgeAuth as they read the annotations, policies/README.md).
    assert made.returncode == 1, made.stderr
    assert "api: gateway" in stack.read_text()
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
    assert preview.returncode == 1, preview.stdout + preview.stderr
    assert [
        (v["rule"], v["resource"])
        for v in verdicts["violations"]
        if v["enforcement"] == "mandatory"
    ] == [("auth-secret-provisioned", "EdgeAuth/shop/admin")]
    # The user's fix: the admin users move into the stack (hashed at deployment from secret
    # config), then the stack previews clean.
    doc = yaml.safe_load(stack.read_text())
    (admin,) = [a for a in doc["config"]["kexpose:apps"] if a["name"] == "admin"]
    assert admin["auth"].pop("secret") == "admin-users"
    admin["auth"]["users"] = [{"name": "ops", "passwordConfig": "auth:admin-ops-password"}]
    doc["config"]["auth:admin-ops-password"] = {"secure": "v1:placeholder"}
    stack.write_text(yaml.safe_dump(doc))
    preview = kexpose("preview", "--stack", "imported", "-o", "json", cwd=tmp_path)
    verdicts = json.loads(preview.stdout)
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert not [v for v in verdicts["violations"] if v["enforcement"] == "mandatory"]

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
        "gateway",
        "--out",
        str(tmp_path / "gateway.yaml"),
        cwd=tmp_path,
    )
    assert printed.returncode == 1, printed.stderr  # auth-secret-provisioned, as above
    by_import = {key(o): o for o in yaml.safe_load_all((tmp_path / "gateway.yaml").read_text())}
    # Render adds the TLS Secrets of mode 'secret' (from the config), which import leaves to
    # the cluster, where they exist already, and the admin users' Secret of the fix above,
    # which shop/admin's EdgeAuth then names. Everything else is the same object.
    only_render = {k for k in by_render if k not in by_import}
    assert {k[0] for k in only_render} == {"Secret"}
    assert ("Secret", "shop", "admin-basic-auth") in only_render
    edge = by_import[("EdgeAuth", "shop", "admin")]
    assert edge["spec"]["secret"] == "admin-users"
    edge["spec"]["secret"] = "admin-basic-auth"
    assert not [k for k in by_import if k not in by_render]
    for k, obj in by_import.items():
        assert obj == by_render[k], k
