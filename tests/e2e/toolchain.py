"""Find the e2e toolchain that scripts/toolchain.sh built, and run its tools hermetically.

The script keeps the binaries in a cache keyed by the pinned versions and describes them in an
env.json; tests read that file (through `toolchain.sh --print-env-json`, or directly from the path
in $KEXPOSE_TOOLCHAIN_ENV) instead of guessing paths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TOOLCHAIN_ENV_VAR", "Toolchain", "ToolchainMissingError", "find_toolchain"]

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN_SCRIPT = REPO_ROOT / "scripts" / "toolchain.sh"
# Points at a toolchain's env.json directly, e.g. to test against a toolchain built elsewhere.
TOOLCHAIN_ENV_VAR = "KEXPOSE_TOOLCHAIN_ENV"
# `toolchain.sh --print-env-json` only reads files; a few seconds covers a slow `go env`.
TOOLCHAIN_QUERY_TIMEOUT_S = 30.0


class ToolchainMissingError(RuntimeError):
    """The e2e toolchain is not built (or is incomplete); run scripts/toolchain.sh."""


@dataclass(frozen=True, slots=True)
class Toolchain:
    """Where scripts/toolchain.sh put the binaries, and which versions it pinned."""

    root: Path
    bin: Path
    kwok_stages: Path
    pulumi_home: Path
    versions: Mapping[str, Any]
    gateway_api_crds: Path
    """The Gateway API standard-channel CRDs (one YAML file per kind) of the conformance suite's
    own release."""
    cert_manager_crds: Path
    """cert-manager's CRDs (one YAML file per kind) of the release the controller is built from
    (step `certmanager`)."""

    def tool(self, name: str) -> Path:
        """The path of one built binary; raises when it is missing."""
        path = self.bin / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ToolchainMissingError(f"{path} is missing; run {TOOLCHAIN_SCRIPT}")
        return path

    def pulumi_env(
        self, base: Mapping[str, str] | None = None, *, python: Path | None = None
    ) -> dict[str, str]:
        """Environment for running the built `pulumi` hermetically (no downloads, no ~/.pulumi).

        `python` is the interpreter that runs Pulumi programs and policy packs (default: the one
        running the tests, i.e. the project venv). The language host built here predates runtime
        options reaching the host, so `virtualenv:`/`toolchain:` in Pulumi.yaml are ignored and
        PULUMI_PYTHON_CMD is what selects the interpreter.
        """
        interpreter = Path(sys.executable) if python is None else python
        env = dict(os.environ if base is None else base)
        env["PATH"] = os.pathsep.join([str(self.bin), str(interpreter.parent), env.get("PATH", "")])
        env["PULUMI_PYTHON_CMD"] = str(interpreter)
        env["PULUMI_HOME"] = str(self.pulumi_home)
        # The plugin cache under PULUMI_HOME is the only source of plugins: a download would fail
        # (no network), and a stray pulumi-resource-kubernetes on PATH must not be picked up.
        env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
        env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
        env["PULUMI_IGNORE_AMBIENT_PLUGINS"] = "true"
        return env


def find_toolchain(repo_root: Path = REPO_ROOT) -> Toolchain:
    """Locate the built toolchain, or raise `ToolchainMissingError` saying how to build it."""
    explicit = os.environ.get(TOOLCHAIN_ENV_VAR)
    if explicit:
        try:
            doc = json.loads(Path(explicit).read_text())
        except (OSError, ValueError) as exc:
            raise ToolchainMissingError(f"{TOOLCHAIN_ENV_VAR}={explicit}: {exc}") from exc
    else:
        script = repo_root / "scripts" / "toolchain.sh"
        try:
            done = subprocess.run(
                ["bash", str(script), "--print-env-json"],
                capture_output=True,
                text=True,
                timeout=TOOLCHAIN_QUERY_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolchainMissingError(f"cannot query {script}: {exc}") from exc
        if done.returncode != 0:
            raise ToolchainMissingError(
                f"the e2e toolchain is not built ({done.stderr.strip()}); "
                f"build it with `bash {script}`"
            )
        doc = json.loads(done.stdout)
    toolchain = Toolchain(
        root=Path(doc["root"]),
        bin=Path(doc["bin"]),
        kwok_stages=Path(doc["kwok_stages"]),
        pulumi_home=Path(doc["pulumi_home"]),
        versions=doc["versions"],
        gateway_api_crds=Path(doc["gateway_api_crds"]),
        # Derived when absent: an env.json written by a script from before the certmanager step
        # (another checkout sharing the cache) still names the same share directory.
        cert_manager_crds=Path(
            doc.get("cert_manager_crds") or Path(doc["root"]) / "share" / "cert-manager-crds"
        ),
    )
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"):
        toolchain.tool(name)
    if not toolchain.kwok_stages.is_file():
        raise ToolchainMissingError(f"{toolchain.kwok_stages} is missing; run {TOOLCHAIN_SCRIPT}")
    return toolchain
