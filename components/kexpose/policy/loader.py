"""Reading Kubernetes manifests for the offline checker: files, directories and stdin.

Multi-document YAML (JSON is YAML too), directories searched recursively for ``*.yaml``,
``*.yml`` and ``*.json`` (hidden entries skipped, in sorted order), and ``-`` for standard input.
Empty documents are skipped; a ``kind: List`` (what ``kubectl get -o yaml`` prints) is unpacked
into its items. Anything unusable raises :class:`InputError` naming the file and the document's
0-based index in it, so the checker can exit 2 with a message a person can act on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from kexpose.errors import InputError

__all__ = ["MANIFEST_SUFFIXES", "load_manifests"]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"

# libyaml's parser when PyYAML was built with it: an order of magnitude faster on large stacks.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _files(argument: str) -> Iterator[Path]:
    path = Path(argument)
    if path.is_dir():
        found = [
            p
            for p in path.rglob("*")
            if p.suffix in MANIFEST_SUFFIXES
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        ]
        yield from sorted(found)
    elif path.exists():
        yield path
    else:
        raise InputError(f"{argument}: no such file or directory")


def _check(obj: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise InputError(f"{where}: is a {type(obj).__name__}, not a Kubernetes object (a mapping)")
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InputError(f"{where}: has no kind")
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: {kind} has no metadata.name")
    return obj


def _documents(text: str, source: str) -> Iterator[Mapping[str, Any]]:
    documents = yaml.load_all(text, Loader=_Loader)
    index = 0
    while True:
        try:
            document = next(documents)
        except StopIteration:
            return
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f", line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise InputError(
                f"{source}: document index {index}{line}: invalid YAML: {problem}"
            ) from exc
        where = f"{source}: document index {index}"
        index += 1
        if document is None:
            continue
        if isinstance(document, Mapping) and document.get("kind") == "List":
            items = document.get("items")
            if not isinstance(items, list):
                raise InputError(f"{where}: kind List without a list of items")
            for n, item in enumerate(items):
                yield _check(item, f"{where}, items[{n}]")
        else:
            yield _check(document, where)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc


def load_manifests(
    arguments: Sequence[str], *, stdin: TextIO | None = None
) -> list[Mapping[str, Any]]:
    """All objects in ``arguments`` (files, directories, ``-``), in order.

    Raises :class:`InputError` for a missing or unreadable file, invalid YAML, or a document that
    is not a Kubernetes object with ``kind`` and ``metadata.name``.
    """
    objects: list[Mapping[str, Any]] = []
    for argument in arguments:
        if argument == STDIN:
            stream = stdin if stdin is not None else sys.stdin
            try:
                text = stream.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"<stdin>: cannot read: {exc}") from exc
            objects.extend(_documents(text, "<stdin>"))
            continue
        for path in _files(argument):
            objects.extend(_documents(_read(path), str(path)))
    return objects
