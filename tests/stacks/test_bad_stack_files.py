"""Stack files a new user gets wrong: each gets one clear message and exit 2, never a traceback."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kexpose.cli import cli

ROOT = Path(__file__).resolve().parents[2]

#: Nine levels of nine aliases: 9**9 (387 million) strings from about 100 written.
ALIAS_BOMB = 'config:\n  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"  {b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def _project(tmp_path: Path, stack_file: bytes) -> Path:
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", project)
    (project / "stacks" / "Pulumi.dev.yaml").write_bytes(stack_file)
    return project


def _preview(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["preview", "-s", "dev", "--project-dir", str(project), *args])


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not UTF-8 text (a binary file?)"),
        (b"\x00\x01\x02binary", "not YAML text (a binary file?)"),
        (b"just a string\n", "is a YAML scalar"),
        (b"- config\n- kexpose:environment\n", "is a YAML list, not a mapping"),
        (b"config: [1, 2]\n", "'config' must be a mapping, got a YAML list"),
        (b"", "the stack file is empty"),
        (b"  \n\n", "the stack file is empty"),
        (b"# only a comment\n", "holds no YAML document"),
        (
            b"config:\n  kexpose:environment: dev\n  kexpose:environment: prod\n",
            "line 3: invalid YAML: duplicate key 'kexpose:environment' (first given on line 2)",
        ),
    ],
)
def test_unusable_stack_file_exits_2_with_a_message(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    result = _preview(_project(tmp_path, content))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert needle in result.stderr
    assert "Pulumi.dev.yaml" in result.stderr
    assert "Traceback" not in result.output


def test_an_alias_bomb_is_refused_fast(tmp_path: Path) -> None:
    project = _project(tmp_path, ALIAS_BOMB.encode())
    start = time.perf_counter()
    result = _preview(project)
    elapsed = time.perf_counter() - start
    assert result.exit_code == 2, result.output
    assert "alias bomb" in result.stderr
    assert "line " in result.stderr
    assert elapsed < 2.0


def test_anchors_in_moderation_still_work(tmp_path: Path) -> None:
    from kexpose.yamlio import load_one

    text = "base: &b {replicas: 2, image: x}\napps:\n" + "".join(
        f"  - {{<<: *b, name: a{i}}}\n" for i in range(200)
    )
    doc = load_one(text, source="s")
    assert doc is not None
    assert doc.data["apps"][199] == {"replicas": 2, "image": "x", "name": "a199"}
