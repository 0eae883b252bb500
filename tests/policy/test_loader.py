"""The manifest loader: multi-document YAML, directories, stdin, and unusable input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kexpose.errors import InputError
from kexpose.policy.loader import load_manifests

SVC = "apiVersion: v1\nkind: Service\nmetadata: {name: %s}\n"


def test_multi_document_file_skips_empty_documents(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("---\n" + SVC % "a" + "---\n---\n# only a comment\n---\n" + SVC % "b")
    assert [o["metadata"]["name"] for o in load_manifests([str(path)])] == ["a", "b"]


def test_directory_is_searched_recursively_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "b.yml").write_text(SVC % "b")
    (tmp_path / "a.yaml").write_text(SVC % "a")
    (tmp_path / "sub" / "deeper" / "c.json").write_text(
        json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"}})
    )
    (tmp_path / "notes.txt").write_text("not: [a manifest")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.yaml").write_text("kind: [broken")
    names = [o["metadata"]["name"] for o in load_manifests([str(tmp_path)])]
    assert names == ["a", "b", "c"]


def test_stdin_and_files_mix_in_argument_order(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(SVC % "file")
    found = load_manifests([str(path), "-"], stdin=io.StringIO(SVC % "stdin"))
    assert [o["metadata"]["name"] for o in found] == ["file", "stdin"]


def test_kind_list_is_unpacked() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- " + (SVC % "a").replace("\n", "\n  ")
    found = load_manifests(["-"], stdin=io.StringIO(text))
    assert [o["metadata"]["name"] for o in found] == ["a"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (SVC % "a" + "---\nkind: [unclosed\n", "document index 1, line 6: invalid YAML"),
        (SVC % "a" + "---\napiVersion: v1\nmetadata: {name: b}\n", "document index 1: has no kind"),
        (
            "---\n---\nkind: Service\nmetadata: {}\n",
            "document index 1: Service has no metadata.name",
        ),
        ("kind: Service\n", "document index 0: Service has no metadata.name"),
        ("kind: ''\nmetadata: {name: a}\n", "document index 0: has no kind"),
        ("- a\n- b\n", "document index 0: is a list"),
        ("just text\n", "document index 0: is a str"),
        (
            "kind: List\nitems:\n- {kind: Service}\n",
            "document index 0, items[0], line 3: Service has no",
        ),
        ("kind: List\nitems: 3\n", "kind List without a list of items"),
    ],
    ids=[
        "bad-yaml",
        "no-kind",
        "no-name-after-empties",
        "no-metadata",
        "empty-kind",
        "list",
        "scalar",
        "list-item",
        "list-items",
    ],
)
def test_unusable_documents_name_file_and_index(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_manifests([str(path)])
    assert str(info.value).startswith(f"{path}: ")
    assert needle in str(info.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        load_manifests([str(tmp_path / "absent.yaml")])
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00kind")
    with pytest.raises(InputError, match=r"not UTF-8 text \(a binary file\?\)"):
        load_manifests([str(binary)])


def test_stdin_errors_are_named_stdin() -> None:
    with pytest.raises(InputError, match=r"^<stdin>: document index 0: has no kind"):
        load_manifests(["-"], stdin=io.StringIO("a: 1\n"))
