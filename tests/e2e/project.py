"""Pulumi projects for the journey, each in a temporary directory, driven by the built CLI.

`pulumi stack init` writes an `encryptionsalt` into the stack's config file, so the repository's
project is never run in place: `KexposeProject.copy_of_repo` copies `Pulumi.yaml` and `stacks/` (as
a user's checkout has them) next to a `.venv` link to the interpreter running the tests, which
has kexpose installed in editable mode. Every command runs with a file backend in the session's
temporary directory, a passphrase secrets provider and the local cluster's kubeconfig.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .toolchain import REPO_ROOT, Toolchain

__all__ = [
    "PULUMI_TIMEOUT_S",
    "PolicyPackCopy",
    "PulumiError",
    "PulumiProject",
    "copy_of_repo",
]

# One pulumi command: the CLI, the language host, the provider (which parses its 7 MB schema) and
# the await logic; about 20 s for a whole stack here, generous for a loaded 2-core CI machine.
PULUMI_TIMEOUT_S = 600.0
PASSPHRASE = "kexpose-e2e"

# `pulumi preview --policy-pack <executable>`: the CLI (pkg/v3 NewPolicyAnalyzer) starts an
# executable pack directly, in the program's directory, with the engine address as its last
# argument. The CLI's own route for a pack *directory* goes through the language host's RunPlugin,
# which the 3.68 host built here cannot serve (see tests/e2e/README.md). This launcher hands over to
# the Python pack shim of that host's release (sdk/v3 v3.68.0 python/dist, installed by
# scripts/toolchain.sh), with the arguments that shim was written for: <engine> <pack directory>.
PACK_LAUNCHER = """\
#!/bin/sh
for arg in "$@"; do engine=$arg; done
exec pulumi-analyzer-policy-python "$engine" "$(cd "$(dirname "$0")" && pwd)"
"""
PACK_LAUNCHER_NAME = "pulumi-analyzer-kexpose"


class PulumiError(AssertionError):
    """A pulumi command failed; the message has its output."""

    def __init__(self, args: list[str], done: subprocess.CompletedProcess[str]) -> None:
        self.returncode = done.returncode
        self.stdout = done.stdout
        self.stderr = done.stderr
        super().__init__(
            f"pulumi {' '.join(args)} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )


@dataclass(frozen=True)
class PolicyPackCopy:
    """A copy of policies/ with the launcher that `--policy-pack` is pointed at."""

    directory: Path

    @property
    def launcher(self) -> Path:
        return self.directory / PACK_LAUNCHER_NAME

    @classmethod
    def of_repo(cls, directory: Path) -> PolicyPackCopy:
        shutil.copytree(
            REPO_ROOT / "policies",
            directory,
            ignore=shutil.ignore_patterns(".venv", "__pycache__"),
        )
        launcher = directory / PACK_LAUNCHER_NAME
        launcher.write_text(PACK_LAUNCHER)
        launcher.chmod(0o755)
        return cls(directory)


@dataclass
class PulumiProject:
    """A Pulumi project directory and the environment its commands run in."""

    toolchain: Toolchain
    directory: Path
    state: Path
    kubeconfig: Path

    def env(self) -> dict[str, str]:
        env = self.toolchain.pulumi_env()
        env.update(
            PULUMI_BACKEND_URL=self.state.as_uri(),
            PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
            KUBECONFIG=str(self.kubeconfig),
        )
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [*args, "--non-interactive"]
        done = subprocess.run(
            [str(self.toolchain.tool("pulumi")), *argv],
            cwd=self.directory,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=PULUMI_TIMEOUT_S,
            check=False,
        )
        if check and done.returncode != 0:
            raise PulumiError(argv, done)
        return done

    def init(self, stack: str, config: Mapping[str, str] | None = None) -> None:
        self.run("stack", "init", stack)
        for key, value in (config or {}).items():
            self.run("config", "set", "--stack", stack, key, value)

    def up(self, stack: str, *extra: str) -> subprocess.CompletedProcess[str]:
        # --skip-preview: the update itself runs the program, the policies of the components and
        # every await; a separate preview first would only double the time.
        return self.run("up", "--stack", stack, "--yes", "--skip-preview", *extra)

    def preview(
        self, stack: str, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run("preview", "--stack", stack, *extra, check=check)

    def destroy(self, stack: str) -> subprocess.CompletedProcess[str]:
        return self.run("destroy", "--stack", stack, "--yes", "--skip-preview")

    def outputs(self, stack: str) -> dict[str, Any]:
        done = self.run("stack", "output", "--stack", stack, "--json", "--show-secrets")
        return dict(json.loads(done.stdout))

    def export(self, stack: str) -> dict[str, Any]:
        done = self.run("stack", "export", "--stack", stack)
        return dict(json.loads(done.stdout))


def copy_of_repo(
    toolchain: Toolchain, directory: Path, *, state: Path, kubeconfig: Path
) -> PulumiProject:
    """The repository's project (Pulumi.yaml and stacks/) copied into `directory`.

    `.venv` links to the environment running the tests, as a checkout's own virtualenv would sit
    beside Pulumi.yaml; `stacks/.venv` (a link in the repository) reaches it from the program
    directory, where Python dynamic providers look for it.
    """
    directory.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "Pulumi.yaml", directory / "Pulumi.yaml")
    shutil.copytree(REPO_ROOT / "stacks", directory / "stacks", symlinks=True)
    (directory / ".venv").symlink_to(Path(sys.prefix))
    return PulumiProject(toolchain, directory, state, kubeconfig)


def write_program(
    toolchain: Toolchain,
    directory: Path,
    *,
    name: str,
    program: str,
    state: Path,
    kubeconfig: Path,
) -> PulumiProject:
    """A one-file Python program as its own Pulumi project (run by the tests' interpreter)."""
    directory.mkdir(parents=True)
    (directory / "Pulumi.yaml").write_text(
        yaml.safe_dump({"name": name, "runtime": "python"}, sort_keys=False)
    )
    (directory / "__main__.py").write_text(program)
    return PulumiProject(toolchain, directory, state, kubeconfig)


def write_yaml_program(
    toolchain: Toolchain,
    directory: Path,
    *,
    document: dict[str, Any],
    state: Path,
    kubeconfig: Path,
) -> PulumiProject:
    """A Pulumi YAML program (the whole of it is its Pulumi.yaml) as its own project."""
    directory.mkdir(parents=True)
    (directory / "Pulumi.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return PulumiProject(toolchain, directory, state, kubeconfig)
