"""Reading Kubernetes manifests for the offline checker: files, directories and stdin.

Multi-document YAML (JSON is YAML too), directories searched recursively for ``*.yaml``,
``*.yml`` and ``*.json`` (hidden entries skipped, in sorted order), and ``-`` for standard input.
Empty documents are skipped; a ``kind: List`` (what ``kubectl get -o yaml`` prints) is unpacked
into its items. Every object keeps the file and line it starts on, so that each finding can
point at it.

YAML is read strictly (``kexpose.yamlio``): duplicate keys and alias bombs are refused. Labels
and annotations are checked as the API server checks them (``kexpose.metadata``), since an
object the API server would reject is unusable input, not a policy question.

A file found in a directory that holds no Kubernetes object (a Helm values file, a
``kustomization.yaml``) is skipped with a note, unless ``strict``. Anything else unusable
raises :class:`InputError` naming the file, the document's 0-based index and the line, so that
the checker can exit 2 with a message a person can act on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from kexpose.errors import InputError
from kexpose.metadata import object_metadata_problems
from kexpose.problems import summarize
from kexpose.yamlio import load_documents

__all__ = [
    "MANIFEST_SUFFIXES",
    "Loaded",
    "Position",
    "Skipped",
    "load",
    "load_manifests",
]

MANIFEST_SUFFIXES: Final = (".yaml", ".yml", ".json")
STDIN: Final = "-"
STDIN_NAME: Final = "<stdin>"
#: API groups of configuration files that look like objects but never reach a cluster.
_NOT_CLUSTER_GROUPS: Final = ("kustomize.config.k8s.io/", "config.kubernetes.io/")


@dataclass(frozen=True, slots=True)
class Position:
    """Where an object starts: the file (``<stdin>`` for standard input) and 1-based line."""

    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file left out because it holds no Kubernetes object, and why."""

    file: str
    reason: str


@dataclass(frozen=True, slots=True)
class Loaded:
    """The objects read, in order, each with its position; and the files skipped."""

    objects: list[Mapping[str, Any]] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _files(argument: str) -> Iterator[tuple[Path, bool]]:
    """Each file to read and whether it was found by searching a directory."""
    path = Path(argument)
    if path.is_dir():
        found = [
            p
            for p in path.rglob("*")
            if p.suffix in MANIFEST_SUFFIXES
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        ]
        yield from ((p, True) for p in sorted(found))
    elif path.exists():
        yield path, False
    else:
        raise InputError(f"{argument}: no such file or directory")


def _not_kubernetes(doc: Any) -> str | None:
    """Why a document is no Kubernetes object at all (None when it looks like one)."""
    if not isinstance(doc, Mapping):
        return f"a YAML {'list' if isinstance(doc, list) else 'scalar'}"
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if isinstance(api, str) and api.startswith(_NOT_CLUSTER_GROUPS):
        return f"a {kind or api} file (apiVersion {api}), not a cluster object"
    if not isinstance(api, str) or not isinstance(kind, str) or not kind:
        return "a mapping without apiVersion and kind (a values file?)"
    return None


def _check(obj: Any, where: str, file: str, line: int) -> Mapping[str, Any]:
    def fail(problem: str) -> InputError:
        return InputError(f"{where}: {problem}", file=file, line=line)

    if not isinstance(obj, Mapping):
        raise fail(f"is a {type(obj).__name__}, not a Kubernetes object (a mapping)")
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        raise fail("has no kind")
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not name:
        raise fail(f"{kind} has no metadata.name")
    return obj


def _read_into(loaded: Loaded, text: bytes, source: str, *, may_skip: bool) -> None:
    found: list[tuple[Mapping[str, Any], int]] = []
    strays: list[tuple[Any, str, str, int]] = []
    for index, doc in enumerate(load_documents(text, source=source)):
        where = f"{source}: document index {index}"
        data = doc.data
        if data is None:
            continue
        reason = _not_kubernetes(data)
        if isinstance(data, Mapping) and data.get("kind") == "List":
            items = data.get("items")
            if not isinstance(items, list):
                raise InputError(
                    f"{where}, line {doc.line}: kind List without a list of items",
                    file=source,
                    line=doc.line,
                )
            for n, item in enumerate(items):
                line = doc.lines.get(id(item), doc.line)
                at = f"{where}, items[{n}], line {line}"
                found.append((_check(item, at, source, line), line))
        elif reason is not None and may_skip:
            strays.append((data, where, reason, doc.line))
        elif reason is not None and reason.endswith("not a cluster object"):
            raise InputError(f"{where}: is {reason}", file=source, line=doc.line)
        else:
            found.append((_check(data, where, source, doc.line), doc.line))
    if strays and not found:
        loaded.skipped.append(Skipped(source, strays[0][2]))
        return
    for data, where, reason, line in strays:
        # Objects beside a non-object: not a file to skip, so the stray document is an error.
        _check(data, where, source, line)
        raise InputError(
            f"{where}: is {reason}, beside Kubernetes objects in the same file",
            file=source,
            line=line,
        )
    problems: list[tuple[str, str]] = []
    first_line: int | None = None
    for obj, line in found:
        for path, message in object_metadata_problems(obj):
            problems.append((f"{source}:{line}: {obj['kind']} {path}", message))
            first_line = first_line or line
        loaded.objects.append(obj)
        loaded.positions.append(Position(source, line))
    if problems:
        title = f"{source}: labels or annotations the API server would reject"
        raise InputError(summarize(problems, title=title), file=source, line=first_line)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}", file=str(path)) from None


def _read_stdin(stream: IO[Any]) -> bytes:
    # Bytes, not text: binary input must become a message, not a decoding traceback.
    source = getattr(stream, "buffer", stream)
    try:
        data = source.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{STDIN_NAME}: cannot read: {exc}") from None
    return data if isinstance(data, bytes) else str(data).encode()


def load(arguments: Sequence[str], *, stdin: IO[Any] | None = None, strict: bool = False) -> Loaded:
    """All objects in ``arguments`` (files, directories, ``-``), in order, with positions.

    A file found in a directory that holds no Kubernetes object is skipped (and listed in
    ``skipped``) unless ``strict``. Raises :class:`InputError` for a missing or unreadable
    file, invalid YAML, a document that is not a Kubernetes object with ``kind`` and
    ``metadata.name``, or labels and annotations the API server would reject.
    """
    loaded = Loaded()
    for argument in arguments:
        if argument == STDIN:
            text = _read_stdin(stdin if stdin is not None else sys.stdin)
            _read_into(loaded, text, STDIN_NAME, may_skip=False)
            continue
        for path, in_directory in _files(argument):
            _read_into(loaded, _read_file(path), str(path), may_skip=in_directory and not strict)
    return loaded


def load_manifests(
    arguments: Sequence[str], *, stdin: IO[Any] | None = None, strict: bool = False
) -> list[Mapping[str, Any]]:
    """All objects in ``arguments``, in order (see :func:`load`)."""
    return load(arguments, stdin=stdin, strict=strict).objects
