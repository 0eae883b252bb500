"""``scripts/test``, the README's test command: each run gets a pytest ``--basetemp`` of its own.

pytest's default base directory, ``/tmp/pytest-of-USER/pytest-N``, is shared by every session of
one user: each new session prunes the numbered directories beyond the newest three, and on a
machine where several engineers run tests at once those can belong to a session still running.

The script is run for real, against a virtualenv whose tools only record how they were called
(the real ruff, mypy and pytest would take minutes and are not what is tested here).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "test"

# Stands in for .venv/bin/python: ``-m pytest`` writes its arguments, one a line, and whether
# the --basetemp's parent exists, then exits with $FAKE_PYTEST_STATUS; every other tool passes.
_PYTHON = """#!/usr/bin/env bash
if [ "$1 $2" = "-m pytest" ]; then
  shift 2
  printf '%s\\n' "$@" > "$FAKE_RECORD"
  prev=
  for arg in "$@"; do
    case "$arg" in --basetemp=*) base=${arg#--basetemp=} ;; esac
    [ "$prev" = --basetemp ] && base=$arg
    prev=$arg
  done
  [ -n "${base:-}" ] && [ -d "$(dirname "$base")" ] && echo "parent-exists" >> "$FAKE_RECORD"
  exit "${FAKE_PYTEST_STATUS:-0}"
fi
exit 0
"""


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", _PYTHON), ("lint-imports", "#!/bin/sh\nexit 0\n")):
        tool = bin_dir / name
        tool.write_text(text)
        tool.chmod(0o755)
    return tmp_path / "venv"


def _run(venv: Path, record: Path, *args: str, status: int = 0) -> tuple[int, list[str]]:
    env = {
        **os.environ,
        "VENV": str(venv),
        "FAKE_RECORD": str(record),
        "FAKE_PYTEST_STATUS": str(status),
        "TMPDIR": str(record.parent),
    }
    done = subprocess.run(
        [str(SCRIPT), "-m", "not e2e", *args], env=env, capture_output=True, check=False
    )
    return done.returncode, record.read_text().splitlines()


def _basetemp(argv: list[str]) -> str:
    [at] = [i for i, a in enumerate(argv) if a == "--basetemp"]
    return argv[at + 1]


def test_each_run_gets_its_own_basetemp_removed_at_exit(venv: Path, tmp_path: Path) -> None:
    status, first = _run(venv, tmp_path / "first", "-q")
    assert status == 0
    _, second = _run(venv, tmp_path / "second", "-q")
    assert first[2:] == ["-m", "not e2e", "-q", "parent-exists"]  # the caller's arguments
    assert "parent-exists" in first  # made before pytest starts ...
    one, two = _basetemp(first), _basetemp(second)
    assert one != two
    assert Path(one).is_relative_to(tmp_path)  # under $TMPDIR
    assert not Path(one).parent.exists()  # ... and gone after it
    assert not Path(two).parent.exists()


@pytest.mark.parametrize("given", [["--basetemp", "/tmp/mine"], ["--basetemp=/tmp/mine"]])
def test_a_basetemp_the_caller_gives_is_kept(venv: Path, tmp_path: Path, given: list[str]) -> None:
    _, argv = _run(venv, tmp_path / "record", *given)
    assert [a for a in argv if a.startswith("--basetemp")] == [given[0]]
    assert "/tmp/mine" in shlex.join(argv)


def test_pytest_exit_status_is_the_scripts(venv: Path, tmp_path: Path) -> None:
    status, argv = _run(venv, tmp_path / "record", status=3)
    assert status == 3
    assert not Path(_basetemp(argv)).parent.exists()
